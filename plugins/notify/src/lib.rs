//! `notify`: posts a Slack-compatible message to an incoming-webhook URL
//! after a deploy (`post-deploy`), when one failed (`on-failure`), and at
//! each pause (`approval`: the question, with the promote and abort
//! commands), through `wasi:http`.
//!
//! Settings:
//! - `webhook` (required): the incoming-webhook URL. Its origin must be
//!   granted in the deploy file (`allow_http`). Its path usually is the
//!   secret, so only the origin is ever logged or reported.
//! - `channel`, `username` (optional): passed on in the message.
//! - `on` (optional): which events to send, comma-separated `post-deploy`,
//!   `on-failure`, `approval`; default all three.
//! - `answer` (optional, `approval` only): `webhook` makes the webhook's
//!   reply the answer: the question is posted (with a `bluegreen` object
//!   for a bot to read) every `poll-ms` (default 10000) until the reply is
//!   JSON with `"approve": true` (proceed) or `false` (block, rolled back),
//!   with optional `"by"` and `"reason"`. Without it the question is posted
//!   once and notify abstains: an operator decides (`bluegreen promote`).
//! - `timeout-ms` (optional): the whole request's budget, default 3000;
//!   keep it under the plugin's `timeout` (5 s by default).
//!
//! Verdicts: a notification never stops a deploy (at `approval` only an
//! answer from the webhook can). Every outcome of the
//! request (sent, a non-2xx answer, no answer, an origin the sandbox denied)
//! is `proceed`; the failures come with a `warning` finding that says what
//! to fix. Only bad settings are a plugin error (`err`): they are the deploy
//! file's mistake, and `bluegreen plugin run` shows them before a deploy.

mod message;
mod webhook;

mod answer;

use bluegreen_plugin::{approval, on_failure, post_deploy};
use message::{Event, Failure, Question};
use webhook::{SendError, Webhook};

/// The events `on` may name: the hook names.
const EVENTS: [&str; 3] = ["post-deploy", "on-failure", "approval"];

struct Notify;

struct Settings {
    webhook: Webhook,
    channel: Option<String>,
    username: Option<String>,
    on: Vec<String>,
    timeout_ms: u64,
    /// `answer: webhook`: the webhook's reply decides at `approval`.
    answer: bool,
    poll_ms: u32,
}

impl Settings {
    fn from(settings: &[(String, String)]) -> Result<Settings, String> {
        let get = |key: &str| {
            settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
        };
        let webhook = get("webhook").ok_or(
            "setting `webhook` is required: the incoming-webhook URL to post to (and grant its origin with `allow_http`)",
        )?;
        let on: Vec<String> = match get("on") {
            None => EVENTS.iter().map(|e| e.to_string()).collect(),
            Some(list) => {
                list.split(',').map(|e| e.trim().to_string()).filter(|e| !e.is_empty()).collect()
            }
        };
        if let Some(bad) = on.iter().find(|e| !EVENTS.contains(&e.as_str())) {
            return Err(format!(
                "setting `on`: unknown event `{bad}` (use post-deploy, on-failure, approval)"
            ));
        }
        let timeout_ms = match get("timeout-ms") {
            None => 3000,
            Some(v) => {
                v.parse::<u64>().ok().filter(|ms| (1..=60_000).contains(ms)).ok_or(format!(
                    "setting `timeout-ms`: `{v}` is not a number of milliseconds from 1 to 60000"
                ))?
            }
        };
        let answer = match get("answer") {
            None => false,
            Some("webhook") => true,
            Some(v) => {
                return Err(format!(
                    "setting `answer`: `{v}` is not known; `webhook` lets the webhook's reply approve or reject at a pause"
                ));
            }
        };
        let poll_ms = match get("poll-ms") {
            None => 10_000,
            Some(v) => v.parse::<u32>().ok().filter(|ms| *ms >= 100).ok_or(format!(
                "setting `poll-ms`: `{v}` is not a number of milliseconds of at least 100"
            ))?,
        };
        Ok(Settings {
            answer,
            poll_ms,
            webhook: Webhook::parse(webhook)?,
            channel: get("channel").map(String::from),
            username: get("username").map(String::from),
            on,
            timeout_ms,
        })
    }
}

/// A notification that went wrong: a warning finding's rule and message.
struct Warning {
    rule: &'static str,
    message: String,
}

fn notify(
    hook: &str,
    settings: &[(String, String)],
    event: Event,
    info: &dyn Fn(&str),
) -> Result<Option<Warning>, String> {
    let s = Settings::from(settings)?;
    if !s.on.iter().any(|e| e == hook) {
        info(&format!("{hook} is not in `on` ({}): nothing sent", s.on.join(", ")));
        return Ok(None);
    }
    let body =
        message::build(&event, s.channel.as_deref(), s.username.as_deref(), false).to_string();
    Ok(send(&s, hook, body.as_bytes(), 0, info).err())
}

/// Posts `body` to the webhook, reading up to `read` bytes of a 2xx reply:
/// the reply, or what went wrong as a warning.
fn send(
    s: &Settings,
    hook: &str,
    body: &[u8],
    read: usize,
    info: &dyn Fn(&str),
) -> Result<Vec<u8>, Warning> {
    let origin = s.webhook.origin();
    match s.webhook.post(body, s.timeout_ms, read) {
        Ok(answer) if (200..300).contains(&answer.status) => {
            info(&format!("{hook} notification posted to {origin}: {}", answer.status));
            Ok(answer.body)
        }
        Ok(answer) => Err(Warning {
            rule: "notify-status",
            message: format!(
                "the webhook at {origin} answered {}{}: the {hook} notification was probably not delivered",
                answer.status,
                if answer.snippet.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", answer.snippet)
                }
            ),
        }),
        Err(SendError::Denied) => Err(Warning {
            rule: "notify-denied",
            message: format!(
                "the sandbox denied the POST to {origin}: nothing was sent. Grant the webhook's origin in the deploy file: `allow_http: [\"{origin}\"]` in this plugin's config"
            ),
        }),
        Err(SendError::Timeout(ms)) => Err(Warning {
            rule: "notify-timeout",
            message: format!(
                "the webhook at {origin} did not answer within {ms} ms (setting `timeout-ms`)"
            ),
        }),
        Err(SendError::Failed(why)) => Err(Warning {
            rule: "notify-unreachable",
            message: format!("posting to the webhook at {origin} failed: {why}"),
        }),
    }
}

/// The question at a pause: posted once (then notify abstains), or with
/// `answer: webhook` posted until the reply approves or rejects.
fn ask(
    settings: &[(String, String)],
    event: Event,
    info: &dyn Fn(&str),
) -> Result<approval::Answer, String> {
    use approval::{Answer, Finding};
    let s = Settings::from(settings)?;
    let attempt = event.pause.as_ref().map_or(1, |q| q.attempt);
    if !s.on.iter().any(|e| e == "approval") {
        info(&format!("approval is not in `on` ({}): nothing sent", s.on.join(", ")));
        return Ok(Answer::abstain(""));
    }
    let body = message::build(&event, s.channel.as_deref(), s.username.as_deref(), s.answer);
    let origin = s.webhook.origin().to_string();
    let sent = send(&s, "approval", body.to_string().as_bytes(), answer::MAX_REPLY, info);
    if !s.answer {
        return Ok(match sent {
            Ok(_) => Answer::abstain(format!(
                "question posted to {origin}; an operator decides (promote or abort)"
            )),
            Err(w) => Answer::abstain(format!("the question was not posted: {}", w.message))
                .with(Finding::warning(w.rule, w.message)),
        });
    }
    let again = |why: String| Answer::retry_after_ms(s.poll_ms, why);
    Ok(match sent {
        // Asking again cannot help: only the deploy file can grant it.
        Err(w) if w.rule == "notify-denied" => {
            Answer::abstain(w.message.clone()).with(Finding::warning(w.rule, w.message))
        }
        Err(w) => again(format!("no answer yet (attempt {attempt}): {}", w.message))
            .with(Finding::warning(w.rule, w.message)),
        Ok(reply) => match answer::read(&reply) {
            answer::Reply::Approved { by, reason } => {
                Answer::proceed(answer::said("approved", by, reason, &origin))
            }
            answer::Reply::Rejected { by, reason } => {
                Answer::block(answer::said("rejected", by, reason, &origin))
            }
            answer::Reply::Pending => {
                again(format!("waiting for an answer from {origin} (attempt {attempt})"))
            }
        },
    })
}

/// Turns what came of a notification into the given hook module's outcome:
/// always `proceed`, a warning as a finding.
macro_rules! outcome {
    ($m:ident, $r:expr) => {
        match $r {
            None => $m::Outcome::proceed(),
            Some(w) => $m::Outcome::proceed().with($m::Finding::warning(w.rule, w.message)),
        }
    };
}

macro_rules! event {
    ($d:expr, $failure:expr) => {
        Event {
            id: $d.id,
            app: $d.app,
            release: $d.release,
            previous: $d.previous_release,
            route_url: $d.route_url,
            failure: $failure,
            pause: None,
        }
    };
}

/// The host's plugin log at `info`, through the given hook module.
macro_rules! info {
    ($m:ident) => {
        |line: &str| $m::log::log($m::Severity::Info, line)
    };
}

impl post_deploy::Guest for Notify {
    fn handle(d: post_deploy::Deploy) -> Result<post_deploy::Outcome, String> {
        let r = notify("post-deploy", &d.settings, event!(d, None), &info!(post_deploy))?;
        Ok(outcome!(post_deploy, r))
    }
}

impl on_failure::Guest for Notify {
    fn handle(
        d: on_failure::Deploy,
        f: on_failure::Failure,
    ) -> Result<on_failure::Outcome, String> {
        let failure =
            Failure { step: f.step, color: f.color.map(|c| c.name()), message: f.message };
        let r = notify("on-failure", &d.settings, event!(d, Some(failure)), &info!(on_failure))?;
        Ok(outcome!(on_failure, r))
    }
}

impl approval::Guest for Notify {
    fn handle(
        d: approval::Deploy,
        p: approval::Pause,
        attempt: u32,
    ) -> Result<approval::Answer, String> {
        let question = Question {
            at: p.at,
            step: p.step,
            weight_percent: p.weight_percent,
            color: p.color.name(),
            failed_analysis: match p.reason {
                approval::PauseReason::Scheduled => None,
                approval::PauseReason::FailedAnalysis(why) => Some(why),
            },
            timed: p.timed,
            remaining_ms: p.remaining_ms,
            promote: p.promote_command,
            resume: p.resume_command,
            abort: p.abort_command,
            attempt,
        };
        let settings = d.settings.clone();
        let event = Event { pause: Some(question), ..event!(d, None) };
        ask(&settings, event, &info!(approval))
    }
}

post_deploy::export!(Notify);
approval::export!(Notify);
on_failure::export!(Notify);
