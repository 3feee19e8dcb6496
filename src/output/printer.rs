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
            super::write_stdout(&format!("{v}\n"));
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
    /// as it is in text; with `--json` one `record(line)` per line. A last
    /// line without its newline waits for the next chunk while `more` may
    /// come (it could still grow), so a JSON record never holds half a line.
    /// Returns how many bytes of `chunk` were shown.
    pub fn log(self, chunk: &str, more: bool, record: impl Fn(&str) -> Value) -> usize {
        if !self.json {
            super::write_stdout_verbatim(chunk);
            return chunk.len();
        }
        let whole = if more {
            chunk.rfind('\n').map_or(0, |i| i + 1)
        } else {
            chunk.len()
        };
        for line in chunk[..whole].lines() {
            self.event(record(line));
        }
        whole
    }
}
