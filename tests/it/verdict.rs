//! «13 · A verdict that cannot be fooled», on the local platform under
//! load: releases that fooled a judge only relative to the other color and
//! counting only the answers clients finally got. Each fails on a judge
//! without a pre-deploy reference, per-attempt counts, hung requests at
//! their age, absolute ceilings, or a refusal to pass without evidence.

// No migration: these releases are judged on traffic alone.
use crate::deploy::{Fixture, events, text, write_file as write};
use serde_json::Value;

fn serving_v1() -> Fixture {
    let f = Fixture::new("");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f
}

/// The `analysis` events of a deploy's `--json` output.
pub fn analyses(out: &std::process::Output) -> Vec<Value> {
    events(out)
        .into_iter()
        .filter(|e| e["event"] == "analysis")
        .collect()
}

#[test]
fn defect_13_a_release_dropping_every_request_but_health_is_rolled_back_at_its_first_step() {
    let f = serving_v1();
    write(
        &f,
        ", MISBEHAVE: drop",
        "strategy: canary\nsteps: [50, 100]\nanalysis: { duration: 20s }\n",
    );
    let load = f.load();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let (requests, failures, _) = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let judged = analyses(&out);
    assert_eq!(judged.len(), 1, "judged once, at 50%: {judged:?}");
    assert_eq!(judged[0]["percent"], 50);
    let candidate = &judged[0]["window"]["candidate"];
    // The router retried the GETs on the old color, so users saw none of
    // the failures; the candidate is charged with every one.
    assert!(failures.is_empty(), "{failures:?}");
    assert!(
        candidate["status_5xx"].as_u64().unwrap() >= 3,
        "{}",
        judged[0]
    );
    eprintln!(
        "a release dropping every request: {} failed attempts charged to it, {} of {requests} \
         requests failed for users; {}",
        candidate["status_5xx"],
        failures.len(),
        judged[0]["failed"]
    );
    f.assert_serving("v1");
}

#[test]
fn defect_13_a_release_hanging_every_request_but_health_is_rolled_back_at_its_first_step() {
    let f = serving_v1();
    write(
        &f,
        ", MISBEHAVE: hang",
        "strategy: canary\nsteps: [50, 100]\n\
         analysis: { duration: 20s, load: { rate: 20, paths: [/] } }\n",
    );
    let load = f.load();
    let started = std::time::Instant::now();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let took = started.elapsed();
    load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let judged = analyses(&out);
    assert_eq!(judged.len(), 1, "judged once, at 50%: {judged:?}");
    let why = judged[0]["failed"].as_str().unwrap_or_default().to_string();
    assert!(why.contains("p99"), "{why}");
    assert!(
        judged[0]["load"]
            .as_str()
            .is_some_and(|l| l.starts_with("synthetic load")),
        "the output says the judge sent requests of its own: {}",
        judged[0]
    );
    eprintln!("a release hanging every request: rolled back after {took:?}: {why}");
    f.assert_serving("v1");
}

#[test]
fn defect_13_no_traffic_at_the_last_step_does_not_pass_unless_the_file_says_warn() {
    let f = serving_v1();
    let canary = "strategy: canary\nsteps: [50, 100]\nanalysis: { duration: 2s }\n";
    write(&f, "", canary);
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not decide"), "{err}");
    let judged = analyses(&out);
    assert_eq!(
        judged
            .iter()
            .map(|a| a["percent"].clone())
            .collect::<Vec<_>>(),
        [Value::from(50), Value::from(100)],
        "a warning at 50%, a stop at 100%"
    );
    assert!(judged[0]["inconclusive"].is_string() && judged[1]["inconclusive"].is_string());
    f.assert_serving("v1");

    write(
        &f,
        "",
        &canary.replace("duration: 2s", "duration: 2s, on_inconclusive: warn"),
    );
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v2");
}

#[test]
fn defect_13_a_release_answering_only_5xx_never_passes_with_any_analysis_settings() {
    let f = serving_v1();
    for analysis in [
        "analysis: { duration: 10s }",
        "analysis: { duration: 10s, max_error_rate: 100%, max_error_rate_abs: 99%, \
         confidence: 0.5, on_inconclusive: warn, min_requests: 1 }",
    ] {
        write(&f, ", FAIL_PERCENT: 100", &format!("{analysis}\n"));
        let load = f.load();
        let out = f.run(&["deploy", "--release", "v2", "--json"]);
        load.finish();
        assert_eq!(out.status.code(), Some(1), "{analysis}: {}", text(&out));
        let judged = analyses(&out);
        assert!(
            judged.last().is_some_and(|a| a["failed"].is_string()),
            "{analysis}: {judged:?}"
        );
        f.assert_serving("v1");
        // The rolled-back color runs v1's environment too, not the failed
        // release's (FAIL_PERCENT would fail every request it serves).
        for _ in 0..20 {
            let (status, body) = crate::deploy::get(f.router_port, "shop", "/").unwrap();
            assert_eq!(status, 200, "after the rollback: {body}");
        }
    }
}
