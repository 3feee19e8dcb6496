//! Reading an approval service's reply to the question (`answer:
//! webhook`): JSON with `"approve": true` or `false`, and optionally `"by"`
//! and `"reason"`. Anything else (Slack's `ok`, `{}`, `"approve": null`)
//! means no answer yet. What the reply says is shown to people and
//! journaled, so it is cut short and stripped of control characters.

use serde_json::Value;

/// The most of a reply read: an answer is a few fields.
pub const MAX_REPLY: usize = 4096;

/// The longest `by` or `reason` kept.
const MAX_FIELD: usize = 300;

pub enum Reply {
    Approved { by: Option<String>, reason: Option<String> },
    Rejected { by: Option<String>, reason: Option<String> },
    Pending,
}

fn field(v: &Value, key: &str) -> Option<String> {
    let text = v.get(key)?.as_str()?;
    let clean: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_FIELD).collect();
    Some(clean.trim().to_string()).filter(|t| !t.is_empty())
}

pub fn read(reply: &[u8]) -> Reply {
    let Ok(v) = serde_json::from_slice::<Value>(reply) else { return Reply::Pending };
    let (by, reason) = (field(&v, "by"), field(&v, "reason"));
    match v.get("approve").and_then(Value::as_bool) {
        Some(true) => Reply::Approved { by, reason },
        Some(false) => Reply::Rejected { by, reason },
        None => Reply::Pending,
    }
}

/// `approved by alice via http://127.0.0.1:9: looks good`.
pub fn said(what: &str, by: Option<String>, reason: Option<String>, origin: &str) -> String {
    let by = by.map(|b| format!(" by {b}")).unwrap_or_default();
    let reason = reason.map(|r| format!(": {r}")).unwrap_or_default();
    format!("{what}{by} via {origin}{reason}")
}
