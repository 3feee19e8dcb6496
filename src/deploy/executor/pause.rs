//! Pauses and the operator's commands. A `pause` step holds the release at
//! its canary step, the lock renewed all along, until `bluegreen resume`,
//! `promote` or `abort` (or, timed, until its time is up); an analysis with
//! `on_fail: pause` holds it the same way instead of rolling back. Any other
//! step runs under the commands too: `abort` cuts a wait short and rolls
//! back through `undo` as a failed step does, `promote` ends an analysis
//! window as passed and skips every later one and every pause. Each command
//! is journaled with who and why, and shown in the output and `--json`
//! (`{"event": "control"}`). At a pause the `approval` plugins are asked
//! too (`approval.rs`): their approval ends it as `resume` would, their
//! block rolls back as `abort` would; a command still wins.

use super::approval::{self, Asked, Asking, Spot};
use super::{Executor, Stop, chain};
use crate::deploy::journal::Entry;
use crate::deploy::lock::Store;
use crate::deploy::operator::{Channel, Operator, doing};
use crate::deploy::plan::Step;
use crate::output::printable;
use crate::platform::lease::control::{Command, Verb};
use crate::plugin::Hook;
use crate::plugin::context::{HookContext, PauseInfo};
use serde_json::json;
use std::time::{Duration, Instant};

/// How often a pause checks that it still holds the lock.
const LOCK_CHECK: Duration = Duration::from_secs(5);

/// Steps an `abort` stops mid-way: the ones that only wait or watch.
fn cut_short(step: &Step) -> bool {
    matches!(
        step,
        Step::Analyze { .. }
            | Step::Watch { .. }
            | Step::Baseline { .. }
            | Step::Health { .. }
            | Step::Drain { .. }
    )
}

/// How a pause ended.
enum Ended {
    Command(Command),
    Asked(Asked),
    Deadline,
    LostLock,
}

/// How a wait under commands ended.
enum Cut {
    Aborted(Command),
    Promoted,
}

impl Executor {
    /// Listens for commands, in a deploy that has something to wait at.
    fn listen(&mut self) {
        let waits = |s: &Step| matches!(s, Step::Pause { .. } | Step::Analyze { .. });
        if self.operator.started() || !self.steps().iter().any(waits) {
            return;
        }
        let channel = Channel {
            client: self.site.client.clone(),
            store: Store::of(self.site.kind, &self.site.space_guid),
            app: self.file.app.clone(),
        };
        self.operator = Operator::start(channel, &self.record.id);
    }

    /// Runs `step` under the operator's commands (see the module doc).
    pub(super) async fn exec_operated(&mut self, step: &Step) -> Result<(), Stop> {
        self.listen();
        while let Some(c) = self.operator.next() {
            self.take(&c, None, None)?;
        }
        let skipped = matches!(step, Step::Pause { .. } | Step::Analyze { .. });
        if let Some(c) = self.operator.promoted.as_ref().filter(|_| skipped) {
            self.report.say(&format!("  skipped: promoted by {}", c.by));
            return Ok(());
        }
        if !cut_short(step) {
            return self.exec_interruptible(step).await;
        }
        let op = self.operator.clone();
        let report = self.report.clone();
        let mut later = Vec::new();
        let result = {
            let run = self.exec_interruptible(step);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    r = &mut run => break Ok(r),
                    c = op.wait() => match c.verb {
                        Verb::Abort => break Err(Cut::Aborted(c)),
                        Verb::Promote if matches!(step, Step::Analyze { .. }) => {
                            later.push(c);
                            break Err(Cut::Promoted);
                        }
                        _ => {
                            report.say(&format!("  {} by {}: after this step", c.verb.name(), c.by));
                            later.push(c);
                        }
                    },
                }
            }
        };
        self.window = None;
        for c in &later {
            self.take(c, None, None)?;
        }
        match result {
            Err(Cut::Aborted(c)) => Err(self.take(&c, None, None).unwrap_err()),
            Err(Cut::Promoted) => Ok(()),
            Ok(Err(stop @ (Stop::Failed(_) | Stop::Blocked(_))))
                if matches!(
                    step,
                    Step::Analyze {
                        pause_on_fail: true,
                        ..
                    }
                ) =>
            {
                self.pause_on_failure(step, stop).await
            }
            Ok(r) => r,
        }
    }

    /// A `pause` step.
    pub(super) async fn pause_step(&mut self, step: &Step) -> Result<(), Stop> {
        let Step::Pause {
            color,
            percent,
            up_to,
            timed,
        } = step
        else {
            unreachable!("called for pause steps")
        };
        let spot = Spot {
            color: *color,
            percent: Some(*percent),
        };
        self.hold(&format!("paused at {percent}%"), spot, *up_to, *timed, None)
            .await
    }

    /// A failed analysis window with `on_fail: pause`.
    async fn pause_on_failure(&mut self, step: &Step, stop: Stop) -> Result<(), Stop> {
        let Step::Analyze { percent, color, .. } = step else {
            return Err(stop);
        };
        let spot = Spot {
            color: *color,
            percent: *percent,
        };
        let at = match percent {
            Some(p) => format!("paused at {p}% after a failed analysis"),
            None => "paused after a failed analysis".to_string(),
        };
        let why = match &stop {
            Stop::Failed(e) => chain(e),
            Stop::Blocked(why) => why.clone(),
            Stop::Interrupted(_) => return Err(stop),
        };
        self.report.result(&format!("Analysis failed: {why}"));
        let max = crate::config::steps::MAX_PAUSE;
        self.hold(&at, spot, max, false, Some(stop)).await
    }

    /// Waits at a pause for a command, or the `approval` plugins' say
    /// (`approval.rs`), or `up_to` (`timed`: then goes on; otherwise rolls
    /// back, with `failure` if the pause stands for one).
    async fn hold(
        &mut self,
        at: &str,
        spot: Spot,
        up_to: Duration,
        timed: bool,
        failure: Option<Stop>,
    ) -> Result<(), Stop> {
        self.listen();
        let d = crate::units::human_duration(up_to);
        let then = match timed {
            true => format!("; goes on by itself in {d}"),
            false => format!("; rolled back after {d} without one"),
        };
        let asked: Vec<String> = self
            .plugins
            .handling(Hook::Approval)
            .map(|p| printable(&p.name))
            .collect();
        let gate = match asked.is_empty() {
            true => String::new(),
            false => format!("; asking the approval plugins: {}", asked.join(", ")),
        };
        // Journaled before it is told: a runner killed once the pause shows
        // must leave a journal that says it was paused, or `recover` would
        // pause again instead of taking the command sent meanwhile. Published
        // in the control record too, or a `resume` sent at once would hear
        // "not paused".
        self.journal.append(&Entry::Paused { at: at.into() })?;
        self.operator.publish_paused(Some(at.into())).await;
        self.report.result(&format!(
            "{at}: `bluegreen promote`, `bluegreen resume` or `bluegreen abort` from any \
             terminal{then}{gate}"
        ));
        self.report.event(
            json!({"event": "paused", "deploy": self.record.id, "at": at,
            "timed": timed, "up_to_ms": crate::units::millis_json(up_to),
            "failure": failure.is_some()}),
        );
        let op = self.operator.clone();
        let deadline = tokio::time::Instant::now() + up_to;
        let started = Instant::now();
        let why = failure.as_ref().map(|stop| match stop {
            Stop::Failed(e) => chain(e),
            Stop::Blocked(why) => why.clone(),
            Stop::Interrupted(s) => s.name().to_string(),
        });
        let base = self.pause_context(at, spot, timed, why);
        // The pause's end, decided with the approval plugins borrowed; the
        // command (or verdict) is taken once they are let go.
        let ended = {
            let ask = Asking {
                plugins: &self.plugins,
                journal: &mut self.journal,
                decided: &mut self.approvals,
                report: self.report.clone(),
                base,
                deploy_id: self.record.id.clone(),
                deadline,
            }
            .run();
            tokio::pin!(ask);
            let mut asking = !asked.is_empty();
            let lock = self.lock.as_ref();
            loop {
                tokio::select! {
                    // First: an operator's command wins over a plugin's
                    // answer that arrives at the same moment.
                    biased;
                    c = op.wait() => break Ended::Command(c),
                    asked = &mut ask, if asking => match asked {
                        Asked::Undecided => asking = false,
                        asked => break Ended::Asked(asked),
                    },
                    _ = tokio::time::sleep_until(deadline) => break Ended::Deadline,
                    _ = tokio::time::sleep(LOCK_CHECK) => {
                        // A lost lock ends the pause; the run loop then stops
                        // before the next step, changing nothing more.
                        if let Some(lock) = lock && lock.ensure_held().await.is_err() {
                            break Ended::LostLock;
                        }
                    }
                }
            }
        };
        let result = match ended {
            Ended::Command(c) => match c.verb {
                Verb::Abort => self.take(&c, failure, Some(at)),
                Verb::Promote | Verb::Resume => self.take(&c, None, Some(at)),
            },
            Ended::Asked(Asked::Approved(by)) => {
                self.report.result(&format!(
                    "{at}: approved ({}): going on",
                    printable(&by.join("; "))
                ));
                Ok(())
            }
            Ended::Asked(Asked::Rejected(stop)) => Err(match (stop, failure) {
                // The analysis's finding follows the plugin's reason, as
                // it follows an operator's abort.
                (Stop::Blocked(why), Some(Stop::Failed(e))) => {
                    Stop::Blocked(format!("{why}\n  (paused after: {})", chain(&e)))
                }
                (Stop::Blocked(why), Some(Stop::Blocked(found))) => {
                    Stop::Blocked(format!("{why}\n  (paused after: {found})"))
                }
                (stop, _) => stop,
            }),
            Ended::Asked(Asked::Undecided) => unreachable!("asking goes on"),
            Ended::Deadline => match (timed, failure) {
                (true, _) => Ok(()),
                (false, Some(stop)) => Err(stop),
                (false, None) => Err(Stop::Failed(anyhow::anyhow!(
                    "{at} and nobody resumed it within {d}"
                ))),
            },
            Ended::LostLock => Ok(()),
        };
        self.operator.set_paused(None);
        self.report.event(
            json!({"event": "resumed", "deploy": self.record.id, "at": at,
            "paused_ms": crate::units::millis_json(started.elapsed()),
            "rolling_back": result.is_err()}),
        );
        result
    }

    /// What the `approval` plugins are asked about at this pause.
    fn pause_context(
        &self,
        at: &str,
        spot: Spot,
        timed: bool,
        failed_analysis: Option<String>,
    ) -> HookContext {
        let [promote, resume, abort] = approval::commands(&self.record.file);
        let step = spot
            .percent
            .and_then(|p| self.file.steps.iter().position(|&s| s == p))
            .map(|i| i as u32 + 1);
        let mut ctx = self.context(Hook::Approval, Some(spot.color), None);
        ctx.pause = Some(PauseInfo {
            at: at.into(),
            step,
            weight_percent: spot.percent.unwrap_or(100),
            color: spot.color,
            failed_analysis,
            timed,
            remaining_ms: 0,
            promote_command: promote,
            resume_command: resume,
            abort_command: abort,
        });
        ctx
    }

    /// Takes command `c` (at a pause `at`): journals it, says it, and for
    /// `abort` returns the stop that rolls back (`failure`, when the pause
    /// stands for one).
    fn take(&mut self, c: &Command, failure: Option<Stop>, at: Option<&str>) -> Result<(), Stop> {
        self.journal.append(&Entry::Control(c.clone()))?;
        let reason = c
            .reason
            .as_deref()
            .map(|r| format!(" ({})", crate::output::printable(r)))
            .unwrap_or_default();
        let doing = doing(c, at);
        let by = crate::output::printable(&c.by);
        self.report
            .result(&format!("{} by {by}{reason}: {doing}", c.verb.name()));
        self.report
            .event(json!({"event": "control", "deploy": self.record.id,
            "verb": c.verb, "by": c.by, "reason": c.reason, "id": c.id, "at": c.at}));
        let aborted = format!("aborted by {by}{reason}");
        match c.verb {
            Verb::Promote => {
                self.operator.promoted = Some(c.clone());
                Ok(())
            }
            Verb::Resume => Ok(()),
            Verb::Abort => Err(match failure {
                Some(Stop::Failed(e)) => Stop::Failed(e.context(aborted)),
                Some(Stop::Blocked(why)) => Stop::Blocked(format!("{aborted}: {why}")),
                _ => Stop::Failed(anyhow::anyhow!(aborted)),
            }),
        }
    }
}
