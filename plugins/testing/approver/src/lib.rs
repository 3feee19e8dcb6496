//! `approver` (tests only): answers the `approval` hook as its settings say,
//! so end-to-end tests can end a pause, hold it, or reject the release
//! without a chat or a ticket system. Each call is a fresh instance, so it
//! counts by the host's `attempt`.
//! - `retries`: how many first attempts answer `retry-after-ms` (default 0);
//! - `retry-ms`: how long those ask to wait (default 200);
//! - `then`: the answer after them: `proceed` (default), `block`, `abstain`
//!   or `error` (the plugin malfunctions: `err`);
//! - `message`: said with that answer.
//!
//! Every call logs the pause it was asked about, on one line, and adds that
//! line to its answer's message in brackets, so a test sees the context in
//! the deploy's `--json` events.

use bluegreen_plugin::approval::{self, Answer, Deploy, Guest, Pause, PauseReason, Severity};

struct Approver;

impl Guest for Approver {
    fn handle(d: Deploy, p: Pause, attempt: u32) -> Result<Answer, String> {
        let reason = match &p.reason {
            PauseReason::Scheduled => "scheduled".to_string(),
            PauseReason::FailedAnalysis(why) => format!("failed-analysis: {why}"),
        };
        let seen = format!(
            "asked about {} of {} release {} attempt {attempt}: at={:?} step={:?} weight={} \
                 color={} reason={reason} timed={} remaining_ms={} promote={:?} resume={:?} abort={:?}",
            d.id,
            d.app,
            d.release,
            p.at,
            p.step,
            p.weight_percent,
            p.color.name(),
            p.timed,
            p.remaining_ms,
            p.promote_command,
            p.resume_command,
            p.abort_command,
        );
        approval::log::log(Severity::Info, &seen);
        let retries: u32 = d.setting("retries").and_then(|v| v.parse().ok()).unwrap_or(0);
        let retry_ms: u32 = d.setting("retry-ms").and_then(|v| v.parse().ok()).unwrap_or(200);
        let message = format!("{} [{seen}]", d.setting("message").unwrap_or("approver decided"));
        if attempt <= retries {
            return Ok(Answer::retry_after_ms(
                retry_ms,
                format!("waiting for the approver (attempt {attempt} of {retries}) [{seen}]"),
            ));
        }
        match d.setting("then").unwrap_or("proceed") {
            "proceed" => Ok(Answer::proceed(message)),
            "block" => Ok(Answer::block(message)),
            "abstain" => Ok(Answer::abstain(message)),
            "error" => Err(message),
            other => Err(format!("setting `then`: unknown answer `{other}`")),
        }
    }
}

approval::export!(Approver);
