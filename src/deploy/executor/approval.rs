//! The `approval` hook at a pause: the plugins that export it are asked,
//! in plugin order, whether the release may go on, so a team can gate a
//! canary on a chat approval or a change ticket. While they are asked the
//! pause still listens for the operator (`pause.rs` races the two, and an
//! operator's command always wins). Every answer is shown, sent as a
//! `--json` `approval` event and journaled with the plugin's name.
//!
//! - every plugin with a say proceeded → the pause ends as `resume` would;
//! - a `block` → the release is rolled back (as `abort`), exit 3;
//! - `retry-after-ms` → that plugin is asked again then, but never past the
//!   pause's own deadline (a timed pause then goes on, an untimed one rolls
//!   back, as without plugins);
//! - `abstain` (a plugin that only posts the question) → it is not asked
//!   again; the others or an operator decide.
//!
//! A plugin that fails (error, trap, time or memory limit) stops the deploy
//! as at any hook; with `on_error: warn` it abstains instead. A failure
//! never counts as an approval.

use super::Stop;
use crate::deploy::journal::{ApprovalRecord, Entry, Journal};
use crate::deploy::plugins::Plugins;
use crate::deploy::progress::Reporter;
use crate::output::printable;
use crate::plugin::context::{Color, HookContext, PauseInfo, Verdict};
use crate::plugin::{Hook, OnError};
use serde_json::json;
use std::time::Instant;

/// The shortest wait before asking a plugin again: `retry-after-ms(0)` must
/// not spin the pause.
const MIN_RETRY: std::time::Duration = std::time::Duration::from_millis(100);

/// Where a pause holds the release, for the plugins' context.
#[derive(Clone, Copy, Debug)]
pub(super) struct Spot {
    pub color: Color,
    pub percent: Option<u8>,
}

/// How asking the plugins ended.
pub(super) enum Asked {
    /// Every plugin with a say proceeded: `plugin: message` for each.
    Approved(Vec<String>),
    /// No plugin can end the pause (all abstained, or one is to be asked
    /// again only after the pause's deadline): the pause waits as it would
    /// without plugins.
    Undecided,
    /// A plugin blocked, or failed: the pause rolls back with this.
    Rejected(Stop),
}

/// One pause's questions: what each plugin call needs, borrowed apart from
/// the executor so the pause can still take an operator's command.
pub(super) struct Asking<'a> {
    pub plugins: &'a Plugins,
    pub journal: &'a mut Journal,
    /// The decisions kept for the history.
    pub decided: &'a mut Vec<ApprovalRecord>,
    pub report: Reporter,
    /// The context every call starts from (its `pause` filled in).
    pub base: HookContext,
    pub deploy_id: String,
    pub deadline: tokio::time::Instant,
}

/// The commands a person runs to decide, with the deploy file the deploy
/// runs from, so they work from any terminal on this machine.
pub(super) fn commands(file: &std::path::Path) -> [String; 3] {
    let f = shell_word(&file.display().to_string());
    ["promote", "resume", "abort"].map(|verb| format!("bluegreen {verb} -f {f}"))
}

/// `s` quoted for a POSIX shell when it needs it.
fn shell_word(s: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl Asking<'_> {
    /// Asks until every plugin with a say proceeded, one blocks, or nobody
    /// can be asked again before the deadline.
    pub async fn run(mut self) -> Asked {
        let names: Vec<String> = self
            .plugins
            .handling(Hook::Approval)
            .map(|p| p.name.clone())
            .collect();
        // (plugin, attempt, when to ask)
        let mut waiting: Vec<(String, u32, tokio::time::Instant)> = names
            .into_iter()
            .map(|n| (n, 1, tokio::time::Instant::now()))
            .collect();
        let mut approved = Vec::new();
        loop {
            let Some(next) = waiting.iter().map(|w| w.2).min() else {
                return match approved.is_empty() {
                    true => Asked::Undecided,
                    false => Asked::Approved(approved),
                };
            };
            if next > self.deadline {
                return Asked::Undecided;
            }
            tokio::time::sleep_until(next).await;
            let now = tokio::time::Instant::now();
            let due: Vec<usize> = (0..waiting.len())
                .filter(|&i| waiting[i].2 <= now)
                .collect();
            let mut done = Vec::new();
            for i in due {
                let (name, attempt) = (waiting[i].0.clone(), waiting[i].1);
                match self.ask(&name, attempt).await {
                    Answer::Proceed(m) => {
                        approved.push(format!("{name}: {m}"));
                        done.push(i);
                    }
                    Answer::Abstain => done.push(i),
                    Answer::Again(wait) => {
                        let at = tokio::time::Instant::now() + wait.max(MIN_RETRY);
                        if at > self.deadline {
                            self.report.say(&format!(
                                "      {} is not asked again: the pause ends first",
                                printable(&name)
                            ));
                        }
                        waiting[i] = (name, attempt + 1, at);
                    }
                    Answer::Stop(stop) => return Asked::Rejected(stop),
                }
            }
            for i in done.into_iter().rev() {
                waiting.remove(i);
            }
        }
    }

    /// Asks plugin `name` once: shows, sends and journals its answer.
    async fn ask(&mut self, name: &str, attempt: u32) -> Answer {
        let plugin = self.plugins.named(name);
        let mut config = self.plugins.config(name, None);
        // `bluegreen.*` settings come from the host alone.
        config
            .settings
            .retain(|(k, _)| !k.starts_with("bluegreen."));
        let mut ctx = self.base.clone();
        ctx.attempt = Some(attempt);
        let left = self
            .deadline
            .saturating_duration_since(tokio::time::Instant::now());
        let pause = ctx.pause.get_or_insert_with(PauseInfo::default);
        pause.remaining_ms = left.as_millis() as u64;
        let at = pause.at.clone();
        let color = Some(pause.color);
        let started = Instant::now();
        // Not `run_hook`: its `on_error: warn` turns a failure into
        // `proceed`, which here would approve the release.
        let result = self
            .plugins
            .host
            .call(plugin, Hook::Approval, &ctx, &config)
            .await;
        let took = started.elapsed();
        let (verdict, message, answer) = match result {
            Ok(r) => {
                self.report.hook_result(
                    Hook::Approval,
                    color,
                    name,
                    &r.outcome.verdict,
                    took,
                    &r.outcome.findings,
                );
                self.report.plugin_output(name, &r);
                let message = r.outcome.message.clone();
                let answer = match &r.outcome.verdict {
                    Verdict::Proceed => Answer::Proceed(message.clone().unwrap_or_default()),
                    Verdict::Abstain => Answer::Abstain,
                    Verdict::RetryAfterMs(ms) => {
                        Answer::Again(std::time::Duration::from_millis((*ms).into()))
                    }
                    Verdict::Block(reason) => Answer::Stop(Stop::Blocked(format!(
                        "plugin `{name}` blocked at the approval ({at}): {}",
                        printable(reason)
                    ))),
                };
                (r.outcome.verdict, message, answer)
            }
            Err(e) if config.on_error == OnError::Warn && !e.kind.is_invalid_plugin() => {
                let why = format!("{e} (ignored: on_error is warn; it abstains)");
                (Verdict::Abstain, Some(why), Answer::Abstain)
            }
            Err(e) => {
                let why = e.to_string();
                self.record(name, &at, attempt, "error", Some(&why), None);
                return Answer::Stop(Stop::Failed(e.into()));
            }
        };
        let (decision, retry) = match &verdict {
            Verdict::Proceed => ("proceed", None),
            Verdict::Block(_) => ("block", None),
            Verdict::RetryAfterMs(ms) => ("retry-after", Some(*ms)),
            Verdict::Abstain => ("abstain", None),
        };
        let message = match &verdict {
            Verdict::Block(reason) if message.is_none() => Some(reason.clone()),
            _ => message,
        };
        self.record(name, &at, attempt, decision, message.as_deref(), retry);
        answer
    }

    /// Says one answer for people and `--json`, journals it, and keeps a
    /// decisive one for the history.
    fn record(
        &mut self,
        plugin: &str,
        at: &str,
        attempt: u32,
        decision: &str,
        message: Option<&str>,
        retry_after_ms: Option<u32>,
    ) {
        self.report.flush();
        // The call's own line (and findings) came from `hook_result`; this
        // adds what the plugin said: who decided, or what it waits for.
        let said = message.map(printable).unwrap_or_default();
        match (decision, retry_after_ms) {
            (_, Some(ms)) => self.report.say(&format!(
                "        {said} (asked again in {})",
                crate::units::human_duration(std::time::Duration::from_millis(ms.into()))
            )),
            ("abstain", _) if !said.is_empty() => self.report.say(&format!("        {said}")),
            ("abstain", _) => {}
            _ => self.report.result(&format!(
                "  approval: {} → {decision}{}",
                printable(plugin),
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            )),
        }
        self.report
            .event(json!({"event": "approval", "deploy": self.deploy_id,
            "at": at, "plugin": plugin, "attempt": attempt, "decision": decision,
            "message": message, "retry_after_ms": retry_after_ms}));
        let entry = Entry::Approval(ApprovalRecord {
            plugin: plugin.into(),
            at: at.into(),
            attempt,
            decision: decision.into(),
            message: message.map(String::from),
            retry_after_ms,
        });
        if let Entry::Approval(r) = &entry
            && matches!(decision, "proceed" | "block" | "error")
        {
            self.decided.push(r.clone());
        }
        // The answer stands whether or not the journal took it: a full disk
        // must not approve or reject a release.
        if let Err(e) = self.journal.append(&entry) {
            self.report
                .result(&format!("  warning: journaling the approval: {e:#}"));
        }
    }
}

/// One plugin's answer, as the loop needs it.
enum Answer {
    Proceed(String),
    Abstain,
    Again(std::time::Duration),
    Stop(Stop),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_name_the_deploy_file_quoted_for_a_shell() {
        let [promote, resume, abort] = commands(std::path::Path::new("/srv/shop/bluegreen.yaml"));
        assert_eq!(promote, "bluegreen promote -f /srv/shop/bluegreen.yaml");
        assert_eq!(resume, "bluegreen resume -f /srv/shop/bluegreen.yaml");
        assert_eq!(abort, "bluegreen abort -f /srv/shop/bluegreen.yaml");
        let [promote, ..] = commands(std::path::Path::new("/home/a b/it's.yaml"));
        assert_eq!(promote, r"bluegreen promote -f '/home/a b/it'\''s.yaml'");
    }
}
