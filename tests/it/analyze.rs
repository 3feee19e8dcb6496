//! The `analyze` hook as a plugin author and a deploy file see it: the real
//! `slo-check` component judging windows of traffic through
//! `bluegreen plugin run --hook analyze --context`, including the windows
//! that would fool a naive check (no traffic, a baseline failing too), and
//! the Rust template `plugin new --hook analyze` writes.

use crate::util::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// One color's numbers in a window: requests, 5xx, p99 ms.
type Side = (u64, u64, f64);

fn metrics(indent: &str, (requests, errors, p99): Side) -> String {
    format!(
        "{indent}requests: {requests}\n{indent}status_2xx: {}\n{indent}status_5xx: {errors}\n\
         {indent}p50_ms: {}\n{indent}p90_ms: {}\n{indent}p99_ms: {p99}\n",
        requests - errors,
        p99 / 4.0,
        p99 / 2.0
    )
}

/// A `--context` file with an `analysis:` section, as the deploy builds it.
fn context(dir: &Path, candidate: Side, baseline: Option<Side>, attempt: u32) -> PathBuf {
    let mut yaml = format!(
        "target:\n  color: green\n  app_name: shop-green\nattempt: {attempt}\nanalysis:\n  \
         duration_ms: 10000\n  weight_percent: 50\n  source: router\n  candidate:\n{}",
        metrics("    ", candidate)
    );
    if let Some(b) = baseline {
        yaml.push_str(&format!("  baseline:\n{}", metrics("    ", b)));
    }
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = dir.join(format!("window-{}.yaml", N.fetch_add(1, Ordering::Relaxed)));
    std::fs::write(&path, yaml).unwrap();
    path
}

fn bluegreen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(args)
        .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
        .output()
        .expect("running bluegreen")
}

/// Runs `slo-check` at `analyze` on `ctx`: the exit code and stdout.
fn slo_check(ctx: Option<&Path>, extra: &[&str]) -> (i32, String) {
    let plugin = component("slo-check");
    let mut args = vec![
        "plugin",
        "run",
        plugin.to_str().unwrap(),
        "--hook",
        "analyze",
    ];
    if let Some(ctx) = ctx {
        args.extend(["--context", ctx.to_str().unwrap()]);
    }
    args.extend(extra);
    let out = bluegreen(&args);
    let code = out.status.code().expect("exited");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (code, text)
}

const BLOCKED: i32 = 3;
const RETRY: i32 = 75;

#[test]
fn a_good_window_proceeds_and_reports_its_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), (500, 1, 80.0), Some((480, 0, 70.0)), 1);
    let (code, out) = slo_check(Some(&ctx), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("verdict: proceed"), "{out}");
    assert!(
        out.contains(
            "info [error-rate] candidate 5xx 0.2% (1/500) vs baseline 0.0% (0/480); limit +1.0%"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "info [p99-ratio] candidate p99 80 ms is 1.1x the baseline's 70 ms; limit 2.0x"
        ),
        "{out}"
    );
}

#[test]
fn a_candidate_failing_five_percent_blocks_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), (500, 26, 80.0), Some((480, 0, 70.0)), 1);
    let (code, out) = slo_check(Some(&ctx), &[]);
    assert_eq!(code, BLOCKED, "{out}");
    assert!(
        out.contains("block: candidate 5xx 5.2% (26/500) vs baseline 0.0% (0/480); limit +1.0%"),
        "{out}"
    );
    // The block names its rule, so a deliberate `deploy --allow error-rate`
    // can override it; JSON carries the same.
    let plugin = component("slo-check");
    let out = bluegreen(&[
        "plugin",
        "run",
        plugin.to_str().unwrap(),
        "--hook",
        "analyze",
        "--context",
        ctx.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(BLOCKED));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["verdict"], "block", "{v}");
    assert!(v["detail"].as_str().unwrap().contains("(26/500)"), "{v}");
    assert_eq!(
        (&v["findings"][0]["rule"], &v["findings"][0]["severity"]),
        (&"error-rate".into(), &"error".into()),
        "{v}"
    );
    // A looser limit from the deploy file lets the same window through.
    let (code, out) = slo_check(Some(&ctx), &["--setting", "max_error_rate=0.1"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("limit +10.0%"), "{out}");
}

#[test]
fn a_thin_window_asks_to_watch_longer_then_proceeds_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let thin = |attempt| context(dir.path(), (12, 0, 80.0), Some((400, 0, 70.0)), attempt);
    let (code, out) = slo_check(Some(&thin(3)), &[]);
    assert_eq!(code, RETRY, "{out}");
    assert!(out.contains("verdict: retry after 1000 ms"), "{out}");
    // The attempt the host passes reaches the plugin.
    assert!(
        out.contains("12 candidate requests in 10000 ms at 50% weight, need 50")
            && out.contains("attempt 3 of 10"),
        "{out}"
    );
    let (code, out) = slo_check(Some(&thin(10)), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning [thin-window] only 12 candidate requests")
            && out.contains("too thin to judge"),
        "{out}"
    );
    // `min_requests` is the plugin's setting to lower.
    let (code, out) = slo_check(Some(&thin(1)), &["--setting", "min_requests=10"]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn a_slow_candidate_blocks_on_its_p99_against_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), (500, 0, 300.0), Some((480, 0, 100.0)), 1);
    let (code, out) = slo_check(Some(&ctx), &[]);
    assert_eq!(code, BLOCKED, "{out}");
    assert!(
        out.contains("block: candidate p99 300 ms is 3.0x the baseline's 100 ms; limit 2.0x"),
        "{out}"
    );
    // The same ratio under the 20 ms floor is noise, not a regression.
    let ctx = context(dir.path(), (500, 0, 15.0), Some((480, 0, 5.0)), 1);
    let (code, out) = slo_check(Some(&ctx), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ratio is not checked"), "{out}");
    // An absolute SLO, set in the deploy file, holds whatever the baseline.
    let ctx = context(dir.path(), (500, 0, 260.0), Some((480, 0, 250.0)), 1);
    let (code, out) = slo_check(Some(&ctx), &["--setting", "max_p99_ms=200"]);
    assert_eq!(code, BLOCKED, "{out}");
    assert!(
        out.contains("candidate p99 260 ms against the SLO of 200 ms"),
        "{out}"
    );
}

/// The inputs that would fool a naive check: a candidate nobody reached is
/// not "0% errors", and a failure both colors share is not the release's.
#[test]
fn no_traffic_is_not_zero_errors_and_a_shared_failure_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let empty = |attempt| context(dir.path(), (0, 0, 0.0), Some((480, 0, 70.0)), attempt);
    let (code, out) = slo_check(Some(&empty(1)), &[]);
    assert_eq!(code, RETRY, "{out}");
    // Not even with a zero minimum.
    let (code, out) = slo_check(Some(&empty(1)), &["--setting", "min_requests=0"]);
    assert_eq!(code, RETRY, "{out}");
    // Out of patience: it goes on, but says it judged nothing.
    let (code, out) = slo_check(Some(&empty(10)), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning [thin-window]") && out.contains("no traffic reached the candidate"),
        "{out}"
    );
    assert!(
        !out.contains("candidate 5xx 0.0%"),
        "no error rate claimed: {out}"
    );
    // No `analysis:` at all (an empty window) is the same: watch longer.
    let (code, out) = slo_check(None, &[]);
    assert_eq!(code, RETRY, "{out}");

    // Both colors fail 5%: the release is not worse than what it replaces.
    let ctx = context(dir.path(), (500, 25, 80.0), Some((480, 24, 75.0)), 1);
    let (code, out) = slo_check(Some(&ctx), &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("candidate 5xx 5.0% (25/500) vs baseline 5.0% (24/480)"),
        "{out}"
    );
    assert!(
        out.contains("warning [baseline-errors] the baseline fails too"),
        "{out}"
    );
    // Without a baseline the limit is absolute: 5% blocks.
    let ctx = context(dir.path(), (500, 25, 80.0), None, 1);
    let (code, out) = slo_check(Some(&ctx), &[]);
    assert_eq!(code, BLOCKED, "{out}");
    assert!(out.contains("no baseline to compare"), "{out}");
}

#[test]
fn a_misspelled_or_bad_setting_is_a_plugin_error_not_a_default() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path(), (500, 0, 80.0), Some((480, 0, 70.0)), 1);
    let (code, out) = slo_check(Some(&ctx), &["--setting", "max_error_rte=0.5"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unknown setting `max_error_rte`"), "{out}");
    let (code, out) = slo_check(Some(&ctx), &["--setting", "max_p99_ratio=0.5"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("setting `max_p99_ratio`"), "{out}");
}

/// `plugin new --hook analyze` writes a Rust project that builds, exports
/// exactly `analyze`, and runs on the sample window it ships with.
#[test]
fn plugin_new_writes_an_analyze_plugin_that_builds_and_judges_its_sample() {
    let dir = tempfile::tempdir().unwrap();
    let new = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(args)
            .current_dir(dir.path())
            .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
            .output()
            .unwrap()
    };
    let out = new(&[
        "plugin",
        "new",
        "error-gate",
        "--lang",
        "js",
        "--hook",
        "analyze",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no JS analyze template: {out:?}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--lang rust"),
        "{out:?}"
    );
    let out = new(&[
        "plugin",
        "new",
        "error-gate",
        "--lang",
        "rust",
        "--hook",
        "analyze",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["hook"], "analyze", "{v}");
    let project = dir.path().join("error-gate");
    let build = build_new_plugin(&project);
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let wasm = project.join("error-gate.wasm");
    let check = new(&["plugin", "check", wasm.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&check.stdout).contains("hooks:   analyze\n"),
        "{check:?}"
    );
    let run = |ctx: &Path| {
        new(&[
            "plugin",
            "run",
            wasm.to_str().unwrap(),
            "--hook",
            "analyze",
            "--context",
            ctx.to_str().unwrap(),
        ])
    };
    // The sample window, as its comment says: a 5.2% candidate blocks.
    let out = run(&project.join("window.yaml"));
    assert_eq!(out.status.code(), Some(BLOCKED), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("candidate 5xx 5.2% (26/500) vs baseline 0.0%; limit +1.0%"),
        "{out:?}"
    );
    let fine = context(dir.path(), (500, 0, 80.0), Some((480, 0, 70.0)), 1);
    assert_eq!(run(&fine).status.code(), Some(0));
}
