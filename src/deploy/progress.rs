//! Live progress: one line per step with its elapsed time, a spinner while a
//! step waits (on a terminal only, `crate::output::spinner`), plain lines
//! otherwise, colour by the one rule in `crate::output`; or with `--json`,
//! one NDJSON event per step and hook on stdout (`crate::output::Printer`
//! chooses). `-q` leaves only the result and warnings; `-v` adds each
//! plugin's log lines under its step, and the hooks without plugins that
//! are otherwise folded away.

use super::plan::Step;
use crate::output::{self, BAD, DIM, GOOD, Printer, WARN, outln, paint, printable};
use crate::plugin::context::{Color, Finding, Severity, Verdict};
use crate::plugin::{CallReport, Hook};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub use crate::output::Spinner;

#[derive(Clone)]
pub struct Reporter {
    out: Printer,
    /// Plugin lines wait for their step's line, so they read under it.
    pending: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Reporter {
    pub fn new(json: bool) -> Reporter {
        Reporter {
            out: Printer::new(json),
            pending: Arc::default(),
        }
    }

    /// An event for `--json` only.
    pub fn event(&self, v: Value) {
        self.out.event(v);
    }

    /// A line for people (nothing in JSON mode, nor with `-q`).
    pub fn say(&self, line: &str) {
        self.out.say(line);
    }

    /// The command's result or a warning: shown with `-q` too.
    pub fn result(&self, line: &str) {
        self.out.line(line);
    }

    pub fn step_started(&self, i: usize, n: usize, step: &Step) -> Spinner {
        let mut spinner = Spinner::none();
        self.out.emit(
            json!({"event": "step", "status": "started", "index": i + 1, "total": n,
            "step": step.kind(), "color": step.color(), "text": step.to_string()}),
            || {
                if step.waits() {
                    spinner = output::spinner(format!("[{:>2}/{n}] {step}", i + 1));
                }
            },
        );
        spinner
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
        self.out.emit(
            json!({"event": "step", "status": status, "index": i + 1, "total": n,
            "step": step.kind(), "color": step.color(), "text": step.to_string(),
            "duration_ms": millis(took), "error": error}),
            || {
                if output::quiet() || (folded(step) && error.is_none()) {
                    return;
                }
                let mark = match error {
                    None => paint(GOOD, "✓"),
                    Some(_) => paint(BAD, "✗"),
                };
                outln!(
                    "{mark} [{:>2}/{n}] {step} {}",
                    i + 1,
                    paint(DIM, &format!("({})", secs(took)))
                );
            },
        );
        self.flush();
    }

    /// A step's attempt failed and it will try again after `wait`: shown at
    /// once, since the wait can be long.
    pub fn attempt(&self, step: &Step, attempt: u32, of: u32, error: &str, wait: Duration) {
        self.out.emit(
            json!({"event": "attempt", "step": step.kind(), "color": step.color(),
            "text": step.to_string(), "attempt": attempt, "attempts": of, "error": error,
            "retry_in_ms": millis(wait)}),
            || {
                if !output::quiet() {
                    outln!(
                        "      attempt {attempt} of {of}: {}; again in {}",
                        paint(WARN, &printable(error)),
                        secs(wait)
                    );
                }
            },
        );
    }

    /// Prints plugin lines not yet shown under a step (drops them with `-q`).
    pub fn flush(&self) {
        for line in self.pending.lock().unwrap().drain(..) {
            if !output::quiet() {
                outln!("{line}");
            }
        }
    }

    /// With `-v`: a plugin call's log lines and captured output, under its
    /// step. Plugin text is untrusted, so it is shown through [`printable`].
    pub fn plugin_output(&self, plugin: &str, call: &CallReport) {
        if !output::verbose() {
            return;
        }
        self.out.text(|| self.pend_plugin_output(plugin, call));
    }

    fn pend_plugin_output(&self, plugin: &str, call: &CallReport) {
        // A plugin's name is its file's: shown escaped like its text.
        let plugin = printable(plugin);
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
            Verdict::Abstain => ("abstain", None),
        };
        self.out.emit(
            json!({"event": "hook", "hook": hook.name(), "color": color, "plugin": plugin,
            "verdict": name, "detail": detail, "duration_ms": millis(took), "findings": findings}),
            || self.pend_hook_result(plugin, verdict, (name, detail.as_deref()), took, findings),
        );
    }

    fn pend_hook_result(
        &self,
        plugin: &str,
        verdict: &Verdict,
        (name, detail): (&str, Option<&str>),
        took: Duration,
        findings: &[Finding],
    ) {
        let shown = match (verdict, detail.map(printable)) {
            (Verdict::Block(_), Some(d)) => paint(BAD, &format!("block: {d}")),
            (_, Some(d)) => format!("{name} {d}"),
            _ => name.to_string(),
        };
        let mut pending = self.pending.lock().unwrap();
        pending.push(format!(
            "      {} → {shown} ({})",
            printable(plugin),
            secs(took)
        ));
        if findings.len() > SHOWN_FINDINGS {
            pending.push(format!(
                "        ({} findings; the first {SHOWN_FINDINGS} follow, `--json` has them all)",
                findings.len()
            ));
        }
        for f in findings.iter().take(SHOWN_FINDINGS) {
            let sev = match f.severity {
                Severity::Error => paint(BAD, "error"),
                Severity::Warning => paint(WARN, "warning"),
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

/// A hook no plugin handles gets no line of its own unless `-v`: it does
/// nothing, and in a trivial deploy such lines were over half the output.
/// `--json` and `plan` still list it, and the step numbers keep counting
/// it, so `[ 5/28]` means the same step everywhere.
fn folded(step: &Step) -> bool {
    matches!(step, Step::Hook { plugins, .. } if plugins.is_empty()) && !output::verbose()
}

/// Findings shown under a step; `--json` carries them all.
const SHOWN_FINDINGS: usize = 50;

pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}
