//! The deploy's own bookkeeping as `strategies/blue-green.md` states it:
//! the `running` event of `--json`, and the lock's lease ("expiry 60 s,
//! renewed every 20 s while the deploy runs"; a lease nobody renews expires
//! by itself).

use crate::deploy::{Fixture, events, text};
use crate::util::{exits, succeeded, wait_until};
use bluegreen::platform::lease::unix_now;
use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// "`started` first, `running` once the plan is known (with `release`,
/// `previous_release`, `route_url`), and last exactly one of `done`, …".
#[test]
fn the_deploy_event_says_running_once_the_plan_is_known() {
    let f = Fixture::new("");
    succeeded(f.deploy("v1"));
    let out = succeeded(f.run(&["deploy", "--release", "v2", "--json"]));
    let ev = events(&out);
    let deploys: Vec<(usize, &Value)> = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e["event"] == "deploy")
        .collect();
    let statuses: Vec<&str> = deploys
        .iter()
        .map(|(_, e)| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["started", "running", "done"], "{ev:#?}");
    assert_eq!(deploys[0].0, 0, "`started` is the first event");
    assert_eq!(deploys[2].0, ev.len() - 1, "`done` is the last event");
    let (at, running) = deploys[1];
    assert_eq!(running["release"], "v2", "{running}");
    assert_eq!(running["previous_release"], "v1", "{running}");
    assert_eq!(
        running["route_url"],
        format!("http://shop.apps.localhost:{}", f.router_port),
        "{running}"
    );
    assert_eq!(running["id"], deploys[0].1["id"], "{running}");
    // Once the plan is known and its lock held: right after
    // `acquire-lock` ends (`validate` starts before the plan's length is
    // known), before the first step that touches the platform.
    let locked = ev
        .iter()
        .position(|e| e["step"] == "acquire-lock" && e["status"] == "done")
        .unwrap();
    assert_eq!(at, locked + 1, "{ev:#?}");
    assert!(ev[..at].iter().all(|e| e["event"] != "hook"), "{ev:#?}");
}

/// The lease `status --json` shows for a deploy that waits at a canary
/// pause: 60 s from its last renewal, renewed 20 s after the one before.
#[test]
fn the_deploy_lease_lasts_60_s_and_is_renewed_every_20_s() {
    let f = Fixture::new("");
    succeeded(f.deploy("v1"));
    crate::deploy::write_file(
        &f,
        "",
        "strategy: canary\nsteps: [50, pause, 100]\n\
         analysis: { duration: 1s, on_inconclusive: warn, p99_floor: 30s }\n",
    );
    let mut child = f
        .cmd(&["deploy", "--release", "v2", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let expires = || -> Option<u64> {
        let s = f.status();
        s["deploy"]["runner"]["expires"].as_u64()
    };
    let mut first = None;
    wait_until(
        "the deploy's lease in `status`",
        Duration::from_secs(30),
        || {
            first = expires();
            first.is_some()
        },
    );
    let first = first.unwrap();
    let left = first as i64 - unix_now() as i64;
    assert!((40..=61).contains(&left), "a fresh lease has {left} s left");
    // The next renewal: within 20 s (and a bound for a loaded machine).
    let mut renewed = None;
    let waited = Instant::now();
    wait_until("the lease's renewal", Duration::from_secs(35), || {
        renewed = expires().filter(|e| *e != first);
        renewed.is_some()
    });
    let renewed = renewed.unwrap();
    let seen_at = unix_now();
    assert!(
        waited.elapsed() <= Duration::from_secs(22),
        "renewed {:?} after the first look",
        waited.elapsed()
    );
    assert!(
        (19..=21).contains(&(renewed - first)),
        "renewed from {first} to {renewed}: {} s later",
        renewed - first
    );
    assert!(
        (59..=61).contains(&(renewed - seen_at)),
        "a renewal runs {} s",
        renewed - seen_at
    );
    exits(f.run(&["abort", "--reason", "the test is done"]), 0);
    wait_until("the aborted deploy's exit", Duration::from_secs(60), || {
        child.try_wait().unwrap().is_some()
    });
    f.assert_serving("v1");
}

/// "A runner that died stops renewing, so its lease expires by itself":
/// a lease of a runner on another host, 3 s from its expiry, refuses a
/// deploy now (exit 4) and lets `--wait` through once it has expired.
#[tokio::test(flavor = "multi_thread")]
async fn a_lease_nobody_renews_expires_by_itself() {
    let f = Fixture::new("");
    let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    let expiry = unix_now() + 3;
    let other = crate::util::lease("gone-elsewhere", "shop", expiry);
    assert!(client.lease_local(&other, None).await.unwrap().acquired);

    let now = f.cmd(&["deploy", "--release", "v1"]);
    let out = tokio::task::spawn_blocking(move || { now }.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("gone-elsewhere"), "{}", text(&out));

    let waiting = f.cmd(&["deploy", "--release", "v1", "--wait", "30s"]);
    let out = tokio::task::spawn_blocking(move || { waiting }.output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        unix_now() >= expiry,
        "deployed before the other lease expired"
    );
    f.assert_serving("v1");
}
