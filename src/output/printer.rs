//! Text or JSON, decided once per command from its `--json` flag: commands
//! say what they have in both forms ([`Printer::emit`]) or in one
//! ([`Printer::event`], [`Printer::text`]), and only this type tells the two
//! apart. With `--json` stdout carries JSON lines and nothing else, so a
//! pipe into `jq` never meets a stray progress line.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Printer {
    json: bool,
}

impl Printer {
    /// From the command's `--json` flag.
    pub fn new(json: bool) -> Printer {
        Printer { json }
    }

    /// Something the command tells in both forms: with `--json`, `v` as one
    /// line (several calls make NDJSON); else what `text` writes.
    pub fn emit(self, v: Value, text: impl FnOnce()) {
        if self.json {
            super::write_stdout(&json_line(&v));
        } else {
            text();
        }
    }

    /// A JSON line only (a deploy's events, a history entry); nothing in text.
    pub fn event(self, v: Value) {
        self.emit(v, || {});
    }

    /// Text only: `text` runs unless `--json`.
    pub fn text(self, text: impl FnOnce()) {
        if !self.json {
            text();
        }
    }

    /// A line of the result for people, shown with `-q` too; not with `--json`.
    pub fn line(self, line: &str) {
        self.text(|| super::outln!("{line}"));
    }

    /// A progress line or a hint, left out with `-q` and with `--json`.
    pub fn say(self, line: &str) {
        self.text(|| super::sayln!("{line}"));
    }

    /// A chunk of a line-oriented stream that is not ours (an app's log):
    /// in text its lines as [`super::printable_lines`] shows them (an app's
    /// escape sequences never reach the terminal), each after `prefix` (ours:
    /// a color's name when two apps' logs are shown); with `--json` one
    /// `record(line)` per line. A last line without its newline waits for
    /// the next chunk while `more` may come (it could still grow), so a JSON
    /// record or a prefixed line never holds half a line. Returns how many
    /// bytes of `chunk` were shown.
    pub fn log(
        self,
        chunk: &str,
        more: bool,
        prefix: &str,
        record: impl Fn(&str) -> Value,
    ) -> usize {
        if !self.json && prefix.is_empty() {
            super::write_stdout_verbatim(&super::printable_lines(chunk));
            return chunk.len();
        }
        let whole = if more {
            chunk.rfind('\n').map_or(0, |i| i + 1)
        } else {
            chunk.len()
        };
        if !self.json {
            let text: String = chunk[..whole]
                .lines()
                .map(|line| format!("{prefix}{}\n", super::printable_lines(line)))
                .collect();
            super::write_stdout_verbatim(&text);
            return whole;
        }
        for line in chunk[..whole].lines() {
            self.event(record(line));
        }
        whole
    }
}

/// `v` as one line of JSON. serde_json escapes the C0 controls but writes
/// DEL, the C1 controls (`\u{9b}` is a CSI to some terminals) and the bidi
/// overrides raw, as JSON allows; `--json` read on a terminal must not
/// carry what [`super::printable`] would escape either. Compact JSON has
/// no such characters outside strings, so `\uXXXX` is always right.
fn json_line(v: &Value) -> String {
    let mut out = String::new();
    for c in v.to_string().chars() {
        if super::shown_escaped(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    /// Defect 5 of «12 · Hardening, round two»: `--json` escapes every
    /// control character, and reads back as the same value.
    #[test]
    fn defect_5_json_lines_carry_no_raw_control_characters() {
        let v = serde_json::json!({"message": "a\x1b[2Jb\u{7f}c\u{9b}31m\x07\t\u{202e}\n"});
        let line = super::json_line(&v);
        let body = line.strip_suffix('\n').unwrap();
        assert!(!body.chars().any(super::super::shown_escaped), "{line:?}");
        assert!(
            body.contains("\\u001b[2J") && body.contains("\\u009b"),
            "{body}"
        );
        assert!(body.contains("\\u202e"), "{body}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(body).unwrap(), v);
    }
}
