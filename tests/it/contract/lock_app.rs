//! The Cloud Foundry lock as the client speaks it to a CF that serves the
//! documented shapes only: the lock app found by name, created with its
//! lease (`app.json` as the app; a second create answered with
//! `error_uniqueness.json`, 422), renewed by `PATCH`, taken over by
//! `DELETE` (202 and a job, `job_complete.json`) and a new create, every
//! answer dated by the fake's own clock. Sources in tests/fixtures/cf/README.md.

mod fake;

use bluegreen::platform::lease::{ANNOTATION, Lease, ROLE_LABEL, unix_now};
use fake::{SPACE, app, fake, stored};
use std::time::SystemTime;

fn lease(id: &str, expires: u64) -> Lease {
    crate::util::lease(id, "my_app", expires)
}

#[tokio::test]
async fn the_cf_lock_is_a_lock_app_that_one_create_makes() {
    let (f, client) = fake().await;
    let later = unix_now() + 60;
    let got = client
        .lease_cf(SPACE, &lease("d1", later), None)
        .await
        .unwrap();
    assert!(got.acquired);
    assert_eq!(stored(&f), Some(lease("d1", later)));
    {
        let f = f.lock().unwrap();
        let a = f.app.as_ref().unwrap();
        assert_eq!(a["name"], "my_app-bluegreen-lock");
        assert_eq!(a["metadata"]["labels"][ROLE_LABEL], "lock");
    }

    // Another deploy is refused and told who holds it, without writing;
    // the holder renews in place; `recover` of d1 takes it over in place.
    let writes = f.lock().unwrap().writes.len();
    let other = client
        .lease_cf(SPACE, &lease("d2", later), None)
        .await
        .unwrap();
    assert_eq!((other.acquired, other.holder.id.as_str()), (false, "d1"));
    assert_eq!(f.lock().unwrap().writes.len(), writes);
    let renewed = client.lease_cf(SPACE, &lease("d1", later + 5), None).await;
    assert!(renewed.unwrap().acquired);
    assert_eq!(stored(&f).unwrap().expires, later + 5);
    let recovered = client
        .lease_cf(SPACE, &lease("d1", later), Some("d1"))
        .await;
    assert!(recovered.unwrap().acquired);
    assert!(
        f.lock()
            .unwrap()
            .writes
            .last()
            .unwrap()
            .starts_with("PATCH")
    );

    // A wrong id releases nothing; the holder's release deletes the app.
    assert!(
        !client
            .release_cf(SPACE, "my_app", Some("d2"))
            .await
            .unwrap()
    );
    assert!(
        client
            .release_cf(SPACE, "my_app", Some("d1"))
            .await
            .unwrap()
    );
    assert!(f.lock().unwrap().app.is_none());

    // An expired lease: its lock app is deleted by guid, and made again.
    assert!(
        client
            .lease_cf(SPACE, &lease("d3", unix_now() - 1), None)
            .await
            .unwrap()
            .acquired
    );
    let stale = f.lock().unwrap().app.as_ref().unwrap()["guid"].clone();
    let got = client
        .lease_cf(SPACE, &lease("d4", later), None)
        .await
        .unwrap();
    assert!(got.acquired);
    let writes = f.lock().unwrap().writes.clone();
    assert_eq!(
        writes[writes.len() - 2..],
        [
            format!("DELETE {}", stale.as_str().unwrap()),
            "POST /v3/apps".into()
        ]
    );
    assert_eq!(
        client
            .lease_holder_cf(SPACE, "my_app")
            .await
            .unwrap()
            .unwrap()
            .id,
        "d4"
    );

    // Free when read, but another runner's create lands first: CF's 422
    // CF-UniquenessError, and the rival named as the holder.
    assert!(client.release_cf(SPACE, "my_app", None).await.unwrap());
    f.lock().unwrap().rival = Some(lease("rival", later));
    let got = client
        .lease_cf(SPACE, &lease("d5", later), None)
        .await
        .unwrap();
    assert_eq!((got.acquired, got.holder.id.as_str()), (false, "rival"));
}

/// Defect 3 of «7 · Hardening»: CF lease expiry was judged by each
/// runner's own clock. A runner whose clock runs an hour ahead of the one
/// that wrote a live lease took it over; one an hour behind stayed locked
/// out by a dead one. The fake's `Date` header carries its clock.
#[tokio::test]
async fn defect_3_the_cf_lease_expires_by_the_servers_clock() {
    const HOUR: i64 = 3600;
    let (f, client) = fake().await;
    let plant = |l: &Lease| {
        let meta = serde_json::json!({"labels": {}, "annotations":
            {ANNOTATION: serde_json::to_string(l).unwrap()}});
        f.lock().unwrap().app = Some(app("my_app-bluegreen-lock", &meta));
    };

    // The server runs an hour behind us; another runner holds a lease
    // with 60 s left by the server's clock (an hour ago by ours).
    f.lock().unwrap().offset = -HOUR;
    let server_now = unix_now() - HOUR as u64;
    plant(&lease("live", server_now + 60));
    let got = client
        .lease_cf(SPACE, &lease("intruder", unix_now() + 60), None)
        .await
        .unwrap();
    assert!(!got.acquired, "took over a live lease");
    let left = got.holder.expires as i64 - unix_now() as i64;
    assert!((55..=65).contains(&left), "{left} s left on our clock");

    // The server runs an hour ahead; the lease ran out 10 s ago by its clock.
    f.lock().unwrap().offset = HOUR;
    let server_now = unix_now() + HOUR as u64;
    plant(&lease("dead", server_now - 10));
    let got = client
        .lease_cf(SPACE, &lease("next", unix_now() + 60), None)
        .await
        .unwrap();
    assert!(
        got.acquired,
        "locked out by an expired lease: {:?}",
        got.holder
    );
    // What it wrote is in the server's time, so other runners agree.
    let ahead = stored(&f).unwrap().expires as i64 - server_now as i64;
    assert!(
        (55..=65).contains(&ahead),
        "{ahead} s on the server's clock"
    );
}

#[tokio::test]
async fn a_lock_app_without_a_readable_lease_holds_it_for_a_lease_from_its_making() {
    let (f, client) = fake().await;
    let bare = |made: String| {
        let meta = serde_json::json!({"labels": {}, "annotations": {}});
        let mut a = app("my_app-bluegreen-lock", &meta);
        a["created_at"] = made.into();
        f.lock().unwrap().app = Some(a);
    };
    // Just made (by hand, or by a CF that dropped the create's metadata):
    // held, by nobody known, until a lease written then would expire.
    bare(humantime::format_rfc3339_seconds(SystemTime::now()).to_string());
    let got = client
        .lease_cf(SPACE, &lease("d1", unix_now() + 60), None)
        .await;
    let got = got.unwrap();
    assert_eq!((got.acquired, got.holder.id.as_str()), (false, "unknown"));
    assert!(
        got.holder.command.contains("no readable lease"),
        "{:?}",
        got.holder
    );
    // Made long ago (the docs' `created_at`, 2016): taken over.
    bare("2016-03-17T21:41:30Z".into());
    let got = client
        .lease_cf(SPACE, &lease("d1", unix_now() + 60), None)
        .await;
    assert!(got.unwrap().acquired);
    assert_eq!(stored(&f).unwrap().id, "d1");
}

#[tokio::test]
async fn a_lock_create_that_failed_or_lost_its_answer_is_read_before_it_is_sent_again() {
    let (f, client) = fake().await;
    for made in [false, true] {
        f.lock().unwrap().app = None;
        f.lock().unwrap().fail_create = Some(made);
        let got = client
            .lease_cf(SPACE, &lease("d1", unix_now() + 60), None)
            .await;
        assert!(got.unwrap().acquired, "made: {made}");
        assert_eq!(stored(&f).unwrap().id, "d1");
        // Made and unanswered: found with this lease and kept, not made
        // again; not made: made once more.
        let writes = std::mem::take(&mut f.lock().unwrap().writes);
        let want = if made { "PATCH" } else { "POST" };
        assert_eq!(writes.len(), 2, "{writes:?}");
        assert!(writes[1].starts_with(want), "{writes:?}");
    }
}
