//! The sandbox, attacked by the real `hostile` component: each property is
//! asserted by the kind of failure it produces, next to a positive control
//! showing the same attack succeeds when the capability is granted (so a
//! pass cannot come from the attack being broken).

use crate::util::*;
use bluegreen::plugin::{
    FailureKind, Hook, Origin, PluginConfig, PluginError, PluginHost, Sandbox, Verdict,
};
use std::time::{Duration, Instant};

async fn attack(
    host: &PluginHost,
    config: PluginConfig,
) -> Result<bluegreen::plugin::CallReport, PluginError> {
    let hostile = load(host, "hostile").await;
    host.call(&hostile, Hook::PreDeploy, &ctx(), &config).await
}

fn sandbox(f: impl FnOnce(&mut Sandbox)) -> Sandbox {
    let mut s = Sandbox::default();
    f(&mut s);
    s
}

/// The deadline holds, whether the guest spins in its own code (epoch
/// interruption) or sits in a host call (the backstop): never early, and
/// within 10% + 100 ms of the limit. A loaded machine may not run the
/// stopping thread at once, so a late stop is tried again (up to eight
/// times: with 8 tests at a time on 2 cores, three 1.2 s loops in a row once
/// stopped 0.26 to 0.49 s late): one stop within that bound shows the
/// deadline is precise, and none may be later than twice the limit and a
/// second (a deadline that does not hold is later every time, or never stops
/// the guest at all).
#[tokio::test]
async fn deadlines_stop_spinning_and_sleeping_plugins_on_time() {
    let host = host();
    load(&host, "hostile").await;
    for (attack_name, limit) in [("loop", 300), ("loop", 1200), ("sleep", 400)] {
        let limit = Duration::from_millis(limit);
        let precise = limit.mul_f64(1.1) + Duration::from_millis(100);
        let loose = limit * 2 + Duration::from_secs(1);
        let mut tries = Vec::new();
        while tries.len() < 8 && !tries.iter().any(|took| *took <= precise) {
            let config = with_sandbox(
                settings(&[("attack", attack_name)]),
                sandbox(|s| s.timeout = limit),
            );
            let started = Instant::now();
            let err = attack(&host, config).await.expect_err("must time out");
            let took = started.elapsed();
            assert!(
                matches!(err.kind, FailureKind::Timeout(t) if t == limit),
                "{attack_name}: {err}"
            );
            assert!(
                took <= loose,
                "{attack_name}: stopped after {took:?}, limit {limit:?}, bound {loose:?}"
            );
            assert!(
                took + Duration::from_millis(20) >= limit,
                "{attack_name}: stopped early, after {took:?}"
            );
            assert!(
                err.to_string().contains("at hook `pre-deploy` timed out"),
                "{err}"
            );
            tries.push(took);
        }
        assert!(
            tries.iter().any(|took| *took <= precise),
            "{attack_name}: stopped after {tries:?}, limit {limit:?}: never within {precise:?}"
        );
    }
}

#[tokio::test]
async fn memory_is_capped_over_the_whole_plugin() {
    let host = host();
    let config = with_sandbox(
        settings(&[("attack", "memory")]),
        sandbox(|s| s.memory = 16 << 20),
    );
    let err = attack(&host, config)
        .await
        .expect_err("memory bomb must be stopped");
    assert!(
        matches!(err.kind, FailureKind::MemoryLimit(limit) if limit == 16 << 20),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("exceeded its memory limit of 16 MiB"),
        "{err}"
    );

    // The same plugin runs fine under the same cap when it does not hoard.
    let fine = with_sandbox(
        settings(&[("attack", "counter")]),
        sandbox(|s| s.memory = 16 << 20),
    );
    assert_eq!(
        attack(&host, fine).await.unwrap().outcome.verdict,
        Verdict::Proceed
    );
}

#[tokio::test]
async fn a_trap_is_reported_with_the_plugins_stderr() {
    let err = attack(&host(), settings(&[("attack", "trap")]))
        .await
        .err()
        .unwrap();
    assert!(matches!(err.kind, FailureKind::Trap(_)), "{err}");
    assert!(
        err.stderr.contains("hostile plugin panicked on purpose"),
        "{:?}",
        err.stderr
    );
    assert!(err.to_string().contains("plugin stderr:"), "{err}");
}

#[tokio::test]
async fn output_floods_are_capped_and_counted_not_fatal() {
    let config = with_sandbox(
        settings(&[("attack", "stdout")]),
        sandbox(|s| s.output_cap = 4096),
    );
    let report = attack(&host(), config).await.unwrap();
    assert_eq!(report.outcome.verdict, Verdict::Proceed);
    assert_eq!(report.stdout.len(), 4096);
    assert_eq!(report.dropped, 8 * 1024 * 1024 - 4096);
}

#[tokio::test]
async fn no_ambient_environment_arguments_or_stdin() {
    // The test process itself has a rich environment (PATH, HOME, CARGO_*).
    assert!(std::env::vars().count() > 3);
    let report = attack(&host(), settings(&[("attack", "env")]))
        .await
        .unwrap();
    assert_eq!(
        report.outcome.verdict,
        Verdict::Proceed,
        "{:?}",
        report.outcome
    );
    assert!(
        report.outcome.findings[0]
            .message
            .starts_with("env 0, args 0, stdin 0 bytes"),
        "{:?}",
        report.outcome
    );
}

#[tokio::test]
async fn files_outside_the_grants_cannot_be_read_or_written() {
    let host = host();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET").unwrap();
    let granted = outside.path().join("granted");
    std::fs::create_dir(&granted).unwrap();
    std::fs::write(granted.join("ok.txt"), "visible").unwrap();
    std::os::unix::fs::symlink(&secret, granted.join("link.txt")).unwrap();
    let grant = bluegreen::plugin::DirGrant::parse(granted.to_str().unwrap()).unwrap();
    let g = grant.guest.clone();
    let read = |path: String| {
        with_sandbox(
            settings(&[("attack", "read-file"), ("path", &path)]),
            sandbox(|s| s.dirs = vec![grant.clone()]),
        )
    };

    // Positive control: a granted file is readable.
    let ok = attack(&host, read(format!("{g}/ok.txt"))).await.unwrap();
    assert!(
        matches!(&ok.outcome.verdict, Verdict::Block(m) if m.contains("visible")),
        "{:?}",
        ok.outcome
    );

    for path in [
        "/etc/passwd".to_string(),
        secret.display().to_string(),
        format!("{g}/../secret.txt"),
        format!("{g}/link.txt"),
    ] {
        let err = attack(&host, read(path.clone()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{path} was readable"));
        assert!(
            matches!(&err.kind, FailureKind::Malfunction(m) if m.starts_with(&format!("read {path}:"))),
            "{path}: {err}"
        );
        assert!(
            !err.to_string().contains("TOP-SECRET") && !err.to_string().contains("root:"),
            "{err}"
        );
    }

    let target = format!("{g}/new.txt");
    let write = with_sandbox(
        settings(&[("attack", "write-file"), ("path", &target)]),
        sandbox(|s| s.dirs = vec![grant.clone()]),
    );
    let err = attack(&host, write).await.expect_err("read-only grant");
    assert!(
        matches!(&err.kind, FailureKind::Malfunction(m) if m.starts_with("write ")),
        "{err}"
    );
    assert!(!granted.join("new.txt").exists());
}

#[tokio::test]
async fn http_goes_only_to_allowed_origins() {
    let host = host();
    let server = TestServer::start(200, "hello");
    let url = format!("{}/x", server.url());
    let get = |allowed: Vec<Origin>| {
        with_sandbox(
            settings(&[("attack", "http"), ("url", &url)]),
            sandbox(|s| s.http = allowed),
        )
    };

    let err = attack(&host, get(vec![]))
        .await
        .expect_err("no origin granted");
    assert!(matches!(err.kind, FailureKind::Denied(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("HTTP GET {}", server.url()))
            && err.to_string().contains("HttpRequestDenied"),
        "{err}"
    );
    // Same host, other port, and a name for the same address: still denied.
    let near_misses = vec![
        Origin::parse(&format!("http://127.0.0.1:{}", server.addr.port() + 1)).unwrap(),
        Origin::parse(&format!("http://localhost:{}", server.addr.port())).unwrap(),
        Origin::parse(&format!("https://127.0.0.1:{}", server.addr.port())).unwrap(),
    ];
    let err = attack(&host, get(near_misses))
        .await
        .expect_err("near misses are not the origin");
    assert!(matches!(err.kind, FailureKind::Denied(_)), "{err}");
    assert_eq!(server.hits(), 0, "a denied request reached the server");

    // Positive control: the exact origin gets through.
    let ok = attack(&host, get(vec![Origin::parse(&server.url()).unwrap()]))
        .await
        .unwrap();
    assert!(
        matches!(&ok.outcome.verdict, Verdict::Block(m) if m.contains("answered 200")),
        "{:?}",
        ok.outcome
    );
    assert_eq!(server.hits(), 1);
}
