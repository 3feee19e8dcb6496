//! Hostile plugins against the host itself (batteries of «7 · Hardening»):
//! endless recursion, a flood of log calls, findings of 100 MB, a start
//! function that never returns. Each is contained with a clear message,
//! and what the host keeps of the plugin's output stays bounded. (A read
//! that blocks on a FIFO is `defect_7_…` in `hardening.rs`.)

use crate::util::*;
use bluegreen::plugin::{FailureKind, Hook, PluginConfig, Sandbox, Verdict};
use std::time::{Duration, Instant};

async fn hostile(
    config: PluginConfig,
) -> Result<bluegreen::plugin::CallReport, bluegreen::plugin::PluginError> {
    let host = host();
    let plugin = load(&host, "hostile").await;
    host.call(&plugin, Hook::PreDeploy, &ctx(), &config).await
}

#[tokio::test]
async fn deep_recursion_is_a_trap_that_names_the_stack() {
    let err = hostile(settings(&[("attack", "recursion")]))
        .await
        .expect_err("recursion without end must fail");
    assert!(matches!(err.kind, FailureKind::Trap(_)), "{err}");
    assert!(err.to_string().contains("call stack exhausted"), "{err}");
    assert!(
        err.to_string()
            .contains("plugin `hostile` at hook `pre-deploy`"),
        "{err}"
    );
    // The host is unharmed: the next call runs.
    let ok = hostile(settings(&[("attack", "counter")])).await.unwrap();
    assert_eq!(ok.outcome.verdict, Verdict::Proceed);
}

/// Half a million empty log lines: before, each was kept (the byte cap
/// counted only their text), so the host's memory grew with the flood.
#[tokio::test]
async fn a_flood_of_log_calls_keeps_a_bounded_log() {
    let lines = 500_000u64;
    let report = hostile(settings(&[
        ("attack", "log-flood"),
        ("lines", &lines.to_string()),
    ]))
    .await
    .unwrap();
    let kept = report.log.len() as u64;
    // The README's promise: 64 KiB of output per stream.
    let cap = 64 * 1024;
    assert!(kept > 0 && kept * 32 <= cap, "kept {kept} lines");
    assert_eq!(
        kept + report.dropped,
        lines,
        "every line kept or counted as dropped"
    );
}

#[tokio::test]
async fn findings_of_100_mb_are_contained_by_the_memory_limit_or_the_outcome_cap() {
    // Within the default 64 MiB the plugin cannot even build them.
    let err = hostile(settings(&[("attack", "huge-findings"), ("mb", "100")]))
        .await
        .expect_err("100 MB of findings in 64 MiB");
    // The documented default (plugins/sandbox.md): 64 MiB.
    assert!(
        matches!(err.kind, FailureKind::MemoryLimit(limit) if limit == 64 << 20),
        "{err}"
    );
    // Granted the memory, it builds them; wasmtime refuses to copy that
    // much into the host (its hostcall fuel), before our 16 MiB cap would.
    let big = Sandbox {
        memory: 512 << 20,
        ..Sandbox::default()
    };
    let err = hostile(with_sandbox(
        settings(&[("attack", "huge-findings"), ("mb", "100")]),
        big,
    ))
    .await
    .expect_err("100 MB of findings is over the outcome cap");
    assert!(matches!(err.kind, FailureKind::BadResult(_)), "{err}");
    assert!(
        err.to_string().contains("too much data is being copied"),
        "{err}"
    );
    // The control: a few findings of the same shape pass.
    let ok = hostile(settings(&[("attack", "huge-findings"), ("mb", "2")]))
        .await
        .unwrap();
    assert_eq!(ok.outcome.findings.len(), 2);
}

/// A component whose core start function spins forever, exporting (in name
/// only) a hook interface so it gets as far as being instantiated.
const SPINNING_START: &str = r#"
(component
  (core module $m
    (func $spin (loop $forever (br $forever)))
    (start $spin))
  (core instance $i (instantiate $m))
  (instance $hooks)
  (export "bluegreen:hooks/pre-deploy@0.1.0" (instance $hooks)))
"#;

#[tokio::test]
async fn a_start_function_that_never_returns_fails_the_load_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spinner.wasm");
    std::fs::write(&path, wat::parse_str(SPINNING_START).unwrap()).unwrap();
    let host = host();
    let t = Instant::now();
    let Err(err) = host.load(&path).await else {
        panic!("a start that never ends was loaded");
    };
    // The README's promise: a 5 s deadline per call by default.
    let limit = std::time::Duration::from_secs(5);
    assert!(
        matches!(err.kind, FailureKind::Timeout(t) if t == limit),
        "{err}"
    );
    assert!(
        t.elapsed() < limit + Duration::from_secs(2),
        "{:?}",
        t.elapsed()
    );
    assert!(err.to_string().contains("spinner"), "{err}");
}
