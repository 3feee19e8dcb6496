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

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(reply: &str) -> &'static str {
        match read(reply.as_bytes()) {
            Reply::Approved { .. } => "approved",
            Reply::Rejected { .. } => "rejected",
            Reply::Pending => "pending",
        }
    }

    #[test]
    fn only_a_json_boolean_at_the_top_decides() {
        assert_eq!(verdict(r#"{"approve": true}"#), "approved");
        assert_eq!(verdict(r#"{"approve": false, "by": "ann"}"#), "rejected");
        // What a careless bot or a proxy might send must not approve.
        for reply in [
            r#"{"approve": "true"}"#,
            r#"{"approve": 1}"#,
            r#"{"Approve": true}"#,
            r#"{"data": {"approve": true}}"#,
            r#"[{"approve": true}]"#,
            r#"{"approve": null}"#,
            "ok",
            r#"{"approve": true"#,
            "",
        ] {
            assert_eq!(verdict(reply), "pending", "{reply}");
        }
    }

    #[test]
    fn a_reply_cut_at_the_read_limit_is_no_answer() {
        let long = format!(r#"{{"approve": true, "reason": "{}"}}"#, "x".repeat(MAX_REPLY));
        assert_eq!(verdict(&long[..MAX_REPLY]), "pending");
    }

    #[test]
    fn who_and_why_are_cut_short_and_stripped_of_control_characters() {
        let reply = format!(
            r#"{{"approve": true, "by": "ann\u001b[31m\nroot", "reason": "{}"}}"#,
            "y".repeat(1000)
        );
        let Reply::Approved { by, reason } = read(reply.as_bytes()) else { panic!("approved") };
        assert_eq!(by.as_deref(), Some("ann [31m root"));
        assert_eq!(reason.unwrap().chars().count(), MAX_FIELD);
        let Reply::Approved { by, .. } = read(br#"{"approve": true, "by": " \t "}"#) else {
            panic!("approved")
        };
        assert_eq!(by, None, "a blank name is no name");
    }
}
