//! Canary steps and traffic analysis on the local platform, under load: a
//! real router weighting real app processes, the deploy judging the new
//! release on the requests it served. The app fails every (100/P)th request
//! with `FAIL_PERCENT=P` in its release's env, and answers N ms later with
//! `SLOW_MS=N`.

use crate::deploy::{Fixture, get, text};
use serde_json::Value;

/// p99 never decides here (`p99_floor` above any latency): these tests are
/// about errors and weights, and the load mixes 250 ms requests with fast
/// ones, so a 60-request window's p99 depends on which it drew.
const CANARY: &str = "strategy: canary\nsteps: [10, 50, 100]\n\
                      analysis: { duration: 20s, min_requests: 60, p99_floor: 30s }\n";

/// The fixture's deploy file with `env` added to the release, its
/// migration, and `extra`.
fn write(f: &Fixture, env: &str, extra: &str) {
    let migrate = "migrate: { command: python3 migrate.py, kind: sql }\n";
    crate::deploy::write_file(f, env, &format!("{migrate}{extra}"));
}

/// A first release on both colors, without analysis (nothing to compare
/// it with), then the canary file.
fn serving_v1() -> Fixture {
    let f = Fixture::new("");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f
}

#[test]
fn a_release_failing_five_percent_is_rolled_back_at_the_first_canary_step() {
    let f = serving_v1();
    write(&f, ", FAIL_PERCENT: 5", CANARY);
    let load = f.load();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let (requests, failures, _) = load.finish();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("traffic analysis:"), "{err}");
    assert!(err.contains("analysis.max_error_rate"), "{err}");
    let events = crate::deploy::events(&out);
    let analyses: Vec<&Value> = events.iter().filter(|e| e["event"] == "analysis").collect();
    assert_eq!(
        analyses.len(),
        1,
        "judged once, at the first step: {analyses:?}"
    );
    let a = analyses[0];
    assert_eq!(a["percent"], 10);
    let candidate = &a["window"]["candidate"];
    // Decided as soon as the evidence sufficed: min_requests bounds a pass,
    // not a rollback.
    assert!(candidate["requests"].as_u64().unwrap() >= 1, "{a}");
    assert!(candidate["status_5xx"].as_u64().unwrap() >= 1, "{a}");
    assert_eq!(a["window"]["baseline"]["status_5xx"], 0, "{a}");
    // Every failed request was the bad release's, so none before its step;
    // and few during it.
    for line in &failures {
        assert!(line.contains("HTTP 500: release v2"), "{line}");
    }
    eprintln!(
        "the 5%-failing release served {} requests in its 10% step, {} failed for users \
         (of {requests} requests during the deploy)",
        candidate["requests"],
        failures.len()
    );
    assert!(failures.len() <= 15, "{failures:?}");
    f.assert_serving("v1");
}

#[test]
fn a_good_release_passes_every_step_with_no_failed_request() {
    let f = serving_v1();
    write(&f, "", CANARY);
    let load = f.load();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let (_, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(seen.last().map(String::as_str), Some("v2"), "{seen:?}");
    let events = crate::deploy::events(&out);
    let steps: Vec<Value> = events
        .iter()
        .filter(|e| e["event"] == "analysis")
        .map(|e| e["percent"].clone())
        .collect();
    // Each canary step, then the second color after its map.
    assert_eq!(steps, [10.into(), 50.into(), 100.into(), Value::Null]);
    f.assert_serving("v2");
    // The canary's weights are gone: both colors share the route evenly.
    let mut blue = 0;
    for _ in 0..40 {
        let (_, body) = get(f.router_port, "shop", "/").unwrap();
        blue += usize::from(body.contains(" blue"));
    }
    assert_eq!(blue, 20, "even split after the canary");
}

#[test]
fn a_slow_release_is_rolled_back_on_p99() {
    let f = serving_v1();
    // No migration, so no watch of green after it: on a busy machine the
    // old color's own p99 could decide first, and this is about blue's.
    crate::deploy::write_file(
        &f,
        ", SLOW_MS: 1500",
        "analysis: { duration: 20s, min_requests: 15 }\n",
    );
    let load = f.load();
    let out = f.deploy("v2");
    load.finish();
    eprintln!("{}", text(&out));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("blue's p99") && err.contains("analysis.max_p99_ratio"),
        "{err}"
    );
    f.assert_serving("v1");
}

#[test]
fn an_analyze_plugin_that_blocks_rolls_the_release_back() {
    let f = serving_v1();
    let dir = f.root.path().join("plugins");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        crate::util::component("slo-check"),
        dir.join("slo-check.wasm"),
    )
    .unwrap();
    // A p99 SLO no real request meets: the built-in limits pass (the
    // release is as good as the old one), the plugin blocks.
    write(
        &f,
        "",
        &format!(
            "{CANARY}plugins: {{ dir: plugins, config: {{ slo-check: {{ settings: \
             {{ max_p99_ms: \"0.01\" }} }} }} }}\n"
        ),
    );
    let load = f.load();
    let out = f.deploy("v2");
    let (_, failures, _) = load.finish();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plugin `slo-check` blocked at analyze"),
        "{err}"
    );
    assert!(failures.is_empty(), "{failures:?}");
    f.assert_serving("v1");
}

#[test]
fn plan_shows_the_canary_steps_and_the_analysis() {
    let f = Fixture::new("");
    write(&f, "", CANARY);
    let out = f.run(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    for want in [
        "canary step 10%: map blue with weight 10, green 90",
        "analyze blue's live traffic at 10% against the route before the deploy and green's for \
         up to 60 requests or 20s; roll back if a serving color's 5xx share rises by over 1.0 \
         points or its p99 over 2x",
        "canary step 50%",
        "canary step 100%: every request of the route to blue",
        "analyze green's live traffic against the route before the deploy and blue's",
        "read the route's live traffic for up to 20s",
    ] {
        assert!(plan.contains(want), "{want}\n{plan}");
    }
}

#[test]
fn weights_are_honoured_within_five_percent_over_2000_requests() {
    let f = serving_v1();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (client, route, blue, green) = rt.block_on(async {
        let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
            .await
            .expect("the platform runs");
        let route: Value = client.get("/v3/routes?hosts=shop").await.unwrap();
        let route = route["resources"][0]["guid"].as_str().unwrap().to_string();
        let app = |name: &'static str| {
            let client = client.clone();
            async move {
                let v: Value = client.get(&format!("/v3/apps?names={name}")).await.unwrap();
                v["resources"][0]["guid"].as_str().unwrap().to_string()
            }
        };
        let (blue, green) = (app("shop-blue").await, app("shop-green").await);
        (client, route, blue, green)
    });
    for (weight_blue, weight_green) in [(10u32, 90u32), (50, 50), (3, 1)] {
        rt.block_on(client.set_destinations(
            &route,
            &[(&blue, Some(weight_blue)), (&green, Some(weight_green))],
        ))
        .unwrap();
        let mut to_blue = 0;
        for _ in 0..2000 {
            let (status, body) = get(f.router_port, "shop", "/").unwrap();
            assert_eq!(status, 200, "{body}");
            to_blue += usize::from(body.contains(" blue"));
        }
        let share = to_blue as f64 / 2000.0;
        let want = f64::from(weight_blue) / f64::from(weight_blue + weight_green);
        eprintln!(
            "weights {weight_blue}/{weight_green}: blue got {:.2}%",
            share * 100.0
        );
        assert!((share - want).abs() <= 0.05 * want, "{share} vs {want}");
    }
}
