//! Deploys through Cloud Foundry's own deployments (`strategy: cf-canary`,
//! issue «15»), driven by the binary against the local platform serving as
//! CF: one app, its instances replaced by CF's rollout, each canary pause
//! judged on log-cache's timers split by process and probed instance by
//! instance through the route, under load the whole time.
//!
//! What would fool each check: a judge that reads the whole app, not the
//! new process, sees a 5%-failing canary diluted by the old instances (a
//! quarter of them new: about 1% of all requests) and passes it; counting
//! the process split is asserted by the window's request numbers. A
//! "cancel" that only stops polling leaves the new instances serving: the
//! route is asked which release answers, many times, afterwards. A probe
//! that is not pinned passes on an old instance: a release whose
//! `/health` fails passes nothing.

use crate::deploy::{Fixture, events, get, text, write_file};
use crate::verdict::analyses;
use bluegreen::platform::client::CfClient;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

const CANARY: &str = "strategy: cf-canary\nsteps: [25, 50, 75]\nmax_in_flight: 2\n";
const ANALYSIS: &str = "analysis: { duration: 20s, min_requests: 20, p99_floor: 30s }\n";

/// The local platform's own API, as the tests' operator (`cf scale`).
pub fn api(f: &Fixture) -> CfClient {
    let dir = f.home().join("platform");
    let endpoint: Value =
        serde_json::from_slice(&std::fs::read(dir.join("daemon.json")).unwrap()).unwrap();
    let token = std::fs::read_to_string(dir.join("token")).unwrap();
    CfClient::with_token(endpoint["api_url"].as_str().unwrap(), token.trim())
}

/// The local platform's one space.
pub async fn space(client: &CfClient) -> String {
    let spaces = client.list::<Value>("/v3/spaces").await.unwrap();
    spaces[0]["guid"].as_str().unwrap().to_string()
}

pub fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(fut)
}

/// `cf scale shop -i n`, until every instance runs.
fn scale(f: &Fixture, n: u32) {
    let client = api(f);
    block_on(async {
        let space = space(&client).await;
        let app = client.find_app(&space, "shop").await.unwrap().unwrap();
        let web = client.web_process(&app.guid).await.unwrap();
        client.scale_process(&web.guid, n).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let stats = client.process_stats(&web.guid).await.unwrap();
            let running = stats.iter().filter(|s| s.state == "RUNNING").count();
            if running == n as usize {
                break;
            }
            assert!(Instant::now() < deadline, "{running} of {n} running");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

/// Which releases answer the route over `n` requests (every instance is
/// asked several times: the router spreads over them).
fn releases(f: &Fixture, n: usize) -> BTreeSet<String> {
    (0..n)
        .map(|_| {
            let (status, body) = get(f.router_port, "shop", "/").unwrap();
            assert_eq!(status, 200, "{body}");
            body.split_whitespace().nth(1).unwrap().to_string()
        })
        .collect()
}

/// v1 on 4 instances, then the file for the next deploy with `env` and
/// `extra` (the analysis, unless it names its own).
fn serving_v1(env: &str, extra: &str) -> Fixture {
    let f = Fixture::new_cf(&format!("{CANARY}{ANALYSIS}"));
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no canary pauses"),
        "a first deploy starts the app at once: {}",
        text(&out)
    );
    scale(&f, 4);
    assert_eq!(releases(&f, 8), BTreeSet::from(["v1".to_string()]));
    let analysis = if extra.contains("analysis:") {
        ""
    } else {
        ANALYSIS
    };
    write_file(&f, env, &format!("{CANARY}{analysis}{extra}"));
    f
}

#[test]
fn a_good_release_passes_three_canary_steps_with_no_failed_request() {
    let f = serving_v1("", "migrate: { command: python3 migrate.py, kind: sql }\n");
    let load = f.load();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        failures.is_empty(),
        "{} of {n} failed: {failures:?}",
        failures.len()
    );
    assert_eq!(seen, ["v1", "v2"], "{n} requests");
    let judged = analyses(&out);
    let steps: Vec<&Value> = judged.iter().map(|a| &a["canary_step"]).collect();
    assert_eq!(steps, [&Value::from(1), &2.into(), &3.into(), &Value::Null]);
    for a in &judged {
        assert_eq!(a["window"]["source"], "log-cache", "{a}");
        assert!(a["passed"].is_string(), "{a}");
        let new = &a["window"]["candidate"];
        assert!(new["requests"].as_u64().unwrap() >= 20, "{a}");
        assert_eq!(new["status_5xx"], 0, "{a}");
    }
    // During the canary the old instances served too, and apart.
    for a in &judged[..3] {
        assert!(
            a["window"]["baseline"]["requests"].as_u64().unwrap() > 0,
            "{a}"
        );
    }
    let ev = events(&out);
    println!(
        "cf-canary: v2 through 3 steps on 4 instances in {} ms, {n} requests, none failed",
        ev.last().unwrap()["duration_ms"]
    );
    let deployment = ev.iter().find(|e| e["event"] == "deployment").unwrap();
    assert_eq!(deployment["strategy"], "canary", "{deployment}");
    assert_eq!(releases(&f, 12), BTreeSet::from(["v2".to_string()]));
    // The task ran once, on the new droplet with the new release's
    // environment, before the deployment started any instance.
    let log = std::fs::read_to_string(f.migration_log()).unwrap();
    assert_eq!(log.lines().last(), Some("migrated by v2 on None"), "{log}");
    assert_eq!(f.migrations(), 2, "{log}");
    let s = f.status();
    let app = &s["colors"][0];
    assert_eq!(
        (&app["app"], &app["release"]),
        (&"shop".into(), &"v2".into()),
        "{s}"
    );
    assert_eq!(s["colors"].as_array().unwrap().len(), 1, "one app: {s}");
    assert!(
        app["deployment"]["state"]
            .as_str()
            .unwrap()
            .starts_with("FINALIZED/DEPLOYED"),
        "{s}"
    );

    // Back as `cf rollback` goes: v1's revision, rolling, under load; the
    // revision brings v1's environment back (the body names its release).
    let load = f.load();
    let t = Instant::now();
    let out = f.run(&["rollback"]);
    let took = t.elapsed();
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        failures.is_empty(),
        "{} of {n}: {failures:?}",
        failures.len()
    );
    assert_eq!(seen, ["v2", "v1"], "{n} requests");
    assert_eq!(releases(&f, 12), BTreeSet::from(["v1".to_string()]));
    println!("cf-canary: rollback to v1's revision on 4 instances took {took:.1?}");
}

#[test]
fn a_release_failing_5_percent_is_cancelled_at_its_first_step_and_v1_serves() {
    let f = serving_v1(", FAIL_PERCENT: 5", "");
    let load = f.load();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let (n, failures, _) = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let judged = analyses(&out);
    assert_eq!(judged.len(), 1, "judged once, at step 1: {judged:?}");
    let new = &judged[0]["window"]["candidate"];
    assert!(new["status_5xx"].as_u64().unwrap() >= 1, "{}", judged[0]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("canceled CF's deployment"), "{err}");
    assert!(err.contains("environment is the old release's"), "{err}");
    // The numbers are in what the person deploying reads.
    assert!(err.contains("the new instances answered"), "{err}");
    for line in &failures {
        assert!(line.contains("HTTP 500: release v2"), "{line}");
    }
    println!(
        "cf-canary: {} of {n} requests failed while a 5%-failing release ran on 1 of 4 \
         instances",
        failures.len()
    );
    assert_eq!(releases(&f, 12), BTreeSet::from(["v1".to_string()]));
}

#[test]
fn an_unhealthy_canary_is_cancelled_with_no_failed_request() {
    let f = serving_v1("", "");
    // `/health` fails on the new release; `/` answers: only a probe pinned
    // to the new instance can tell.
    std::fs::write(f.root.path().join("app/UNHEALTHY"), "").unwrap();
    // First through a `health-check` plugin: the host probes `/` (healthy),
    // the built-in http-probe `/health`, through the route with the header
    // the host adds to its requests. Unpinned, three in four would reach an
    // old instance and pass.
    let file = std::fs::read_to_string(&f.file)
        .unwrap()
        .replace("health: { path: /health,", "health: { path: /,")
        + "plugins: { builtin: [http-probe], config: { http-probe: { settings: { paths: /health }, \
        allow_http: [candidate] } } }\n";
    std::fs::write(&f.file, file).unwrap();
    let out = f.run(&["deploy", "--release", "v2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("http-probe"), "{said}");
    assert!(said.contains("canceled CF's deployment"), "{said}");
    assert_eq!(releases(&f, 12), BTreeSet::from(["v1".to_string()]));
    // Then the host's own probe of each new instance.
    write_file(&f, "", &format!("{CANARY}{ANALYSIS}"));
    let load = f.load();
    let out = f.run(&["deploy", "--release", "v2"]);
    let (n, failures, _) = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("X-CF-Process-Instance"), "{err}");
    assert!(err.contains("canceled CF's deployment"), "{err}");
    assert!(
        failures.is_empty(),
        "{} of {n}: {failures:?}",
        failures.len()
    );
    assert_eq!(releases(&f, 12), BTreeSet::from(["v1".to_string()]));
}

#[test]
fn a_killed_runners_deployment_is_cancelled_by_recover() {
    let f = serving_v1("", "");
    // Traffic, so the baseline ends early and the judge has work to do.
    let load = f.load();
    let mut child = f.spawn(&["deploy", "--release", "v2", "--json"]);
    // Until it judges the first pause: its deployment created and paused.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let journal = std::fs::read_to_string(f.journal()).unwrap_or_default();
        let entries: Vec<Value> = journal
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let judge = entries.first().and_then(|b| {
            b["deploy"]["steps"]
                .as_array()?
                .iter()
                .position(|s| s["step"] == "judge")
        });
        let judging = judge.is_some_and(|i| {
            entries
                .iter()
                .any(|e| e["event"] == "start" && e["step"] == i)
        });
        if judging {
            break;
        }
        assert!(Instant::now() < deadline, "not judging yet: {journal}");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let out = f.run(&["recover"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("canceled CF's deployment"), "{said}");
    let (n, failures, _) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {n}: {failures:?}",
        failures.len()
    );
    assert_eq!(releases(&f, 12), BTreeSet::from(["v1".to_string()]));
    let again = f.run(&["recover"]);
    assert!(
        text(&again).contains("Nothing to recover"),
        "{}",
        text(&again)
    );
}

#[test]
fn a_foundation_answering_like_korifi_gets_two_colors_or_a_refusal() {
    // A first deploy: no traffic to judge, and the file says so.
    let canary = format!("{CANARY}analysis: {{ duration: 1s, on_inconclusive: warn }}\n");
    let mut f = Fixture::new_cf(&canary);
    f.restart_platform_with(&[(bluegreen::platform::local::faults::ENV, "1")]);
    let client = api(&f);
    block_on(async {
        let _: Value = client
            .call(
                reqwest::Method::PUT,
                bluegreen::platform::local::faults::PATH,
                Some(&serde_json::json!({"korifi": true})),
            )
            .await
            .unwrap();
    });
    let plan = f.run(&["plan", "--json"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert_eq!(plan["mode"]["mode"], "two-color", "{plan}");
    assert!(
        plan["mode"]["why"].as_str().unwrap().contains("Korifi"),
        "{plan}"
    );

    write_file(&f, "", &format!("{canary}fallback: none\n"));
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("fallback: none"), "{}", text(&out));
    let (status, _) = get(f.router_port, "shop", "/").unwrap();
    assert_eq!(status, 404, "nothing was created");

    write_file(&f, "", &canary);
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("falls back to `canary`"),
        "{}",
        text(&out)
    );
    f.assert_serving("v1");
}

#[test]
fn an_app_with_workers_is_refused_naming_them() {
    let f = Fixture::new_cf(CANARY);
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // `cf push` of a manifest with a worker, by someone else.
    let client = api(&f);
    block_on(async {
        let space = space(&client).await;
        let yaml = "applications:\n- name: shop\n  processes:\n  - type: worker\n    \
                    instances: 1\n    command: exec sleep 600\n";
        client
            .apply_manifest(&space, yaml, Duration::from_secs(60))
            .await
            .unwrap();
    });
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`worker` processes"), "{}", text(&out));
    assert_eq!(releases(&f, 4), BTreeSet::from(["v1".to_string()]));
}
