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

/// The JSON body for `event`.
pub fn build(event: &Event, channel: Option<&str>, username: Option<&str>) -> Value {
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
    let mut body = json!({"text": text, "blocks": blocks});
    if let Some(c) = channel {
        body["channel"] = json!(c);
    }
    if let Some(u) = username {
        body["username"] = json!(u);
    }
    body
}
