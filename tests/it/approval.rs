//! The `approval` hook (item 2 of «26 · the operator in the loop»): canary
//! deploys on the local platform that pause (`steps: [10, pause, 100]`)
//! and are decided by plugins: the test `approver` (plugins/testing), and
//! `notify` posting the question to a webhook receiver on 127.0.0.1 that
//! answers like a chat approval bot. Each deploy's `--json` events say who
//! was asked, how often and what they answered; the history keeps who
//! decided.

use crate::deploy::{Fixture, events, text, write_file};
use crate::util::*;
use bluegreen::plugin::context::PauseInfo;
use bluegreen::plugin::{FailureKind, Hook, Origin, Verdict};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Short windows that go on without traffic: the pauses decide.
const WINDOWS: &str = "analysis: { duration: 1s, on_inconclusive: warn, p99_floor: 30s }\n";

/// v1 on both colors, then a canary file with `steps`, the components
/// `plugins` in `plugins/`, and each plugin's config.
fn serving_v1(f: &Fixture, steps: &str, plugins: &[&str], config: &str) {
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.plugins(plugins);
    write_file(
        f,
        "",
        &format!(
            "strategy: canary\nsteps: {steps}\n{WINDOWS}\
             plugins: {{ dir: plugins, config: {{ {config} }} }}\n"
        ),
    );
}

fn deploy_json(f: &Fixture, release: &str) -> Output {
    f.run(&["deploy", "--release", release, "--json"])
}

/// The `approval` events of `plugin`, in order.
fn approvals<'a>(ev: &'a [Value], plugin: &str) -> Vec<&'a Value> {
    ev.iter()
        .filter(|e| e["event"] == "approval" && e["plugin"] == plugin)
        .collect()
}

fn decisions(a: &[&Value]) -> Vec<String> {
    a.iter()
        .map(|e| e["decision"].as_str().unwrap().to_string())
        .collect()
}

fn paused_ms(ev: &[Value]) -> f64 {
    let r = ev
        .iter()
        .find(|e| e["event"] == "resumed")
        .expect("resumed");
    r["paused_ms"].as_f64().unwrap()
}

/// The approver says `retry-after` twice, then approves: the pause ends
/// without any operator command, after both waits, and the history says
/// which plugin approved. `hello`, which predates the hook, loads beside it
/// and is not asked.
#[test]
fn an_approving_plugin_ends_the_pause_after_its_retries() {
    let f = Fixture::new("");
    serving_v1(
        &f,
        "[10, pause, 100]",
        &["approver", "hello"],
        "approver: { settings: { retries: 2, retry-ms: 300, message: approved by the test } }",
    );
    // `plan` names who is asked at the pause.
    let plan = f.run(&["plan", "--release", "v2"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains(
            "At each pause, hook approval: approver (all that answer proceed end it, a block \
             rolls back)"
        ),
        "{}",
        text(&plan)
    );
    let out = deploy_json(&f, "v2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    let p = ev.iter().find(|e| e["event"] == "paused").expect("paused");
    assert_eq!(p["at"], "paused at 10%", "{p}");
    let a = approvals(&ev, "approver");
    assert_eq!(
        decisions(&a),
        ["retry-after", "retry-after", "proceed"],
        "{a:#?}"
    );
    let attempts: Vec<u64> = a.iter().map(|e| e["attempt"].as_u64().unwrap()).collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert_eq!(a[0]["retry_after_ms"], 300);
    let said = a[2]["message"].as_str().unwrap();
    assert!(said.starts_with("approved by the test ["), "{said}");
    // The plugin saw the pause: where, which step, and the commands.
    let file = f.file.display().to_string();
    for part in [
        "of shop release v2 attempt 3",
        "at=\"paused at 10%\"",
        "step=Some(1)",
        "weight=10",
        "reason=scheduled",
        "timed=false",
        &format!("promote=\"bluegreen promote -f {file}\""),
        &format!("abort=\"bluegreen abort -f {file}\""),
    ] {
        assert!(said.contains(part), "{part} missing in {said}");
    }
    // No operator: the plugin ended it, after its two waits of 300 ms.
    assert!(!ev.iter().any(|e| e["event"] == "control"), "{ev:#?}");
    let waited = paused_ms(&ev);
    assert!((600.0..30_000.0).contains(&waited), "{waited}");
    // An older plugin (no `approval` export) loads, runs at its hooks, and
    // is never asked at the pause.
    assert!(
        ev.iter()
            .any(|e| e["event"] == "hook" && e["plugin"] == "hello" && e["hook"] == "pre-deploy"),
        "{ev:#?}"
    );
    assert!(approvals(&ev, "hello").is_empty());
    f.assert_serving("v2");
    let h = f.last_history();
    let kept = h["approvals"].as_array().expect("approvals in the history");
    assert_eq!(kept.len(), 1, "{h}");
    assert_eq!(
        (
            &kept[0]["plugin"],
            &kept[0]["decision"],
            &kept[0]["attempt"]
        ),
        (
            &Value::from("approver"),
            &Value::from("proceed"),
            &Value::from(3)
        ),
        "{h}"
    );
}

/// A block rolls the release back with the plugin's reason (exit 3), and
/// leaves v1 on both colors, healthy and serving the route.
#[test]
fn a_block_rolls_back_with_the_plugins_reason() {
    let f = Fixture::new("");
    serving_v1(
        &f,
        "[10, pause, 100]",
        &["approver"],
        "approver: { settings: { then: block, message: CHG-42 was rejected } }",
    );
    let out = deploy_json(&f, "v2");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "plugin `approver` blocked at the approval (paused at 10%): CHG-42 was rejected"
        ),
        "{err}"
    );
    let ev = events(&out);
    assert_eq!(decisions(&approvals(&ev, "approver")), ["block"]);
    let r = ev
        .iter()
        .find(|e| e["event"] == "resumed")
        .expect("resumed");
    assert_eq!(r["rolling_back"], true, "{r}");
    f.assert_serving("v1");
    let h = f.last_history();
    assert_eq!(h["result"], "blocked", "{h}");
    assert_eq!(h["approvals"][0]["decision"], "block", "{h}");
}

/// `retry-after` never outlives the pause: a timed pause of 2 s with a
/// plugin that asks every 800 ms is asked at 0, 0.8 and 1.6 s, not at 2.4,
/// and goes on by itself when its time is up, as without plugins.
#[test]
fn retries_stop_at_a_timed_pauses_end_which_goes_on() {
    let f = Fixture::new("");
    serving_v1(
        &f,
        "[10, {pause: 2s}, 100]",
        &["approver"],
        "approver: { settings: { retries: 1000, retry-ms: 800 } }",
    );
    let out = deploy_json(&f, "v2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    let a = approvals(&ev, "approver");
    assert_eq!(decisions(&a), ["retry-after"; 3], "{a:#?}");
    let waited = paused_ms(&ev);
    assert!((1900.0..10_000.0).contains(&waited), "{waited}");
    f.assert_serving("v2");
    assert!(f.last_history().get("approvals").is_none());
}

/// An operator's command wins over a plugin still saying `retry-after`:
/// `abort` from a second process rolls back while it is being asked.
#[test]
fn an_operators_abort_wins_over_a_plugin_asking_to_wait() {
    let f = Fixture::new("");
    serving_v1(
        &f,
        "[10, pause, 100]",
        &["approver"],
        "approver: { settings: { retries: 100000, retry-ms: 200 } }",
    );
    let mut child = f.spawn(&["deploy", "--release", "v2", "--json"]);
    let lines = Arc::new(Mutex::new(Vec::<Value>::new()));
    let out = child.stdout.take().unwrap();
    let seen = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                seen.lock().unwrap().push(v);
            }
        }
    });
    let asked_twice = || approvals(&lines.lock().unwrap(), "approver").len() >= 2;
    let deadline = Instant::now() + Duration::from_secs(90);
    while !asked_twice() {
        if Instant::now() > deadline || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            panic!("never asked twice: {:#?}", lines.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cmd = f.run(&["abort", "--reason", "not today"]);
    assert_eq!(cmd.status.code(), Some(0), "{}", text(&cmd));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the deploy did not end: {:#?}", lines.lock().unwrap());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("aborted by") && stderr.contains("not today"),
        "{stderr}"
    );
    let ev = lines.lock().unwrap().clone();
    let a = approvals(&ev, "approver");
    assert!(a.iter().all(|e| e["decision"] == "retry-after"), "{a:#?}");
    let c: Vec<&Value> = ev.iter().filter(|e| e["event"] == "control").collect();
    assert_eq!((c.len(), &c[0]["verb"]), (1, &Value::from("abort")));
    f.assert_serving("v1");
}

/// One request a webhook receiver saw.
pub(crate) struct Post {
    path: String,
    body: Value,
}

/// A webhook receiver on 127.0.0.1 answering its requests with `replies`
/// in turn (the last one repeats): an approval bot, or Slack (`ok`). The
/// accept thread ends with the test process.
pub(crate) fn receiver(replies: &'static [&'static str]) -> (String, Arc<Mutex<Vec<Post>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen: Arc<Mutex<Vec<Post>>> = Arc::default();
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let (mut head, mut line, mut length) = (String::new(), String::new(), 0);
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if head.is_empty() {
                    head = line.clone();
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = head.split(' ').nth(1).unwrap_or_default().to_string();
            let n = {
                let mut log = log.lock().unwrap();
                log.push(Post {
                    path,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                });
                log.len()
            };
            let reply = replies[(n - 1).min(replies.len() - 1)];
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
                     connection: close\r\n\r\n{reply}",
                    reply.len()
                )
                .as_bytes(),
            );
        }
    });
    (base, seen)
}

pub(crate) fn notify_config(base: &str, extra: &str) -> String {
    format!(
        "notify: {{ settings: {{ webhook: \"{base}/hooks/deploys\", on: approval{extra} }}, \
         allow_http: [\"{base}\"] }}"
    )
}

/// Approval from chat: `notify` with `answer: webhook` posts the question
/// (app, release, step, the promote and abort commands) and asks again
/// while the bot has no answer; the bot's `{"approve": true}` ends the
/// pause, and the history says who approved through which plugin.
#[test]
fn notify_posts_the_question_and_the_webhooks_reply_approves() {
    let (base, seen) = receiver(&[
        r#"{"approve": null}"#,
        r#"{"approve": true, "by": "alice", "reason": "ship it"}"#,
    ]);
    let f = Fixture::new("");
    serving_v1(
        &f,
        "[10, pause, 100]",
        &["notify"],
        &notify_config(&base, ", answer: webhook, poll-ms: 300"),
    );
    let out = deploy_json(&f, "v2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    let a = approvals(&ev, "notify");
    assert_eq!(decisions(&a), ["retry-after", "proceed"], "{a:#?}");
    let origin = Origin::parse(&base).unwrap().to_string();
    assert_eq!(
        a[1]["message"],
        format!("approved by alice via {origin}: ship it"),
        "{a:#?}"
    );
    let posts = seen.lock().unwrap();
    assert_eq!(posts.len(), 2, "asked twice");
    let file = f.file.display().to_string();
    for (i, post) in posts.iter().enumerate() {
        assert_eq!(post.path, "/hooks/deploys");
        let text = post.body["text"].as_str().unwrap_or_default();
        for part in [
            "*shop*",
            "release `v2`",
            "paused at 10%",
            "step 1 of `steps`",
            "10% of the route's traffic",
            &format!("bluegreen promote -f {file}"),
            &format!("bluegreen abort -f {file}"),
        ] {
            assert!(text.contains(part), "{part} missing in {text}");
        }
        let q = &post.body["bluegreen"];
        assert_eq!(
            (&q["app"], &q["release"], &q["step"], &q["attempt"]),
            (
                &Value::from("shop"),
                &Value::from("v2"),
                &Value::from(1),
                &Value::from(i + 1)
            ),
            "{q}"
        );
    }
    f.assert_serving("v2");
    let h = f.last_history();
    assert_eq!(h["approvals"][0]["plugin"], "notify", "{h}");
    assert_eq!(h["approvals"][0]["decision"], "proceed", "{h}");
}

/// Plain `notify` (a Slack incoming webhook answers `ok`) posts the
/// question once and abstains; the approver beside it decides alone.
#[test]
fn notify_without_answer_posts_once_and_leaves_the_decision_to_others() {
    let (base, seen) = receiver(&["ok"]);
    let f = Fixture::new("");
    let config = format!(
        "{}, approver: {{ settings: {{ retries: 1, retry-ms: 300 }} }}",
        notify_config(&base, "")
    );
    serving_v1(&f, "[10, pause, 100]", &["approver", "notify"], &config);
    let out = deploy_json(&f, "v2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    assert_eq!(decisions(&approvals(&ev, "notify")), ["abstain"]);
    assert_eq!(
        decisions(&approvals(&ev, "approver")),
        ["retry-after", "proceed"]
    );
    let posts = seen.lock().unwrap();
    assert_eq!(posts.len(), 1, "posted once");
    let text = posts[0].body["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("*shop*") && text.contains("bluegreen promote -f"),
        "{text}"
    );
    // A plain webhook gets the chat message only.
    assert!(
        posts[0].body.get("bluegreen").is_none(),
        "{}",
        posts[0].body
    );
    f.assert_serving("v2");
}

/// Through the host alone: a plugin without the hook is not asked (it
/// predates it), and a failure at the hook is never an approval, even with
/// `on_error: warn` (which turns failures at other hooks into `proceed`).
#[tokio::test]
async fn older_plugins_load_and_a_failing_approval_never_approves() {
    let host = host();
    let hello = load(&host, "hello").await;
    assert!(!hello.hooks.contains(&Hook::Approval), "{:?}", hello.hooks);
    assert!(hello.hooks.contains(&Hook::PreDeploy));
    let err = host
        .call(&hello, Hook::Approval, &ctx(), &settings(&[]))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err.kind, FailureKind::HookNotHandled(Hook::Approval)),
        "{err}"
    );

    let approver = load(&host, "approver").await;
    assert_eq!(approver.hooks, [Hook::Approval]);
    let mut c = ctx();
    c.pause = Some(PauseInfo {
        failed_analysis: Some("error rate 26/500 vs 0/480".into()),
        ..PauseInfo::default()
    });
    let r = host
        .call(
            &approver,
            Hook::Approval,
            &c,
            &settings(&[("then", "abstain")]),
        )
        .await
        .unwrap();
    assert_eq!(r.outcome.verdict, Verdict::Abstain);
    let said = r.outcome.message.unwrap();
    assert!(
        said.contains("reason=failed-analysis: error rate 26/500 vs 0/480"),
        "{said}"
    );
    // A malfunction is an error, not an answer; `run_hook` with `warn`
    // would call it `proceed`, which is why the executor does not use it.
    let err = host
        .call(
            &approver,
            Hook::Approval,
            &c,
            &settings(&[("then", "error")]),
        )
        .await
        .err()
        .unwrap();
    assert!(matches!(err.kind, FailureKind::Malfunction(_)), "{err}");
}

/// A failing approval plugin is never an approval: by default it stops the
/// deploy as at any hook (rolled back, exit 1); with `on_error: warn` it
/// abstains, and the timed pause goes on by itself.
#[test]
fn a_failing_approval_plugin_stops_the_deploy_or_with_warn_abstains() {
    let f = Fixture::new("");
    serving_v1(
        &f,
        "[10, {pause: 1s}, 100]",
        &["approver"],
        "approver: { settings: { retries: 1, retry-ms: 100, then: error, \
         message: ticket system down } }",
    );
    let out = f.run(&["deploy", "--release", "v2"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("  approval: approver → error: ") && stdout.contains("ticket system down"),
        "{stdout}"
    );
    assert!(
        stdout.contains("goes on by itself in 1s; asking the approval plugins: approver"),
        "{stdout}"
    );
    f.assert_serving("v1");

    f.plugins(&["approver"]);
    write_file(
        &f,
        "",
        &format!(
            "strategy: canary\nsteps: [10, {{pause: 1s}}, 100]\n{WINDOWS}\
             plugins: {{ dir: plugins, config: {{ approver: {{ on_error: warn, \
             settings: {{ then: error, message: ticket system down }} }} }} }}\n"
        ),
    );
    let out = deploy_json(&f, "v3");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    let a = approvals(&ev, "approver");
    assert_eq!(decisions(&a), ["abstain"], "{a:#?}");
    let said = a[0]["message"].as_str().unwrap();
    assert!(
        said.contains("ignored: on_error is warn; it abstains"),
        "{said}"
    );
    assert!(paused_ms(&ev) >= 900.0);
    f.assert_serving("v3");
}

/// `on_fail: pause`: the plugin is asked with the failed window's verdict,
/// and its block rolls back with its reason and the analysis's finding.
#[test]
fn a_failed_analysis_pause_is_asked_with_its_numbers_and_a_block_rolls_back() {
    let f = Fixture::new("");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.plugins(&["approver"]);
    write_file(
        &f,
        ", FAIL_PERCENT: 20",
        "strategy: canary\nsteps: [10, 100]\n\
         analysis: { duration: 20s, min_requests: 60, p99_floor: 30s, on_fail: pause }\n\
         plugins: { dir: plugins, config: { approver: { settings: { then: block, \
         message: error budget spent } } } }\n",
    );
    let load = f.load();
    let out = deploy_json(&f, "v2");
    load.finish();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let ev = events(&out);
    let p = ev.iter().find(|e| e["event"] == "paused").expect("paused");
    assert_eq!(p["failure"], true, "{p}");
    let a = approvals(&ev, "approver");
    assert_eq!(decisions(&a), ["block"], "{a:#?}");
    let said = a[0]["message"].as_str().unwrap();
    assert!(
        said.contains("at=\"paused at 10% after a failed analysis\"")
            && said.contains("reason=failed-analysis: ")
            && said.contains("5xx"),
        "{said}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error budget spent") && err.contains("(paused after: "),
        "{err}"
    );
    f.assert_serving("v1");
}
