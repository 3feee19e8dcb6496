//! `notify`: posts a Slack-compatible message to an incoming-webhook URL
//! after a deploy (`post-deploy`) and when one failed (`on-failure`), through
//! `wasi:http`.
//!
//! Settings:
//! - `webhook` (required): the incoming-webhook URL. Its origin must be
//!   granted in the deploy file (`allow_http`). Its path usually is the
//!   secret, so only the origin is ever logged or reported.
//! - `channel`, `username` (optional): passed on in the message.
//! - `on` (optional): which events to send, comma-separated `post-deploy`,
//!   `on-failure`; default both.
//! - `timeout-ms` (optional): the whole request's budget, default 3000;
//!   keep it under the plugin's `timeout` (5 s by default).
//!
//! Verdicts: a notification never stops a deploy. Every outcome of the
//! request (sent, a non-2xx answer, no answer, an origin the sandbox denied)
//! is `proceed`; the failures come with a `warning` finding that says what
//! to fix. Only bad settings are a plugin error (`err`): they are the deploy
//! file's mistake, and `bluegreen plugin run` shows them before a deploy.

mod message;
mod webhook;

use bluegreen_plugin::{on_failure, post_deploy};
use message::{Event, Failure};
use webhook::{SendError, Webhook};

/// The events `on` may name: the hook names.
const EVENTS: [&str; 2] = ["post-deploy", "on-failure"];

struct Notify;

struct Settings {
    webhook: Webhook,
    channel: Option<String>,
    username: Option<String>,
    on: Vec<String>,
    timeout_ms: u64,
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
                "setting `on`: unknown event `{bad}` (use post-deploy, on-failure or both)"
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
        Ok(Settings {
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
    let body = message::build(&event, s.channel.as_deref(), s.username.as_deref()).to_string();
    let origin = s.webhook.origin();
    Ok(match s.webhook.post(body.as_bytes(), s.timeout_ms) {
        Ok(answer) if (200..300).contains(&answer.status) => {
            info(&format!("{hook} notification posted to {origin}: {}", answer.status));
            None
        }
        Ok(answer) => Some(Warning {
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
        Err(SendError::Denied) => Some(Warning {
            rule: "notify-denied",
            message: format!(
                "the sandbox denied the POST to {origin}: nothing was sent. Grant the webhook's origin in the deploy file: `allow_http: [\"{origin}\"]` in this plugin's config"
            ),
        }),
        Err(SendError::Timeout(ms)) => Some(Warning {
            rule: "notify-timeout",
            message: format!(
                "the webhook at {origin} did not answer within {ms} ms (setting `timeout-ms`)"
            ),
        }),
        Err(SendError::Failed(why)) => Some(Warning {
            rule: "notify-unreachable",
            message: format!("posting to the webhook at {origin} failed: {why}"),
        }),
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

post_deploy::export!(Notify);
on_failure::export!(Notify);
