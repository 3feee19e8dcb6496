//! `notify`'s approval from chat as `operator/approval.md` states it: it
//! posts the question "every `poll-ms` (default 10000, at least 100)" until
//! the bot answers, and the bot's `by` and `reason` are "cut to 300
//! characters". Canary deploys on the local platform that pause, with a
//! webhook receiver on 127.0.0.1 as the bot.

use crate::approval::{notify_config, receiver};
use crate::deploy::{Fixture, events, text, write_file};
use crate::util::{exits, succeeded};
use bluegreen::plugin::Origin;
use serde_json::Value;

/// v1 on both colors, then a canary file pausing as `steps` says, with
/// `notify` configured by `config`.
fn canary(f: &Fixture, steps: &str, config: &str) {
    succeeded(f.deploy("v1"));
    f.plugins(&["notify"]);
    set_notify(f, steps, config);
}

fn set_notify(f: &Fixture, steps: &str, config: &str) {
    write_file(
        f,
        "",
        &format!(
            "strategy: canary\nsteps: {steps}\n\
             analysis: {{ duration: 1s, on_inconclusive: warn, p99_floor: 30s }}\n\
             plugins: {{ dir: plugins, config: {{ {config} }} }}\n"
        ),
    );
}

/// `notify`'s `approval` events in a deploy's `--json` output.
fn approvals(out: &std::process::Output) -> Vec<Value> {
    events(out)
        .into_iter()
        .filter(|e| e["event"] == "approval" && e["plugin"] == "notify")
        .collect()
}

/// Without `poll-ms` a bot with no answer yet is asked again in 10000 ms:
/// within a timed pause of 1 s, once.
#[test]
fn notify_asks_again_every_10000_ms_by_default() {
    let (base, seen) = receiver(&[r#"{"approve": null}"#]);
    let f = Fixture::new("");
    canary(
        &f,
        "[10, {pause: 1s}, 100]",
        &notify_config(&base, ", answer: webhook"),
    );
    let out = succeeded(f.run(&["deploy", "--release", "v2", "--json"]));
    let a = approvals(&out);
    assert_eq!(a.len(), 1, "{a:#?}\n{}", text(&out));
    assert_eq!(
        (&a[0]["decision"], &a[0]["retry_after_ms"]),
        (&Value::from("retry-after"), &Value::from(10000)),
        "{a:#?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "posted once");
}

/// `poll-ms: 99` is refused (the deploy stops and rolls back: a failing
/// approval never approves); `poll-ms: 100` is taken, and the bot's long
/// `by` and `reason` come back cut to 300 characters.
#[test]
fn notify_polls_at_least_every_100_ms_and_cuts_by_and_reason_at_300() {
    let (base, seen) = receiver(&[r#"{"approve": null}"#]);
    let f = Fixture::new("");
    canary(
        &f,
        "[10, pause, 100]",
        &notify_config(&base, ", answer: webhook, poll-ms: 99"),
    );
    let out = exits(f.run(&["deploy", "--release", "v2"]), 1);
    assert!(
        text(&out)
            .contains("setting `poll-ms`: `99` is not a number of milliseconds of at least 100"),
        "{}",
        text(&out)
    );
    assert!(seen.lock().unwrap().is_empty(), "asked nothing");
    f.assert_serving("v1");

    let (by, reason) = ("b".repeat(400), "r".repeat(400));
    let approve: &'static str = Box::leak(
        format!(r#"{{"approve": true, "by": "{by}", "reason": "{reason}"}}"#).into_boxed_str(),
    );
    let replies: &'static [&'static str] = Box::leak(Box::new([r#"{"approve": null}"#, approve]));
    let (base, seen) = receiver(replies);
    set_notify(
        &f,
        "[10, pause, 100]",
        &notify_config(&base, ", answer: webhook, poll-ms: 100"),
    );
    let out = succeeded(f.run(&["deploy", "--release", "v3", "--json"]));
    let a = approvals(&out);
    assert_eq!(a.len(), 2, "{a:#?}\n{}", text(&out));
    assert_eq!(a[0]["retry_after_ms"], 100, "{a:#?}");
    let origin = Origin::parse(&base).unwrap().to_string();
    assert_eq!(
        a[1]["message"],
        format!(
            "approved by {} via {origin}: {}",
            "b".repeat(300),
            "r".repeat(300)
        ),
        "{a:#?}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
    f.assert_serving("v3");
}
