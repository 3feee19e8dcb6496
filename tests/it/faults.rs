//! Fault injection on the local platform (batteries of «7 · Hardening»):
//! a deploy walked through every API call index, each failing once — a 500,
//! a hang past the client's timeout, or a connection dropped mid-answer —
//! with a candidate instance killed besides on some runs. Every run ends
//! done (exit 0) or rolled back (exit 1); the route answers every request
//! throughout; afterwards one release serves, healthy, and no lock or
//! journal is left.

use crate::deploy::{Fixture, text};
use bluegreen::platform::client::CfClient;
use serde_json::{Value, json};
use std::io::Write;
use std::time::Duration;

async fn faults(client: &CfClient, plan: Value) -> u64 {
    let counted: Value = client
        .call(
            reqwest::Method::PUT,
            bluegreen::platform::local::faults::PATH,
            Some(&plan),
        )
        .await
        .expect("the daemon was started with fault injection");
    counted["calls"].as_u64().unwrap()
}

/// Restarts the fixture's daemon with fault injection on.
fn with_faults(f: &mut Fixture) {
    f.restart_platform_with(&[(bluegreen::platform::local::faults::ENV, "1")]);
}

/// The client's per-call timeout in these walks; an injected hang lasts
/// longer. Calls as CF each cross a TLS terminator and a token check, which
/// on a busy 2-core machine needs more than a second now and then.
fn api_timeout(f: &Fixture) -> Duration {
    Duration::from_millis(if f.cf.is_some() { 2000 } else { 1000 })
}

async fn deploy(f: &Fixture, release: &str) -> std::process::Output {
    let mut cmd = f.cmd(&["deploy", "--release", release]);
    cmd.env(
        "BLUEGREEN_API_TIMEOUT",
        format!("{}ms", api_timeout(f).as_millis()),
    );
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

/// What one walk saw: runs done and rolled back, requests, failures, and
/// each run's window on the load's clock (to find a failure's run).
struct Walked {
    total: u64,
    done: usize,
    rolled_back: usize,
    requests: usize,
    failures: Vec<String>,
    windows: Vec<(f64, f64, u64, &'static str, Option<u64>)>,
}

/// Walks call indices `at ≡ part (mod parts)` on a fixture of its own,
/// deploying as `platform: cf` with `cf`.
async fn walk(part: u64, parts: u64, cf: bool) -> Walked {
    let mut f = if cf {
        Fixture::new_cf("")
    } else {
        Fixture::new("")
    };
    with_faults(&mut f);
    let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    assert_eq!(deploy(&f, "v0").await.status.code(), Some(0));
    faults(&client, json!({})).await;
    assert_eq!(deploy(&f, "v1").await.status.code(), Some(0));
    let total = faults(&client, json!({})).await;
    assert!(total > 30, "a deploy made only {total} API calls");

    let load = f.load();
    let modes = ["error500", "hang", "reset"];
    let (mut done, mut rolled_back) = (0, 0);
    let mut windows = Vec::new();
    for at in (1..=total).filter(|at| at % parts == part) {
        let mode = modes[at as usize % modes.len()];
        let kill = (at % 4 == 0).then(|| (at * 7) % total + 1);
        faults(
            &client,
            json!({"at": at, "mode": mode, "hang_ms": api_timeout(&f).as_millis() + 200, "kill_app_at": kill}),
        )
        .await;
        let release = format!("f{at}");
        let from = load.started.elapsed().as_secs_f64();
        let out = deploy(&f, &release).await;
        windows.push((from, load.started.elapsed().as_secs_f64(), at, mode, kill));
        let why = format!("call {at} ({mode}, kill at {kill:?}): {}", text(&out));
        match out.status.code() {
            Some(0) => done += 1,
            Some(1) => rolled_back += 1,
            other => panic!("exit {other:?} at {why}"),
        }
        // One release serves, healthy, on both colors; nothing left held.
        // A candidate killed after its checks is the platform's to restart
        // (with backoff): give it that long.
        let healthy = |s: &Value| {
            crate::deploy::both_colors(s)
                .iter()
                .all(|c| c["mapped"] == true && c["healthy"] == true)
        };
        let mut s = f.status();
        for _ in 0..50 {
            if healthy(&s) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            s = f.status();
        }
        assert!(healthy(&s), "{why}\n{s}");
        let colors = crate::deploy::both_colors(&s);
        assert_eq!(colors[0]["release"], colors[1]["release"], "{why}\n{s}");
        assert!(s["lock"].is_null(), "{why}\n{s}");
        assert!(!f.journal().exists(), "{why}");
    }
    faults(&client, json!({})).await;
    let (requests, failures, _) = load.finish();
    Walked {
        total,
        done,
        rolled_back,
        requests,
        failures,
        windows,
    }
}

/// Two walks at once, each on its own platform, halve the wall time.
#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_walked_through_a_fault_at_every_api_call_ends_done_or_rolled_back() {
    walk_both_halves(false).await;
}

/// The same walk as `platform: cf`: every call of the CF path (per-color
/// routes, log-cache's root link, the lock) failed once in turn.
#[tokio::test(flavor = "multi_thread")]
async fn as_cf_a_deploy_walked_through_a_fault_at_every_api_call_ends_done_or_rolled_back() {
    walk_both_halves(true).await;
}

async fn walk_both_halves(cf: bool) {
    let (a, b) = tokio::join!(tokio::spawn(walk(0, 2, cf)), tokio::spawn(walk(1, 2, cf)));
    let (a, b) = (a.unwrap(), b.unwrap());
    let runs = a.done + a.rolled_back + b.done + b.rolled_back;
    let requests = a.requests + b.requests;
    let failures: Vec<&String> = a.failures.iter().chain(&b.failures).collect();
    // Straight to stderr, past the test harness's capture: the counts
    // belong in every run's log.
    let _ = writeln!(
        std::io::stderr(),
        "fault injection{}: {runs} runs over {} call indices ({} done, {} rolled back), \
         {requests} requests, {} failed",
        if cf { " as cf" } else { "" },
        a.total.max(b.total),
        a.done + b.done,
        a.rolled_back + b.rolled_back,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {requests} requests failed: {failures:?}\nruns (from s, to s, call, mode, kill): {:?} / {:?}",
        failures.len(),
        a.windows,
        b.windows
    );
    assert!(
        a.done + b.done > 0 && a.rolled_back + b.rolled_back > 0,
        "every run should not end the same way"
    );
}

/// «9 · CF fidelity», Korifi: a platform that cannot copy droplets
/// (`POST /v3/droplets?source_guid=` unknown, as on Korifi) still gets the
/// same deploy: the second color is staged from the same bits.
#[tokio::test]
async fn without_droplet_copy_the_second_color_is_staged_from_the_same_bits() {
    let mut f = Fixture::new("");
    with_faults(&mut f);
    let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    faults(&client, json!({ "absent": ["POST /v3/droplets"] })).await;
    let out = deploy(&f, "v1").await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let load = f.load();
    let out2 = deploy(&f, "v2").await;
    let (requests, failures, _) = load.finish();
    let said = text(&out2);
    assert_eq!(out2.status.code(), Some(0), "{said}");
    assert!(said.contains("cannot copy droplets: staging"), "{said}");
    assert!(
        failures.is_empty(),
        "{} of {requests} failed: {failures:?}",
        failures.len()
    );
    f.assert_serving("v2");
}
