//! The migration step: one task on the color's new droplet, with PostgreSQL
//! timeouts through `PGOPTIONS`, tried again with backoff when it gave up on
//! a lock.
//!
//! A migration that waits for a lock (an `ALTER TABLE` behind a long read)
//! queues every later query on that table behind it, which stalls the
//! color still serving. `lock_timeout` makes it give up instead; the lock is
//! usually gone a moment later, so the deploy tries again.
//!
//! The task's exit status is all a platform reports (CF's `failure_reason`
//! is "Exited with status N"), so the command runs in a small shell wrapper
//! that turns a lock-timeout failure into exit status 75 (EX_TEMPFAIL). It
//! recognises PostgreSQL's SQLSTATE and message, libpq drivers' class names
//! (`PG::LockNotAvailable`, `ActiveRecord::LockWaitTimeout`) and psycopg's.

use super::{Executor, Stop, TASK_TIMEOUT};
use crate::deploy::plan::Step;
use crate::platform::PlatformError;
use crate::plugin::context::Color;
use std::time::Duration;

/// The exit status the wrapper uses for "gave up on a lock".
const LOCK_EXIT: u8 = 75;

const LOCK_PATTERNS: &str = "55P03|LockNotAvailable|LockWaitTimeout|lock timeout";

/// The migrate command as the task runs it.
pub fn task_command(command: &str, phase: &str, pgoptions: &str) -> String {
    // The command sits on lines of its own, so a trailing comment in it
    // cannot swallow the wrapper. Its output is replayed into the task log.
    format!(
        "export BLUEGREEN_MIGRATION_PHASE={phase}\n\
         export PGOPTIONS='{pgoptions}'\n\
         out=$(mktemp) || exit 1\n\
         (\n{command}\n) >\"$out\" 2>&1\n\
         rc=$?\n\
         cat \"$out\"\n\
         if [ \"$rc\" -ne 0 ] && grep -qE '{LOCK_PATTERNS}' \"$out\"; then rc={LOCK_EXIT}; fi\n\
         rm -f \"$out\"\n\
         exit \"$rc\""
    )
}

/// Whether a failed task gave up on a lock: exit status 75, as the local
/// platform ("exit status: 75") and CF ("Exited with status 75") report it.
pub fn gave_up_on_lock(failure: &str) -> bool {
    let t = failure.trim_end();
    t.ends_with(&format!("status {LOCK_EXIT}")) || t.ends_with(&format!("status: {LOCK_EXIT}"))
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1 << (attempt - 1).min(4))
}

impl Executor {
    /// Runs `step` (a `Step::Migrate`), trying again while it gives up on
    /// a lock.
    pub(super) async fn migrate(
        &self,
        step: &Step,
        color: Color,
        command: &str,
        contract: bool,
    ) -> Result<(), Stop> {
        let phase = if contract { "contract" } else { "expand" };
        let (pgoptions, retries, lock_timeout) = match &self.file.migrate {
            Some(m) => (m.pgoptions(), m.retries, m.lock_timeout),
            None => (String::new(), 0, Duration::ZERO),
        };
        let app = self.site.app(color).guid.clone();
        let task = task_command(command, phase, &pgoptions);
        // Natively the expand phase runs on the staged droplet before any
        // instance does; the contract phase on the app's current one.
        let droplet = match (&self.site.mode, contract) {
            (crate::deploy::site::Mode::Native, false) => self.record.droplets.get(&color),
            _ => None,
        };
        let client = &self.site.client;
        let attempts = retries + 1;
        for attempt in 1..=attempts {
            let run = client.run_task_on(&app, droplet.map(String::as_str), &task, TASK_TIMEOUT);
            let failure = match run.await {
                Ok(_) => return Ok(()),
                Err(PlatformError::Failed { detail, .. }) => detail,
                Err(e) => return Err(e.into()),
            };
            if !gave_up_on_lock(&failure) {
                return Err(Stop::Failed(anyhow::anyhow!(
                    "migration `{command}` failed: {failure} (its output is in the app's log: \
                     `bluegreen platform logs {}` locally, `cf logs --recent` on CF)",
                    self.site.app(color).name
                )));
            }
            let why = format!(
                "the migration gave up waiting for a lock (lock_timeout {})",
                crate::units::human_duration(lock_timeout)
            );
            if attempt == attempts {
                return Err(Stop::Failed(anyhow::anyhow!(
                    "{why}, {attempts} times: another session holds a lock on a table it \
                     changes. Find it with `SELECT pid, query FROM pg_stat_activity WHERE \
                     state = 'idle in transaction'`, or raise `migrate.retries` / \
                     `migrate.lock_timeout`"
                )));
            }
            let wait = backoff(attempt);
            self.report.attempt(step, attempt, attempts, &why, wait);
            tokio::time::sleep(wait).await;
        }
        unreachable!("the last attempt returns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_failures_are_told_apart_by_exit_status() {
        assert!(gave_up_on_lock("Exited with status 75"));
        assert!(gave_up_on_lock("task `x` exited with exit status: 75"));
        assert!(!gave_up_on_lock("Exited with status 1"));
        assert!(!gave_up_on_lock("Exited with status 175"));
        assert!(!gave_up_on_lock("task `x` exited with exit status: 7"));
    }

    /// The wrapper really maps a lock-timeout failure (and only that) to 75,
    /// and keeps the command's own status otherwise.
    #[test]
    fn the_wrapper_maps_lock_timeouts_to_75() {
        let run = |cmd: &str| {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(task_command(cmd, "expand", "-c lock_timeout=5000ms"))
                .output()
                .unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).to_string(),
            )
        };
        let (code, out) = run(
            "echo 'PG::LockNotAvailable: ERROR:  canceling statement due to lock timeout' >&2; exit 1 # trailing comment",
        );
        assert_eq!(code, Some(75), "{out}");
        assert!(
            out.contains("canceling statement"),
            "output is replayed: {out}"
        );
        assert_eq!(run("echo $PGOPTIONS; exit 3").0, Some(3));
        assert_eq!(run("echo fine").0, Some(0));
        assert!(
            run("echo $BLUEGREEN_MIGRATION_PHASE $PGOPTIONS")
                .1
                .contains("expand -c lock_timeout=5000ms")
        );
        // A successful migration that merely mentions locks stays a success.
        assert_eq!(run("echo 'waited for lock timeout setting'").0, Some(0));
    }
}
