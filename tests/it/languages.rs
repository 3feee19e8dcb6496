//! Plugins in JavaScript, Python and C, built from source by their own
//! toolchains, loaded, checked and run on their hooks through the host with
//! real inputs: a real HTTP server on 127.0.0.1, fixed clocks, real releases.

use crate::util::*;
use bluegreen::plugin::context::{DeployInfo, Severity, Target};
use bluegreen::plugin::{FailureKind, Hook, HookContext, Origin, Sandbox, Verdict};
use std::time::Duration;

/// Interpreted guests compile slowly the first time (~10 s); the budget per
/// call stays what a deploy would give a health check.
fn sandbox(http: &[&str]) -> Sandbox {
    Sandbox {
        http: http.iter().map(|o| Origin::parse(o).unwrap()).collect(),
        timeout: Duration::from_secs(10),
        ..Sandbox::default()
    }
}

#[tokio::test]
async fn the_javascript_smoke_test_checks_paths_on_the_candidate() {
    let host = host();
    let plugin = host.load(&lang_component("smoke-test")).await.unwrap();
    assert_eq!(plugin.hooks, [Hook::HealthCheck]);
    let healthy = TestServer::start(200, "status: ok");
    let sick = TestServer::start(503, "warming up");
    let ctx = |url: String| HookContext {
        target: Target {
            candidate_url: url,
            ..Target::default()
        },
        attempt: Some(1),
        ..ctx()
    };
    let config = |url: &str, pairs: &[(&str, &str)]| with_sandbox(settings(pairs), sandbox(&[url]));

    let ok = host
        .call(
            &plugin,
            Hook::HealthCheck,
            &ctx(healthy.url()),
            &config(
                &healthy.url(),
                &[("paths", "/health, /"), ("body-contains", "ok")],
            ),
        )
        .await
        .unwrap();
    assert_eq!(ok.outcome.verdict, Verdict::Proceed, "{:?}", ok.outcome);
    assert_eq!(ok.outcome.findings.len(), 2);
    assert_eq!(healthy.hits(), 2, "both paths fetched");

    let wrong_body = host
        .call(
            &plugin,
            Hook::HealthCheck,
            &ctx(healthy.url()),
            &config(&healthy.url(), &[("body-contains", "ready")]),
        )
        .await
        .unwrap();
    assert_eq!(wrong_body.outcome.verdict, Verdict::RetryAfterMs(500));
    assert_eq!(wrong_body.outcome.findings[0].rule, "smoke-body");

    let not_ready = host
        .call(
            &plugin,
            Hook::HealthCheck,
            &ctx(sick.url()),
            &config(&sick.url(), &[]),
        )
        .await
        .unwrap();
    assert_eq!(not_ready.outcome.verdict, Verdict::RetryAfterMs(500));
    assert!(
        not_ready.outcome.findings[0]
            .message
            .contains("HTTP 503, expected 200"),
        "{:?}",
        not_ready.outcome
    );

    // The sandbox holds: an origin the deploy file did not grant is refused.
    let denied = host
        .call(
            &plugin,
            Hook::HealthCheck,
            &ctx(sick.url()),
            &config(&healthy.url(), &[]),
        )
        .await
        .unwrap();
    assert_eq!(
        denied.outcome.findings[0].rule, "smoke-unreachable",
        "{:?}",
        denied.outcome
    );
    assert!(!denied.denied.is_empty());
    assert_eq!(sick.hits(), 1, "the denied request never left the sandbox");
}

#[tokio::test]
async fn the_python_change_window_blocks_inside_a_freeze_and_says_until_when() {
    let host = host();
    let plugin = host.load(&lang_component("change-window")).await.unwrap();
    assert_eq!(plugin.hooks, [Hook::PreDeploy]);
    let call = |now: &str, tz: &str| {
        let mut config = settings(&[
            ("windows", "fri 16:00 - mon 08:00; wed 12:00 - wed 13:00"),
            ("timezone", tz),
            ("now", now),
        ]);
        config.sandbox = Sandbox {
            dirs: vec![bluegreen::plugin::DirGrant::parse("/usr/share/zoneinfo").unwrap()],
            ..sandbox(&[])
        };
        let host = &host;
        let plugin = &plugin;
        async move { host.call(plugin, Hook::PreDeploy, &ctx(), &config).await }
    };
    // Friday 17:30 in Berlin (16:30 UTC, CET): frozen until Monday 08:00.
    let r = call("2026-11-27T16:30:00+00:00", "Europe/Berlin")
        .await
        .unwrap();
    assert_eq!(
        r.outcome.verdict,
        Verdict::Block(
            "deploys are frozen (fri 16:00 - mon 08:00, Europe/Berlin) until Mon 2026-11-30 08:00 CET (in 62h 30m)".into()
        )
    );
    // The same instant is Friday 15:30 in New York's offset: open.
    let r = call("2026-11-27T20:30:00+00:00", "-05:00").await.unwrap();
    assert_eq!(r.outcome.verdict, Verdict::Proceed);
    assert_eq!(r.outcome.findings[0].severity, Severity::Info);
    // Wednesday lunch, a window inside one day.
    let r = call("2026-11-25T12:59:00+01:00", "+01:00").await.unwrap();
    assert!(
        matches!(&r.outcome.verdict, Verdict::Block(m) if m.contains("(in 0h 01m)")),
        "{:?}",
        r.outcome
    );
    // Bad settings are the plugin's error, not a veto.
    let err = call("2026-11-25T12:00:00Z", "Mars/Olympus")
        .await
        .unwrap_err();
    assert!(
        matches!(&err.kind, FailureKind::Malfunction(m) if m.contains("time zone `Mars/Olympus` not found")),
        "{err}"
    );
}

#[tokio::test]
async fn the_c_release_gate_blocks_uncommitted_releases() {
    let host = host();
    let plugin = host.load(&lang_component("release-gate")).await.unwrap();
    assert_eq!(plugin.hooks, [Hook::PreDeploy]);
    let ctx = |release: &str| HookContext {
        deploy: DeployInfo {
            release: release.into(),
            ..DeployInfo::default()
        },
        ..ctx()
    };
    let r = host
        .call(
            &plugin,
            Hook::PreDeploy,
            &ctx("content-3f9a2c1d7e4b"),
            &settings(&[]),
        )
        .await
        .unwrap();
    assert!(
        matches!(&r.outcome.verdict, Verdict::Block(m) if m.contains("uncommitted work")),
        "{:?}",
        r.outcome
    );
    let r = host
        .call(
            &plugin,
            Hook::PreDeploy,
            &ctx("content-3f9a2c1d7e4b"),
            &settings(&[("allow-uncommitted", "true")]),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.verdict, Verdict::Proceed);
    let r = host
        .call(
            &plugin,
            Hook::PreDeploy,
            &ctx("3f9a2c1d7e4b"),
            &settings(&[("prefix", "v")]),
        )
        .await
        .unwrap();
    assert_eq!(
        r.outcome.verdict,
        Verdict::Block("release 3f9a2c1d7e4b does not start with `v`".into())
    );
    let r = host
        .call(
            &plugin,
            Hook::PreDeploy,
            &ctx("v1.4.2"),
            &settings(&[("prefix", "v")]),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.verdict, Verdict::Proceed);
}

/// `plugin new` for every language writes a project that builds with that
/// language's toolchain, passes `plugin check`, and runs as documented.
#[test]
fn plugin_new_writes_a_project_that_builds_checks_and_runs_in_every_language() {
    let dir = tempfile::tempdir().unwrap();
    let bluegreen = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(args)
            .current_dir(dir.path())
            .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
            .output()
            .unwrap()
    };
    for lang in ["rust", "js", "python", "c"] {
        let name = format!("freeze-{lang}");
        let out = bluegreen(&["plugin", "new", &name, "--lang", lang]);
        assert_eq!(out.status.code(), Some(0), "{lang}: {out:?}");
        let build = build_new_plugin(&dir.path().join(&name));
        assert!(
            build.status.success(),
            "{lang} build: {}",
            String::from_utf8_lossy(&build.stderr)
        );
        let wasm = format!("{name}/{name}.wasm");
        let check = bluegreen(&["plugin", "check", &wasm]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{lang}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        assert!(String::from_utf8_lossy(&check.stdout).contains("hooks:   pre-deploy\n"));
        let run = |extra: &[&str]| {
            let mut args = vec![
                "plugin",
                "run",
                wasm.as_str(),
                "--hook",
                "pre-deploy",
                "--timeout",
                "30s",
            ];
            args.extend(extra);
            bluegreen(&args).status.code()
        };
        assert_eq!(
            run(&["--setting", "frozen=true"]),
            Some(3),
            "{lang}: blocked"
        );
        assert_eq!(run(&[]), Some(0), "{lang}: proceeds");
    }
    // A second project of the same name is refused.
    let out = bluegreen(&["plugin", "new", "freeze-rust", "--lang", "rust"]);
    assert_eq!(out.status.code(), Some(2));
}
