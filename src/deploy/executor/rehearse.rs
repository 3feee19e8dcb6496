//! The rehearsal step (`Step::Rehearse`, see `deploy/rehearse.rs`): the
//! scratch database made and journaled, the release's migration run on the
//! new droplet against it while the sampler watches, the evidence judged
//! and combined with the static guard's findings, and the scratch database
//! dropped on every path out (a kill is `recover`'s: the journal names it).
//!
//! A rehearsal that cannot run (no database, no CREATEDB, a server this
//! machine cannot reach, as on many Cloud Foundry foundations) is skipped
//! with the reason said, or, when required, refuses the deploy (exit 3).

use super::rehearse_run::Outcome;
use super::{Executor, Stop};
use crate::deploy::journal::{Entry, ScratchRecord};
use crate::deploy::plan::Step;
use crate::deploy::rehearse::{evidence, scratch, target};
use crate::plugin::Hook;
use crate::plugin::context::{Color, Severity};
use serde_json::json;

impl Executor {
    pub(super) async fn rehearse(&mut self, step: &Step) -> Result<(), Stop> {
        let Step::Rehearse {
            color, required, ..
        } = step
        else {
            unreachable!("a rehearse step")
        };
        if self.pending.is_empty() && !self.recovered {
            self.report
                .say("  nothing to rehearse: no migration is pending");
            return Ok(());
        }
        let app_env = match self.app_env(*color).await {
            Ok(env) => env,
            Err(e) => return self.cannot_rehearse(&format!("{e:#}"), *required),
        };
        let file_url = self.file.env.get("DATABASE_URL").map(String::as_str);
        let server = match target::find(file_url, &app_env) {
            Ok(s) => s,
            Err(why) => return self.cannot_rehearse(&why, *required),
        };
        let name = target::scratch_name(&self.record.id);
        self.journal.append(&Entry::Scratch(ScratchRecord {
            database: name.clone(),
            color: *color,
            dropped: false,
        }))?;
        let mut interrupt = self.interrupt.clone();
        let outcome = tokio::select! {
            o = self.rehearse_on(step, &server, &name, &app_env) => Ok(o),
            s = interrupt.wait() => Err(s),
        };
        match scratch::drop(&server, &name).await {
            Ok(()) => {
                self.journal.append(&Entry::Scratch(ScratchRecord {
                    database: name.clone(),
                    color: *color,
                    dropped: true,
                }))?;
                self.report
                    .say(&format!("  dropped the scratch database {name}"));
            }
            Err(e) => self.report.say(&format!(
                "  could not drop the scratch database {name} ({e:#}): `bluegreen recover` \
                 drops it once the server answers"
            )),
        }
        match outcome {
            Err(signal) => Err(Stop::Interrupted(signal)),
            Ok(Outcome::CannotRun(why)) => self.cannot_rehearse(&why, *required),
            Ok(Outcome::Ran { findings, failed }) => self.verdict(&findings, failed),
        }
    }

    /// The color's environment as its processes see it (`VCAP_SERVICES`).
    async fn app_env(&self, color: Color) -> anyhow::Result<serde_json::Value> {
        let guid = &self.site.app(color).guid;
        Ok(self
            .site
            .client
            .get(&format!("/v3/apps/{guid}/env"))
            .await?)
    }

    fn cannot_rehearse(&self, why: &str, required: bool) -> Result<(), Stop> {
        let why = match self.site.kind {
            crate::config::PlatformKind::Cf => format!(
                "{why} (on Cloud Foundry the rehearsal needs the bound database reachable from \
                 this machine and credentials that may create a database)"
            ),
            crate::config::PlatformKind::Local => why.to_string(),
        };
        if required {
            return Err(Stop::Blocked(format!(
                "the policy requires a migration rehearsal, and it cannot run: {why}"
            )));
        }
        self.report.say(&format!("  rehearsal skipped: {why}"));
        self.report
            .event(json!({"event": "rehearsal", "status": "skipped", "why": why}));
        Ok(())
    }

    /// Blocks on the rehearsal's errors (or a failed migration) unless
    /// `--allow` names every one of them.
    fn verdict(
        &mut self,
        findings: &[evidence::Finding],
        failed: Option<String>,
    ) -> Result<(), Stop> {
        let mut blocks: Vec<(&str, String)> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .map(|f| (f.rule, f.message.clone()))
            .collect();
        if let Some(why) = failed {
            blocks.push((
                "rehearsal-migration-failed",
                format!("the migration failed on the copy ({why}); its output is in the app's log"),
            ));
        }
        let Some((_, first)) = blocks.first() else {
            return Ok(());
        };
        let rules: Vec<String> = blocks.iter().map(|(r, _)| r.to_string()).collect();
        if rules.iter().all(|r| self.allow.contains(r)) {
            self.record_override("rehearsal", Hook::MigrationSafetyCheck, rules)?;
            return Ok(());
        }
        let more = match blocks.len() {
            1 => String::new(),
            n => format!(" (and {} more above)", n - 1),
        };
        Err(Stop::Blocked(format!(
            "the migration rehearsal blocked: {first}{more}; `--allow {}` with a reason \
             overrides",
            rules.join(",")
        )))
    }

    /// Drops the scratch databases an interrupted deploy left (`recover`);
    /// says what it could not drop, and carries on.
    pub async fn drop_leftover_scratch(
        &mut self,
        leftovers: &std::collections::BTreeMap<String, Color>,
    ) {
        for (name, color) in leftovers {
            let dropped = async {
                let env = self.app_env(*color).await?;
                let file_url = self.file.env.get("DATABASE_URL").map(String::as_str);
                let server = target::find(file_url, &env).map_err(anyhow::Error::msg)?;
                scratch::drop(&server, name).await
            };
            match dropped.await {
                Ok(()) => {
                    let _ = self.journal.append(&Entry::Scratch(ScratchRecord {
                        database: name.clone(),
                        color: *color,
                        dropped: true,
                    }));
                    self.report.say(&format!(
                        "Dropped the scratch database {name} the interrupted rehearsal left"
                    ));
                }
                Err(e) => self.report.say(&format!(
                    "Could not drop the scratch database {name} the interrupted rehearsal left \
                     ({e:#}); drop it with `DROP DATABASE {name} WITH (FORCE)`"
                )),
            }
        }
    }
}
