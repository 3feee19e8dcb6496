//! The deploy lock's guard on a real local platform: nothing is created
//! before the lock is held, the guard is re-entrant for its own deploy id,
//! `release` consumes it, and a guard dropped without release leaves its
//! lease as a crash would; `status` and `unlock --force` see the lock of a
//! first deploy that holds it before its apps exist.

use crate::deploy::{Fixture, text};
use bluegreen::deploy::lock::{LockGuard, Locked, Store, hostname};
use bluegreen::platform::client::CfClient;
use bluegreen::platform::lease::{Lease, unix_now};
use serde_json::Value;
use std::time::Duration;

async fn daemon(f: &Fixture) -> CfClient {
    let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    client
}

/// A lease of deploy `id` of `shop` held by this process.
fn mine(id: &str) -> Lease {
    Lease {
        id: id.into(),
        app: "shop".into(),
        host: hostname(),
        pid: std::process::id(),
        command: "it lock".into(),
        since: "2026-01-01T00:00:00Z".into(),
        expires: 0,
        process: None,
    }
}

async fn holder(client: &CfClient) -> Option<String> {
    let h = client.lease_holder_local("shop").await.unwrap();
    h.map(|h| h.id)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_first_deploy_refused_the_lock_creates_no_apps_and_no_routes() {
    let f = Fixture::new("");
    let client = daemon(&f).await;
    let other = crate::util::lease("other", "shop", unix_now() + 60);
    assert!(client.lease_local(&other, None).await.unwrap().acquired);
    let cmd = f.cmd(&["deploy", "--release", "v1"]);
    let out = tokio::task::spawn_blocking(move || { cmd }.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("app `shop` is locked by deploy other"),
        "{}",
        text(&out)
    );
    let apps: Vec<Value> = client.list("/v3/apps").await.unwrap();
    assert!(apps.is_empty(), "{apps:?}");
    let routes: Vec<Value> = client.list("/v3/routes").await.unwrap();
    assert!(routes.is_empty(), "{routes:?}");
    assert_eq!(holder(&client).await.as_deref(), Some("other"));

    // Once the holder is done the same deploy makes its site and serves;
    // its last step released the lock.
    assert!(client.release_local("shop", Some("other")).await.unwrap());
    let cmd = f.cmd(&["deploy", "--release", "v1"]);
    let out = tokio::task::spawn_blocking(move || { cmd }.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v1");
    let apps: Vec<Value> = client.list("/v3/apps").await.unwrap();
    assert_eq!(apps.len(), 2, "{apps:?}");
    assert_eq!(holder(&client).await, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_guard_is_reentrant_for_its_deploy_id_and_release_consumes_it() {
    let f = Fixture::new("");
    let client = daemon(&f).await;
    let acquire =
        |id: &str| LockGuard::acquire(client.clone(), Store::Local, mine(id), Duration::ZERO, None);
    let outer = acquire("d1").await.unwrap();
    assert_eq!(holder(&client).await.as_deref(), Some("d1"));
    let first = client.lease_holder_local("shop").await.unwrap().unwrap();

    // Another deploy id is refused, even from this process.
    let err = acquire("d2").await.err().expect("refused");
    let locked = err.downcast_ref::<Locked>().expect("a Locked error");
    assert_eq!(locked.holder.id, "d1");

    // The same id nests, renewing the lease; the nested releases leave it
    // held for the outer guard.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let inner = outer.reenter().await.unwrap();
    let renewed = client.lease_holder_local("shop").await.unwrap().unwrap();
    assert!(
        renewed.expires > first.expires,
        "{renewed:?} after {first:?}"
    );
    let again = acquire("d1").await.unwrap();
    assert!(inner.release().await.unwrap());
    assert!(again.release().await.unwrap());
    assert_eq!(holder(&client).await.as_deref(), Some("d1"));
    outer.ensure_held().await.unwrap();
    assert!(outer.release().await.unwrap());
    assert_eq!(holder(&client).await, None);

    // Dropped without release: the lease stays, as after a crash, and is
    // no longer this process's to keep, so a deploy on this host takes it
    // over (as it would a dead runner's).
    drop(acquire("d3").await.unwrap());
    assert_eq!(holder(&client).await.as_deref(), Some("d3"));
    let taken = acquire("d4").await.unwrap();
    assert_eq!(holder(&client).await.as_deref(), Some("d4"));

    // A guard whose lease was taken says so, and its release leaves the
    // new holder's lease alone.
    assert!(client.release_local("shop", None).await.unwrap());
    let intruder = crate::util::lease("intruder", "shop", unix_now() + 60);
    assert!(client.lease_local(&intruder, None).await.unwrap().acquired);
    let why = taken.ensure_held().await.unwrap_err();
    assert!(why.contains("deploy intruder"), "{why}");
    assert!(!taken.release().await.unwrap());
    assert_eq!(holder(&client).await.as_deref(), Some("intruder"));
}

/// Runs `cmd` off the runtime's threads.
async fn run(cmd: std::process::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || { cmd }.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_and_unlock_see_the_lock_of_an_app_not_made_yet() {
    // As a first deploy holds it before it makes its apps (or after it was
    // killed in that window): the lock is all there is of `shop`.
    let f = Fixture::new("");
    let client = daemon(&f).await;
    let other = crate::util::lease("other", "shop", unix_now() + 60);
    assert!(client.lease_local(&other, None).await.unwrap().acquired);
    let apps: Vec<Value> = client.list("/v3/apps").await.unwrap();
    assert!(apps.is_empty(), "{apps:?}");

    let out = run(f.cmd(&["status", "--json"])).await;
    // Nothing deployed: the route does not serve.
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["colors"], serde_json::json!([]), "{s}");
    assert_eq!(s["route_url"], Value::Null, "{s}");
    assert_eq!(s["lock"]["id"], "other", "{s}");
    assert_eq!(s["lock"]["host"], "elsewhere", "{s}");
    let out = run(f.cmd(&["status"])).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("app `shop` is locked by deploy other"),
        "{}",
        text(&out)
    );

    let out = run(f.cmd(&["unlock", "--force", "--json"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let u: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u["unlocked"], true, "{u}");
    assert_eq!(u["removed"]["id"], "other", "{u}");
    assert_eq!(holder(&client).await, None);
    let out = run(f.cmd(&["status", "--json"])).await;
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["lock"], Value::Null, "{s}");
    let out = run(f.cmd(&["unlock", "--force", "--json"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let u: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&u["unlocked"], &u["removed"]),
        (&false.into(), &Value::Null)
    );

    // Unlocked, the first deploy goes through.
    let out = run(f.cmd(&["deploy", "--release", "v1"])).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v1");
    assert_eq!(holder(&client).await, None);
}
