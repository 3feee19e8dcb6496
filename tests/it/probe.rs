//! `http-probe` against real HTTP servers on 127.0.0.1.

use crate::util::*;
use bluegreen::plugin::{FailureKind, Hook, HookContext, Origin, Sandbox, Verdict};

fn probe_ctx(url: &str) -> HookContext {
    let mut c = ctx();
    c.target.candidate_url = url.to_string();
    c
}

fn allow(url: &str, pairs: &[(&str, &str)]) -> bluegreen::plugin::PluginConfig {
    with_sandbox(
        settings(pairs),
        Sandbox {
            http: vec![Origin::parse(url).unwrap()],
            ..Sandbox::default()
        },
    )
}

#[tokio::test]
async fn a_healthy_candidate_proceeds() {
    let host = host();
    let probe = load(&host, "http-probe").await;
    let server = TestServer::start(200, "status: ready");
    let config = allow(
        &server.url(),
        &[("paths", "/health, /ready"), ("body-contains", "ready")],
    );
    let report = host
        .call(
            &probe,
            Hook::HealthCheck,
            &probe_ctx(&server.url()),
            &config,
        )
        .await
        .unwrap();
    assert_eq!(
        report.outcome.verdict,
        Verdict::Proceed,
        "{:?}",
        report.outcome
    );
    assert_eq!(server.hits(), 2);
    assert_eq!(report.log.len(), 2);
}

#[tokio::test]
async fn a_candidate_not_ready_yet_asks_to_retry_with_the_reason() {
    let host = host();
    let probe = load(&host, "http-probe").await;

    let failing = TestServer::start(503, "starting");
    let config = allow(&failing.url(), &[("retry-after-ms", "250")]);
    let r = host
        .call(
            &probe,
            Hook::HealthCheck,
            &probe_ctx(&failing.url()),
            &config,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.verdict, Verdict::RetryAfterMs(250));
    assert_eq!(r.outcome.findings[0].rule, "status");
    assert!(
        r.outcome.findings[0]
            .message
            .contains("status 503, expected 200"),
        "{:?}",
        r.outcome
    );

    let wrong_body = TestServer::start(200, "booting");
    let config = allow(&wrong_body.url(), &[("body-contains", "ready")]);
    let r = host
        .call(
            &probe,
            Hook::HealthCheck,
            &probe_ctx(&wrong_body.url()),
            &config,
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.verdict, Verdict::RetryAfterMs(500));
    assert_eq!(r.outcome.findings[0].rule, "body");

    // Nothing listening: a port we bound and released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{closed}");
    let r = host
        .call(
            &probe,
            Hook::HealthCheck,
            &probe_ctx(&url),
            &allow(&url, &[]),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.findings[0].rule, "unreachable");
    assert!(
        r.outcome.findings[0].message.contains("ConnectionRefused"),
        "{:?}",
        r.outcome
    );
}

#[tokio::test]
async fn the_probe_needs_a_grant_for_the_candidate() {
    let host = host();
    let probe = load(&host, "http-probe").await;
    let server = TestServer::start(200, "ok");
    let r = host
        .call(
            &probe,
            Hook::HealthCheck,
            &probe_ctx(&server.url()),
            &settings(&[]),
        )
        .await
        .unwrap();
    assert!(matches!(r.outcome.verdict, Verdict::RetryAfterMs(_)));
    assert!(
        r.outcome.findings[0].message.contains("HttpRequestDenied"),
        "{:?}",
        r.outcome
    );
    // The origin only: a path may carry a secret.
    assert_eq!(r.denied, vec![format!("HTTP GET {}", server.url())]);
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn localhost_names_reach_loopback_and_keep_their_host_header() {
    let host = host();
    let probe = load(&host, "http-probe").await;
    let server = TestServer::start(200, "ok");
    let url = format!("http://shop-green.apps.localhost:{}", server.addr.port());
    let r = host
        .call(
            &probe,
            Hook::HealthCheck,
            &probe_ctx(&url),
            &allow(&url, &[]),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.verdict, Verdict::Proceed, "{:?}", r.outcome);
    assert_eq!(
        server.hosts.lock().unwrap().as_slice(),
        [format!("shop-green.apps.localhost:{}", server.addr.port())]
    );
}

#[tokio::test]
async fn bad_settings_are_a_plugin_error_not_a_verdict() {
    let host = host();
    let probe = load(&host, "http-probe").await;
    let err = host
        .call(
            &probe,
            Hook::HealthCheck,
            &ctx(),
            &settings(&[("status", "two hundred")]),
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err.kind, FailureKind::Malfunction(m) if m.contains("setting `status`")),
        "{err}"
    );
}
