//! Live progress: one line per step with its elapsed time, a spinner while a
//! step waits (on a terminal only), plain lines otherwise, colour by the one
//! rule in `crate::output` (`NO_COLOR`, `CLICOLOR_FORCE`); or with `--json`,
//! one NDJSON event per step and hook on stdout. `-q` leaves only the result
//! and warnings; `-v` adds each plugin's log lines under its step.

use super::plan::Step;
use crate::output;
use crate::plugin::context::{Color, Finding, Severity, Verdict};
use crate::plugin::{CallReport, Hook};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Reporter {
    json: bool,
    tty: bool,
    color: bool,
    quiet: bool,
    /// Plugin lines wait for their step's line, so they read under it.
    pending: Arc<std::sync::Mutex<Vec<String>>>,
}

/// A running step's spinner; stopped when dropped.
pub struct Spinner(Option<Arc<AtomicBool>>);

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(stop) = &self.0 {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];

impl Reporter {
    pub fn new(json: bool) -> Reporter {
        let tty = !json && std::io::stdout().is_terminal();
        Reporter {
            json,
            tty,
            color: !json && output::stdout_color(),
            quiet: output::quiet(),
            pending: Arc::default(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    pub fn event(&self, v: Value) {
        if self.json {
            output::write_stdout(&format!("{v}\n"));
        }
    }

    /// A line for people (nothing in JSON mode, nor with `-q`).
    pub fn say(&self, line: &str) {
        if !self.json && !self.quiet {
            output::write_stdout(&format!("{line}\n"));
        }
    }

    /// The command's result or a warning: shown with `-q` too.
    pub fn result(&self, line: &str) {
        if !self.json {
            output::write_stdout(&format!("{line}\n"));
        }
    }

    pub fn step_started(&self, i: usize, n: usize, step: &Step) -> Spinner {
        self.event(
            json!({"event": "step", "status": "started", "index": i + 1, "total": n,
            "step": step.kind(), "color": step.color(), "text": step.to_string()}),
        );
        if !self.tty || self.quiet || !step.waits() {
            return Spinner(None);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, text, started) = (
            stop.clone(),
            format!("[{:>2}/{n}] {step}", i + 1),
            Instant::now(),
        );
        tokio::spawn(async move {
            let mut frame = 0;
            while !flag.load(Ordering::SeqCst) {
                output::write_stdout(&format!(
                    "\r\x1b[2K{} {text} {:.1}s",
                    FRAMES[frame % FRAMES.len()],
                    started.elapsed().as_secs_f64()
                ));
                frame += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Spinner(Some(stop))
    }

    pub fn step_finished(
        &self,
        i: usize,
        n: usize,
        step: &Step,
        took: Duration,
        error: Option<&str>,
    ) {
        let status = if error.is_some() { "failed" } else { "done" };
        self.event(
            json!({"event": "step", "status": status, "index": i + 1, "total": n,
            "step": step.kind(), "color": step.color(), "text": step.to_string(),
            "duration_ms": millis(took), "error": error}),
        );
        if self.json || self.quiet {
            self.flush();
            return;
        }
        let mark = match error {
            None => self.paint("32", "✓"),
            Some(_) => self.paint("31", "✗"),
        };
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        output::write_stdout(&format!(
            "{clear}{mark} [{:>2}/{n}] {step} {}\n",
            i + 1,
            self.paint("2", &format!("({})", secs(took)))
        ));
        self.flush();
    }

    /// A step's attempt failed and it will try again after `wait`: shown at
    /// once, since the wait can be long.
    pub fn attempt(&self, step: &Step, attempt: u32, of: u32, error: &str, wait: Duration) {
        self.event(
            json!({"event": "attempt", "step": step.kind(), "color": step.color(),
            "text": step.to_string(), "attempt": attempt, "attempts": of, "error": error,
            "retry_in_ms": millis(wait)}),
        );
        if self.json || self.quiet {
            return;
        }
        let clear = if self.tty { "\r\x1b[2K" } else { "" };
        output::write_stdout(&format!(
            "{clear}      attempt {attempt} of {of}: {}; again in {}\n",
            self.paint("33", error),
            secs(wait)
        ));
    }

    /// Prints plugin lines not yet shown under a step (drops them with `-q`).
    pub fn flush(&self) {
        for line in self.pending.lock().unwrap().drain(..) {
            if !self.quiet {
                output::write_stdout(&format!("{line}\n"));
            }
        }
    }

    /// With `-v`: a plugin call's log lines and captured output, under its
    /// step. Plugin text is untrusted, so it is shown through [`printable`].
    pub fn plugin_output(&self, plugin: &str, call: &CallReport) {
        if self.json || !output::verbose() {
            return;
        }
        let mut pending = self.pending.lock().unwrap();
        for line in &call.log {
            let level = format!("{:?}", line.level).to_lowercase();
            pending.push(format!(
                "        {plugin} log {level}: {}",
                printable(&line.message)
            ));
        }
        for (name, text) in [("stdout", &call.stdout), ("stderr", &call.stderr)] {
            for line in text.lines() {
                pending.push(format!("        {plugin} {name}: {}", printable(line)));
            }
        }
    }

    pub fn hook_result(
        &self,
        hook: Hook,
        color: Option<Color>,
        plugin: &str,
        verdict: &Verdict,
        took: Duration,
        findings: &[Finding],
    ) {
        let (name, detail) = match verdict {
            Verdict::Proceed => ("proceed", None),
            Verdict::Block(r) => ("block", Some(r.clone())),
            Verdict::RetryAfterMs(ms) => ("retry-after", Some(format!("{ms} ms"))),
        };
        self.event(
            json!({"event": "hook", "hook": hook.name(), "color": color, "plugin": plugin,
            "verdict": name, "detail": detail, "duration_ms": millis(took), "findings": findings}),
        );
        if self.json {
            return;
        }
        let shown = match (verdict, detail.as_deref().map(printable)) {
            (Verdict::Block(_), Some(d)) => self.paint("31", &format!("block: {d}")),
            (_, Some(d)) => format!("{name} {d}"),
            _ => name.to_string(),
        };
        let mut pending = self.pending.lock().unwrap();
        pending.push(format!("      {plugin} → {shown} ({})", secs(took)));
        if findings.len() > SHOWN_FINDINGS {
            pending.push(format!(
                "        ({} findings; the first {SHOWN_FINDINGS} follow, `--json` has them all)",
                findings.len()
            ));
        }
        for f in findings.iter().take(SHOWN_FINDINGS) {
            let sev = match f.severity {
                Severity::Error => self.paint("31", "error"),
                Severity::Warning => self.paint("33", "warning"),
                Severity::Info => "info".to_string(),
            };
            let place = match (&f.file, f.line) {
                (Some(file), Some(line)) => format!(" {}:{line}", printable(file)),
                (Some(file), None) => format!(" {}", printable(file)),
                _ => String::new(),
            };
            pending.push(format!(
                "        {sev}[{}]{place}: {}",
                printable(&f.rule),
                printable(&f.message)
            ));
            if let Some(fix) = &f.fix {
                pending.push(format!("          fix: {}", printable(fix)));
            }
        }
    }
}

/// Plugin text as it may reach a terminal: control characters (escape
/// sequences could rewrite the screen or hide a block) are shown escaped,
/// and a text is cut at `MAX` characters.
pub fn printable(s: &str) -> String {
    const MAX: usize = 2000;
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push_str("… (cut)");
            break;
        }
        if c.is_control() && c != '\t' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Findings shown under a step; `--json` carries them all.
const SHOWN_FINDINGS: usize = 50;

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    /// Defect 12 of «7 · Hardening»: plugin text reached the terminal raw.
    #[test]
    fn defect_12_plugin_text_cannot_send_escape_sequences() {
        let hostile = "ok\x1b[2K\r\x1b[32m✓ all good\x07";
        let shown = super::printable(hostile);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(shown.contains("\\u{1b}[2K"), "{shown}");
        assert_eq!(
            super::printable(&"x".repeat(5000)).chars().count(),
            2000 + "… (cut)".chars().count()
        );
        assert_eq!(super::printable("tab\tand ünïcode"), "tab\tand ünïcode");
    }
}
