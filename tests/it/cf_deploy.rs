//! The deploy tests as `platform: cf`: the same binary, app and assertions
//! as `deploy.rs`, against the local platform serving as Cloud Foundry (its
//! API and routes over TLS under its own CA, a password login through its
//! `/oauth/token`, per-color routes on the shared domain, probes over
//! https), set up the way a user would with `eval "$(bluegreen platform
//! cf-env)"`.

use crate::deploy::{Fixture, events, text};
use crate::verdict::analyses;
use serde_json::Value;
use std::time::Duration;

/// GET `https://<host>.apps.localhost/<path>` through the platform's TLS
/// router, trusting only its CA: what a browser or gorouter client sees.
fn https_get(f: &Fixture, host: &str, path: &str) -> (u16, String) {
    let vars = f.cf.as_ref().unwrap();
    let var = |k: &str| vars.iter().find(|(n, _)| n == k).unwrap().1.clone();
    let ca = std::fs::read(var("BLUEGREEN_CA_FILE")).unwrap();
    let port: u16 = var("BLUEGREEN_CONNECT_TO")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let name = format!("{host}.apps.localhost");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .resolve(&name, ([127, 0, 0, 1], port).into())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let resp = client
            .get(format!("https://{name}{path}"))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

#[test]
fn two_deploys_as_cf_swap_releases_with_zero_failed_requests() {
    let f = Fixture::new_cf("");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("serves https://shop.apps.localhost"),
        "{stdout}"
    );
    f.assert_serving("v1");
    assert_eq!(f.migrations(), 1, "the migration runs once");

    let load = f.load();
    load.more(3);
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    load.more(3);
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed: {failures:?}",
        failures.len()
    );
    assert_eq!(seen, ["v1", "v2"], "{n} requests");
    f.assert_serving("v2");
    assert_eq!(f.migrations(), 2);
    let ev = events(&out);
    assert_eq!(ev.last().unwrap()["status"], "done");

    // The route and each color's own route, over TLS under the CA.
    let (status, body) = https_get(&f, "shop", "/");
    assert_eq!(
        (status, body.starts_with("release v2 ")),
        (200, true),
        "{body}"
    );
    for color in ["blue", "green"] {
        let (status, body) = https_get(&f, &format!("shop-{color}"), "/");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(&format!(" {color}")), "{body}");
    }
    let s = f.status();
    assert_eq!(s["route_url"], "https://shop.apps.localhost", "{s}");
    let history = events(&f.run(&["history", "--json"]));
    assert_eq!(
        (&history[1]["release"], &history[1]["previous_release"]),
        (&Value::from("v2"), &Value::from("v1"))
    );
}

/// A first release on both colors as CF, then `extra` (and `env` in the
/// release's environment) in the deploy file, without a migration.
fn cf_serving_v1(env: &str, extra: &str) -> Fixture {
    let f = Fixture::new_cf("");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    crate::deploy::write_file(&f, env, extra);
    f
}

#[test]
fn a_candidate_that_never_gets_healthy_as_cf_is_rolled_back_while_the_other_serves() {
    crate::deploy::never_healthy_rolled_back(Fixture::new_cf(""));
}

#[test]
fn rollback_as_cf_goes_back_through_the_same_sequence() {
    crate::deploy::rollback_through_the_same_sequence(Fixture::new_cf(""));
}

/// Cloud Foundry's canary is an instance ratio: 50% is one candidate
/// instance beside the other color's one, behind a router that spreads
/// over instances as gorouter does; each step is judged on log-cache's
/// timers.
#[test]
fn a_good_release_passes_each_cf_canary_step_judged_on_log_cache() {
    let f = cf_serving_v1(
        "",
        "strategy: canary\nsteps: [50, 100]\nanalysis: { duration: 20s, min_requests: 30, p99_floor: 30s }\n",
    );
    let load = f.load();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        failures.is_empty(),
        "{} of {n} failed: {failures:?}",
        failures.len()
    );
    assert_eq!(seen.last().map(String::as_str), Some("v2"), "{seen:?}");
    let judged = analyses(&out);
    let steps: Vec<&Value> = judged.iter().map(|e| &e["percent"]).collect();
    assert_eq!(
        steps,
        [&Value::from(50), &100.into(), &Value::Null],
        "{judged:?}"
    );
    for a in &judged {
        let candidate = &a["window"]["candidate"];
        assert!(candidate["requests"].as_u64().unwrap() >= 30, "{a}");
        assert_eq!(candidate["status_5xx"], 0, "{a}");
        assert_eq!(a["window"]["source"], "log-cache", "{a}");
    }
    let baseline = events(&out)
        .into_iter()
        .find(|e| e["event"] == "baseline")
        .expect("a pre-deploy reference");
    assert_eq!(baseline["source"], "log-cache", "{baseline}");
    f.assert_serving("v2");
}

#[test]
fn a_release_failing_a_fifth_of_requests_is_rolled_back_at_the_first_cf_canary_step() {
    let f = cf_serving_v1(
        ", FAIL_PERCENT: 20",
        "strategy: canary\nsteps: [50, 100]\nanalysis: { duration: 20s, min_requests: 30, p99_floor: 30s }\n",
    );
    let load = f.load();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let (n, failures, _) = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let judged = analyses(&out);
    assert_eq!(judged.len(), 1, "judged once, at 50%: {judged:?}");
    assert_eq!(judged[0]["percent"], 50);
    let candidate = &judged[0]["window"]["candidate"];
    assert!(
        candidate["status_5xx"].as_u64().unwrap() >= 1,
        "{}",
        judged[0]
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("analysis.max_error_rate"), "{err}");
    for line in &failures {
        assert!(line.contains("HTTP 500: release v2"), "{line}");
    }
    eprintln!(
        "as cf: {} of {n} requests failed during a 20%-failing canary",
        failures.len()
    );
    f.assert_serving("v1");
}

/// `scripts/test-foundation`, what a team runs against its own foundation,
/// run here against the local platform serving as CF with the variables
/// `platform cf-env` writes: so the script the README points at works.
#[test]
fn the_foundation_script_deploys_and_rolls_back_with_no_failed_request() {
    let f = Fixture::new_cf("");
    let out = f.run(&["platform", "cf-env"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let env_file = f.root.path().join("foundation.env");
    std::fs::write(&env_file, &out.stdout).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/test-foundation");
    let out = std::process::Command::new(script)
        .arg(&env_file)
        .env("BLUEGREEN_BIN", env!("CARGO_BIN_EXE_bluegreen"))
        .env("BLUEGREEN_CACHE_DIR", crate::util::shared_cache_dir())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(", 0 not 200; both colors on: smoke-1"),
        "{said}"
    );
}
