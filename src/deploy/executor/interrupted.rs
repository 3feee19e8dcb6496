//! A step under Ctrl-C: the first signal stops a step that waits (a health
//! check, an analysis window, a drain, a push, a plugin) where it is, and
//! the deploy rolls back through `undo` as after a failure. A step that
//! moves the route or the schema (unmap, map, a canary weight, the
//! migration, the history, the lock) runs to its end first, so the undo
//! starts from a state the journal and this executor both know.

use super::{Executor, Stop};
use crate::deploy::interrupt::Signal;
use crate::deploy::plan::Step;
use crate::plugin::context::Color;

/// Whether `step` may be dropped mid-way by an interrupt.
fn stops_mid_way(step: &Step) -> bool {
    !matches!(
        step,
        Step::Unmap { .. }
            | Step::Map { .. }
            | Step::Weigh { .. }
            | Step::Migrate { .. }
            // It stops itself at the signal, dropping its scratch database.
            | Step::Rehearse { .. }
            | Step::RecordRelease
            | Step::ReleaseLock
    )
}

impl Executor {
    /// Runs `step`, or stops it at the first signal (see the module doc).
    pub(super) async fn exec_interruptible(&mut self, step: &Step) -> Result<(), Stop> {
        let mut interrupt = self.interrupt.clone();
        let report = self.report.clone();
        let run = self.exec(step);
        tokio::pin!(run);
        let signal = tokio::select! {
            result = &mut run => return result,
            signal = interrupt.wait() => signal,
        };
        if stops_mid_way(step) {
            return Err(Stop::Interrupted(signal));
        }
        // The run loop stops before the next step (`stops_before`).
        let then = if finishing(step) {
            "the deploy is done but for recording it, which finishes"
        } else {
            "it finishes first, then the deploy rolls back"
        };
        report.result(&format!(
            "Interrupted ({}) during `{step}`: {then}; press {} again to leave it for \
             `bluegreen recover`",
            signal.name(),
            again(signal)
        ));
        run.await
    }

    /// The first signal, if one came and `next` is a step it stops the
    /// deploy before: any but the bookkeeping after `post-deploy`.
    pub(super) fn stops_before(&self, next: &Step) -> Option<Signal> {
        self.interrupt.received().filter(|_| !finishing(next))
    }

    /// Says which colors the undo puts back: `in_flight`, then those
    /// already switched.
    pub(super) fn announce_undo(&self, signal: Signal, in_flight: Option<Color>) {
        let others = self.switched.iter().copied();
        let undoing: Vec<&str> = in_flight
            .into_iter()
            .chain(others.filter(|c| Some(*c) != in_flight))
            .map(Color::name)
            .collect();
        let what = if undoing.is_empty() {
            "nothing on the route changed; releasing the lock".to_string()
        } else {
            format!("rolling back {}", undoing.join(", then "))
        };
        self.announce_interrupt(signal, &what);
    }

    /// Says, before the undo starts, what an interrupt does (`what`).
    pub(super) fn announce_interrupt(&self, signal: Signal, what: &str) {
        self.report.result(&format!(
            "Interrupted ({}): {what}; press {} again to leave it for `bluegreen recover`",
            signal.name(),
            again(signal)
        ));
        self.report.event(serde_json::json!({"event": "interrupted",
            "signal": signal.name(), "doing": what}));
    }
}

/// The steps after `post-deploy`: the release serves, only the history
/// and the lock are left, so an interrupt lets them finish.
fn finishing(step: &Step) -> bool {
    matches!(step, Step::RecordRelease | Step::ReleaseLock)
}

/// What stops the rollback too.
fn again(signal: Signal) -> &'static str {
    match signal {
        Signal::Int => "Ctrl-C",
        Signal::Term => "SIGTERM (or Ctrl-C)",
    }
}
