//! `notify` (item 7 of «9 · CF fidelity») through the real host against a
//! webhook receiver on 127.0.0.1: what it posts, that the sandbox's
//! `allow_http` decides whether it may, that a failed notification never
//! stops a deploy, and that the secret in the webhook's path stays secret.

use crate::util::*;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use bluegreen::plugin::context::{Color, FailureInfo, Severity};
use bluegreen::plugin::{CallReport, FailureKind, Hook, HookContext, Origin, Sandbox, Verdict};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The secret part of a Slack-style webhook URL.
const TOKEN: &str = "XXXXSECRET";
const PATH: &str = "/services/T000/B000/XXXXSECRET";

/// One request the receiver saw.
struct Seen {
    method: Method,
    path: String,
    content_type: String,
    body: Value,
}

/// A webhook receiver answering `status` with `answer`; returns its base URL
/// and what it saw. It runs until the test's runtime ends.
async fn receiver(status: u16, answer: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let content_type = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                log.lock().unwrap().push(Seen {
                    method,
                    path: uri.to_string(),
                    content_type,
                    body,
                });
                (StatusCode::from_u16(status).unwrap(), answer)
            }
        },
    );
    (serve(app).await, seen)
}

fn config(base: &str, granted: &[&str], extra: &[(&str, &str)]) -> bluegreen::plugin::PluginConfig {
    let webhook = format!("{base}{PATH}");
    let mut pairs = vec![("webhook", webhook.as_str())];
    pairs.extend_from_slice(extra);
    with_sandbox(
        settings(&pairs),
        Sandbox {
            http: granted.iter().map(|o| Origin::parse(o).unwrap()).collect(),
            ..Sandbox::default()
        },
    )
}

fn deploy_ctx() -> HookContext {
    let mut c = ctx();
    c.deploy.app = "shop".into();
    c.deploy.release = "abc1234".into();
    c.deploy.previous_release = Some("def5678".into());
    c
}

fn failure_ctx() -> HookContext {
    let mut c = deploy_ctx();
    c.failure = Some(FailureInfo {
        step: "health".into(),
        color: Some(Color::Green),
        message: "candidate answered 503 on /health".into(),
    });
    c
}

/// Everything the call shows a person deploying: the plugin's outcome and
/// output, and the host's record of refused requests (origins only).
fn assert_no_secret(r: &CallReport) {
    let mut shown = format!("{:?} {:?}", r.outcome, r.denied);
    for line in &r.log {
        shown.push_str(&line.message);
    }
    shown.push_str(&r.stdout);
    shown.push_str(&r.stderr);
    assert!(!shown.contains(TOKEN), "the webhook token leaked: {shown}");
    assert!(
        !shown.contains("/services/"),
        "the webhook path leaked: {shown}"
    );
}

fn text(seen: &Seen) -> &str {
    seen.body["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn post_deploy_posts_the_app_release_and_previous_release() {
    let host = host();
    let notify = load(&host, "notify").await;
    let (base, seen) = receiver(200, "ok").await;
    let cfg = config(
        &base,
        &[&base],
        &[("channel", "#deploys"), ("username", "bluegreen")],
    );
    let r = host
        .call(&notify, Hook::PostDeploy, &deploy_ctx(), &cfg)
        .await
        .unwrap();

    assert_eq!(r.outcome.verdict, Verdict::Proceed, "{:?}", r.outcome);
    assert!(r.outcome.findings.is_empty(), "{:?}", r.outcome);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.path, PATH);
    assert_eq!(req.content_type, "application/json");
    for part in ["shop", "abc1234", "def5678"] {
        assert!(text(req).contains(part), "{part} missing in {}", req.body);
    }
    assert!(
        req.body["blocks"].as_array().is_some_and(|b| !b.is_empty()),
        "{}",
        req.body
    );
    assert_eq!(req.body["channel"], "#deploys");
    assert_eq!(req.body["username"], "bluegreen");
    // The log says where it went, by origin only.
    let origin = Origin::parse(&base).unwrap().to_string();
    assert!(
        r.log
            .iter()
            .any(|l| l.message.contains(&origin) && l.message.contains("200")),
        "{:?}",
        r.log
    );
    assert_no_secret(&r);
}

#[tokio::test]
async fn on_failure_posts_the_failed_step_color_and_message() {
    let host = host();
    let notify = load(&host, "notify").await;
    let (base, seen) = receiver(200, "ok").await;
    let r = host
        .call(
            &notify,
            Hook::OnFailure,
            &failure_ctx(),
            &config(&base, &[&base], &[]),
        )
        .await
        .unwrap();

    assert_eq!(r.outcome.verdict, Verdict::Proceed, "{:?}", r.outcome);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let req = &seen[0];
    assert_eq!(req.method, Method::POST);
    assert_eq!(req.content_type, "application/json");
    for part in [
        "shop",
        "abc1234",
        "def5678",
        "health",
        "green",
        "candidate answered 503 on /health",
    ] {
        assert!(text(req).contains(part), "{part} missing in {}", req.body);
    }
    assert!(req.body.get("channel").is_none(), "{}", req.body);
    assert_no_secret(&r);
}

#[tokio::test]
async fn an_origin_not_granted_is_denied_and_the_outcome_says_so_without_the_token() {
    let host = host();
    let notify = load(&host, "notify").await;
    let (base, seen) = receiver(200, "ok").await;
    let origin = Origin::parse(&base).unwrap().to_string();
    // Nothing granted, then only a near miss (same address, other port).
    let port = Origin::parse(&base).unwrap().port;
    let near_miss = format!("http://127.0.0.1:{}", port.wrapping_add(1));
    for (hook, c) in [
        (Hook::PostDeploy, deploy_ctx()),
        (Hook::OnFailure, failure_ctx()),
    ] {
        for granted in [vec![], vec![near_miss.as_str()]] {
            let r = host
                .call(&notify, hook, &c, &config(&base, &granted, &[]))
                .await
                .unwrap();
            assert_eq!(r.outcome.verdict, Verdict::Proceed, "{:?}", r.outcome);
            let f = &r.outcome.findings[..];
            assert_eq!(f.len(), 1, "{:?}", r.outcome);
            assert_eq!(
                (f[0].severity, f[0].rule.as_str()),
                (Severity::Warning, "notify-denied")
            );
            assert!(
                f[0].message.contains("denied")
                    && f[0].message.contains(&origin)
                    && f[0].message.contains("allow_http"),
                "{}",
                f[0].message
            );
            assert_eq!(
                r.denied.len(),
                1,
                "the host saw no refused request: {:?}",
                r.denied
            );
            assert_no_secret(&r);
        }
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        0,
        "a denied request reached the receiver"
    );
}

#[tokio::test]
async fn an_error_answer_is_a_warning_and_the_deploy_proceeds() {
    let host = host();
    let notify = load(&host, "notify").await;
    let (base, seen) = receiver(500, "no_service").await;
    for (hook, c) in [
        (Hook::PostDeploy, deploy_ctx()),
        (Hook::OnFailure, failure_ctx()),
    ] {
        let r = host
            .call(&notify, hook, &c, &config(&base, &[&base], &[]))
            .await
            .unwrap();
        assert_eq!(r.outcome.verdict, Verdict::Proceed, "{:?}", r.outcome);
        let f = &r.outcome.findings[..];
        assert_eq!(f.len(), 1, "{:?}", r.outcome);
        assert_eq!(
            (f[0].severity, f[0].rule.as_str()),
            (Severity::Warning, "notify-status")
        );
        assert!(
            f[0].message.contains("500") && f[0].message.contains("no_service"),
            "{}",
            f[0].message
        );
        assert_no_secret(&r);
    }
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_webhook_that_never_answers_is_cut_off_at_timeout_ms() {
    let host = host();
    let notify = load(&host, "notify").await;
    // Connections complete in the backlog, but nobody ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let started = Instant::now();
    let r = host
        .call(
            &notify,
            Hook::PostDeploy,
            &deploy_ctx(),
            &config(&base, &[&base], &[("timeout-ms", "300")]),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(r.outcome.verdict, Verdict::Proceed, "{:?}", r.outcome);
    let f = &r.outcome.findings[..];
    assert_eq!(f.len(), 1, "{:?}", r.outcome);
    assert_eq!(f[0].rule, "notify-timeout", "{:?}", f[0]);
    assert!(f[0].message.contains("300 ms"), "{}", f[0].message);
    assert_no_secret(&r);
    drop(silent);
}

#[tokio::test]
async fn on_selects_the_events_and_bad_settings_are_a_plugin_error() {
    let host = host();
    let notify = load(&host, "notify").await;
    let (base, seen) = receiver(200, "ok").await;

    let only_failures = config(&base, &[&base], &[("on", "on-failure")]);
    let r = host
        .call(&notify, Hook::PostDeploy, &deploy_ctx(), &only_failures)
        .await
        .unwrap();
    assert_eq!(r.outcome.verdict, Verdict::Proceed, "{:?}", r.outcome);
    assert_eq!(
        seen.lock().unwrap().len(),
        0,
        "post-deploy was not selected"
    );
    host.call(&notify, Hook::OnFailure, &failure_ctx(), &only_failures)
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1);

    let no_webhook = with_sandbox(
        settings(&[("channel", "#deploys")]),
        Sandbox {
            http: vec![Origin::parse(&base).unwrap()],
            ..Sandbox::default()
        },
    );
    for hook in [Hook::PostDeploy, Hook::OnFailure] {
        let err = host
            .call(&notify, hook, &failure_ctx(), &no_webhook)
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&err.kind, FailureKind::Malfunction(m) if m.contains("setting `webhook` is required")),
            "{err}"
        );
    }
    // A malformed URL is refused without echoing it (it may be the secret).
    let bad = with_sandbox(
        settings(&[("webhook", "hooks.example/XXXXSECRET")]),
        Sandbox::default(),
    );
    let err = host
        .call(&notify, Hook::PostDeploy, &deploy_ctx(), &bad)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&err.kind, FailureKind::Malfunction(m) if m.contains("setting `webhook`")),
        "{err}"
    );
    assert!(!err.to_string().contains(TOKEN), "{err}");
    let err = host
        .call(
            &notify,
            Hook::PostDeploy,
            &deploy_ctx(),
            &config(&base, &[&base], &[("on", "deploy")]),
        )
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("setting `on`"), "{err}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}
