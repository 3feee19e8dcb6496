//! The Slack-compatible message: `text` (what every incoming-webhook
//! receiver reads, and the notification preview) plus `blocks` for Slack's
//! richer layout, and `channel`/`username` when the settings give them.
//! Mattermost, Rocket.Chat and Discord's `/slack` endpoint read the same
//! shape.

use serde_json::{Value, json};

/// Slack shows at most 3000 characters in a section; a platform error can be
/// longer (a staging log tail).
const MAX_MESSAGE: usize = 1500;

/// What happened, independent of the hook module's generated types.
pub struct Event {
    pub id: String,
    pub app: String,
    pub release: String,
    pub previous: Option<String>,
    pub route_url: String,
    pub failure: Option<Failure>,
    /// The `approval` hook: the question asked at a pause.
    pub pause: Option<Question>,
}

/// A pause, and how a person decides it.
pub struct Question {
    pub at: String,
    pub step: Option<u32>,
    pub weight_percent: u8,
    pub color: &'static str,
    /// The failed analysis's verdict, when that is why it paused.
    pub failed_analysis: Option<String>,
    pub timed: bool,
    pub remaining_ms: u64,
    pub promote: String,
    pub resume: String,
    pub abort: String,
    pub attempt: u32,
}

pub struct Failure {
    pub step: String,
    pub color: Option<&'static str>,
    pub message: String,
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters (links,
/// mentions); everything the deploy supplies is escaped.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// A duration for people: `2m 30s`, `24h`.
fn human(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m {s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

/// The question at a pause: where the release is held, why, and the
/// commands that decide it. `machine` adds a `bluegreen` object with the
/// same facts, for an approval service that answers (`answer: webhook`).
fn question(event: &Event, q: &Question, machine: bool) -> Value {
    let app = esc(&event.app);
    let release = esc(&event.release);
    let step = q.step.map(|n| format!("step {n} of `steps`, ")).unwrap_or_default();
    let held = format!("{}% of the route's traffic on {}", q.weight_percent, q.color);
    let why = match &q.failed_analysis {
        Some(f) => format!(" after a failed analysis: {}", esc(&cut(f.trim(), MAX_MESSAGE))),
        None => String::new(),
    };
    let then = match q.timed {
        true => format!("it goes on by itself in {}", human(q.remaining_ms)),
        false => format!("rolled back in {} without an answer", human(q.remaining_ms)),
    };
    let icon = if q.failed_analysis.is_some() { ":warning:" } else { ":double_vertical_bar:" };
    let headline = format!(
        "{icon} *{app}*: release `{release}` is {} ({step}{held}){why}. Approve? {then}.",
        esc(&q.at)
    );
    let commands = format!(
        "Promote: `{}`\nResume from this pause only: `{}`\nAbort (roll back): `{}`",
        esc(&q.promote),
        esc(&q.resume),
        esc(&q.abort)
    );
    let text = format!("{headline}\n{commands}");
    let blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": headline}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": commands}}),
        json!({"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
            "route {} · deploy `{}`", esc(&event.route_url), esc(&event.id)
        )}]}),
    ];
    let mut body = json!({"text": text, "blocks": blocks});
    if machine {
        body["bluegreen"] = json!({
            "question": "approval",
            "deploy": event.id, "app": event.app, "release": event.release,
            "previous_release": event.previous, "at": q.at, "step": q.step,
            "weight_percent": q.weight_percent, "color": q.color,
            "failed_analysis": q.failed_analysis, "timed": q.timed,
            "remaining_ms": q.remaining_ms, "attempt": q.attempt,
            "promote": q.promote, "resume": q.resume, "abort": q.abort,
            "answer_with": {"approve": "true to go on, false to roll back", "by": "who", "reason": "why"},
        });
    }
    body
}

/// The JSON body for `event`; `machine` as for [`question`].
pub fn build(event: &Event, channel: Option<&str>, username: Option<&str>, machine: bool) -> Value {
    let mut body = match &event.pause {
        Some(q) => question(event, q, machine),
        None => outcome(event),
    };
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    if let Some(u) = username {
        body["username"] = json!(u);
    }
    body
}

/// A deploy's end: live, or failed.
fn outcome(event: &Event) -> Value {
    let app = esc(&event.app);
    let release = esc(&event.release);
    let previous = match &event.previous {
        Some(p) => format!("previous release `{}`", esc(p)),
        None => "no previous release".to_string(),
    };
    let (text, detail) = match &event.failure {
        None => (
            format!(":large_green_circle: *{app}*: release `{release}` is live ({previous})"),
            None,
        ),
        Some(f) => {
            let on = f.color.map(|c| format!(" on {c}")).unwrap_or_default();
            let message = esc(&cut(f.message.trim(), MAX_MESSAGE));
            (
                format!(
                    ":red_circle: *{app}*: deploy of release `{release}` failed at step `{}`{on}: {message} ({previous})",
                    esc(&f.step)
                ),
                Some(message),
            )
        }
    };
    let headline = match &event.failure {
        None => format!(":large_green_circle: *{app}* deployed release `{release}`"),
        Some(f) => format!(
            ":red_circle: *{app}*: deploy of release `{release}` failed at step `{}`{}",
            esc(&f.step),
            f.color.map(|c| format!(" on {c}")).unwrap_or_default()
        ),
    };
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": headline}})];
    if let Some(message) = detail {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("```{message}```")}}));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!(
            "{previous} · route {} · deploy `{}`", esc(&event.route_url), esc(&event.id)
        )}],
    }));
    json!({"text": text, "blocks": blocks})
}
