//! The one place a deploy has side effects: it walks the plan's steps,
//! journals each before and after, and on a failure or a plugin's veto puts
//! the color in flight back on its previous droplet and on the route, so one
//! healthy color always serves.

use super::health;
use super::journal::{DeployRecord, Entry, HistoryEntry, Journal, Kind, Outcome, OverrideRecord};
use super::lock::DeployLock;
use super::plan::{Bits, Step};
use super::plugins::Plugins;
use super::progress::Reporter;
use super::site::{self, Site};
use crate::config::DeployFile;
use crate::platform::v3;
use crate::plugin::Hook;
use crate::plugin::context::{
    Color, DeployInfo, FailureInfo, HookContext, Migration, Target, Verdict,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How a deploy ended when it did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{what}\n{aftermath}")]
    Blocked { what: String, aftermath: String },
    #[error("{what}\n{aftermath}")]
    Failed { what: String, aftermath: String },
}

/// Why a step stopped the deploy.
enum Stop {
    Blocked(String),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Stop {
        Stop::Failed(e)
    }
}

impl From<crate::platform::PlatformError> for Stop {
    fn from(e: crate::platform::PlatformError) -> Stop {
        Stop::Failed(e.into())
    }
}

const TASK_TIMEOUT: Duration = Duration::from_secs(600);
const STAGE_TIMEOUT: Duration = Duration::from_secs(900);

pub struct Executor {
    pub file: DeployFile,
    pub app_dir: PathBuf,
    pub site: Site,
    pub plugins: Plugins,
    pub report: Reporter,
    pub record: DeployRecord,
    pub journal: Journal,
    pub lock: DeployLock,
    /// The app's bits, when this deploy stages.
    pub zip: Option<Vec<u8>>,
    pub pending: Vec<Migration>,
    /// Set when `recover` carries on an interrupted deploy.
    pub recovered: bool,
    /// A deploy that recovers an earlier one first keeps the lock for itself.
    pub keep_lock: bool,
    /// `--allow RULE`: a block whose errors are all these rules proceeds.
    pub allow: Vec<String>,
    pub reason: String,
    overrides: Vec<OverrideRecord>,
    pub started: Instant,
    candidates: BTreeMap<Color, String>,
    health_deadline: BTreeMap<Color, Instant>,
    touched: BTreeSet<Color>,
}

impl Executor {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        file: DeployFile,
        app_dir: PathBuf,
        site: Site,
        plugins: Plugins,
        report: Reporter,
        record: DeployRecord,
        journal: Journal,
        lock: DeployLock,
    ) -> Executor {
        Executor {
            file,
            app_dir,
            site,
            plugins,
            report,
            record,
            journal,
            lock,
            zip: None,
            pending: Vec::new(),
            recovered: false,
            keep_lock: false,
            allow: Vec::new(),
            reason: String::new(),
            overrides: Vec::new(),
            started: Instant::now(),
            candidates: BTreeMap::new(),
            health_deadline: BTreeMap::new(),
            touched: BTreeSet::new(),
        }
    }

    fn steps(&self) -> &[Step] {
        &self.record.steps
    }

    /// Runs the steps from `from` to the end; `done` are journaled as
    /// finished already (by an earlier run or by the caller's checks).
    pub async fn run(mut self, from: usize, done: &BTreeSet<usize>) -> anyhow::Result<()> {
        let n = self.steps().len();
        // A color whose steps began before an interruption may be off the
        // route or on new bits: treat it as in flight.
        for i in done.iter().copied().chain([from]) {
            if let Some(step) = self.steps().get(i)
                && !matches!(
                    step,
                    Step::Hook {
                        hook: Hook::PreUnmap,
                        ..
                    }
                )
                && let Some(c) = step.color()
            {
                self.touched.insert(c);
            }
        }
        for i in from..n {
            let step = self.steps()[i].clone();
            self.journal.append(&Entry::Start { step: i })?;
            let spinner = self.report.step_started(i, n, &step);
            let t = Instant::now();
            let result = self.exec(&step).await;
            drop(spinner);
            let message = match &result {
                Ok(()) => None,
                Err(Stop::Blocked(why)) => Some(why.clone()),
                Err(Stop::Failed(e)) => Some(chain(e)),
            };
            self.report
                .step_finished(i, n, &step, t.elapsed(), message.as_deref());
            match result {
                Ok(()) => self.journal.append(&Entry::Done { step: i })?,
                Err(stop) => return Err(self.stop(&step, stop).await),
            }
        }
        self.journal.close()
    }

    async fn exec(&mut self, step: &Step) -> Result<(), Stop> {
        let client = self.site.client.clone();
        match step {
            // Both happen before the journal exists; see `cli::deploy`.
            Step::Validate | Step::AcquireLock => Ok(()),
            Step::Hook { hook, color, .. } => self.hooks(*hook, *color).await,
            Step::Unmap { color } => {
                self.touched.insert(*color);
                let app = self.site.app(*color).guid.clone();
                client.unmap_route(&self.site.route.guid, &app).await?;
                Ok(())
            }
            Step::Drain { color, up_to } => self.drain(*color, *up_to).await,
            Step::Push { color, bits } => self.push(*color, bits).await,
            Step::Migrate {
                color,
                command,
                contract,
            } => {
                // One command serves both phases; it learns which from the
                // environment (`bin/migrate` in examples/rails-app does).
                let phase = if *contract { "contract" } else { "expand" };
                let app = self.site.app(*color).guid.clone();
                let command = format!("BLUEGREEN_MIGRATION_PHASE={phase} {command}");
                client.run_task(&app, &command, TASK_TIMEOUT).await?;
                Ok(())
            }
            Step::Health { color, timeout, .. } => {
                let deadline = Instant::now() + *timeout;
                self.health_deadline.insert(*color, deadline);
                let url = self.site.candidate_url(*color, deadline).await?;
                self.candidates.insert(*color, url.clone());
                health::probe(&url, &self.file.health, deadline)
                    .await
                    .map_err(|e| Stop::Failed(e.into()))?;
                self.site.until_running(*color, deadline).await?;
                Ok(())
            }
            Step::Map { color } => {
                self.map(*color).await?;
                let mut meta = v3::Metadata::default();
                meta.annotations.insert(
                    site::DEPLOYED_AT.into(),
                    Some(humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()),
                );
                client
                    .set_metadata(&self.site.app(*color).guid, &meta)
                    .await?;
                Ok(())
            }
            Step::RecordRelease => {
                let entry = self.summary(Outcome::Done, None);
                super::journal::append_history(self.journal.dir(), &entry)?;
                Ok(())
            }
            Step::ReleaseLock if self.keep_lock => Ok(()),
            Step::ReleaseLock => {
                self.lock.release().await?;
                Ok(())
            }
        }
    }

    async fn map(&self, color: Color) -> Result<(), Stop> {
        if !self.site.mapped(color).await? {
            self.site
                .client
                .map_route(&self.site.route.guid, &self.site.app(color).guid)
                .await?;
        }
        Ok(())
    }

    /// Waits until requests in flight to `color` finish (the local router
    /// counts them), or for the whole drain time where nothing counts them.
    async fn drain(&self, color: Color, up_to: Duration) -> Result<(), Stop> {
        let deadline = Instant::now() + up_to;
        let guid = &self.site.app(color).guid;
        if self.site.kind == crate::config::PlatformKind::Cf {
            tokio::time::sleep(up_to).await;
            return Ok(());
        }
        while Instant::now() < deadline {
            if self.site.client.inflight(guid).await? == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn push(&mut self, color: Color, bits: &Bits) -> Result<(), Stop> {
        self.touched.insert(color);
        let client = self.site.client.clone();
        let app = self.site.app(color).clone();
        let droplet = match (self.record.droplets.get(&color), bits) {
            (Some(d), _) => d.clone(),
            (None, Bits::Stage) => {
                let zip = self.zip.clone().ok_or_else(|| {
                    anyhow::anyhow!("the app's bits were not prepared (internal error)")
                })?;
                let pkg = client.create_package(&app.guid).await?;
                client.upload_package(&pkg.guid, zip, STAGE_TIMEOUT).await?;
                client.stage(&pkg.guid, STAGE_TIMEOUT).await?
            }
            (None, Bits::Reuse | Bits::Release(_)) => {
                let source = self
                    .record
                    .droplets
                    .get(&color.other())
                    .cloned()
                    .ok_or_else(|| anyhow::anyhow!("no droplet to reuse for {color}"))?;
                client
                    .copy_droplet(&source, &app.guid, STAGE_TIMEOUT)
                    .await?
            }
        };
        if self.record.droplets.get(&color) != Some(&droplet) {
            self.journal.append(&Entry::Droplet {
                color,
                guid: droplet.clone(),
            })?;
            self.record.droplets.insert(color, droplet.clone());
        }
        let release = self.record.release.clone();
        self.switch(color, &droplet, Some(&release)).await?;
        Ok(())
    }

    /// Points `color` at `droplet` with its release's environment and
    /// restarts it.
    async fn switch(
        &self,
        color: Color,
        droplet: &str,
        release: Option<&str>,
    ) -> Result<(), crate::platform::PlatformError> {
        let client = &self.site.client;
        let app = self.site.app(color);
        let mut env: BTreeMap<String, Option<String>> = self
            .file
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        env.insert("BLUEGREEN_RELEASE".into(), release.map(String::from));
        env.insert("BLUEGREEN_COLOR".into(), Some(color.name().into()));
        client.set_env(&app.guid, &env).await?;
        if let Some(cmd) = &self.file.command {
            let process = client.web_process(&app.guid).await?;
            client
                .update_process(&process.guid, Some(cmd), None)
                .await?;
        }
        let before = &self.record.before[&color];
        client.set_current_droplet(&app.guid, droplet).await?;
        client.app_action(&app.guid, "restart").await?;
        let mut meta = v3::Metadata::default();
        meta.annotations
            .insert(site::RELEASE.into(), release.map(String::from));
        if before.droplet.as_deref() != Some(droplet) {
            meta.annotations
                .insert(site::PREVIOUS_RELEASE.into(), before.release.clone());
            meta.annotations
                .insert(site::PREVIOUS_DROPLET.into(), before.droplet.clone());
        }
        client.set_metadata(&app.guid, &meta).await?;
        Ok(())
    }

    fn context(&self, hook: Hook, color: Option<Color>, attempt: Option<u32>) -> HookContext {
        let r = &self.record;
        let target = color.unwrap_or(r.order[0]);
        HookContext {
            deploy: DeployInfo {
                id: r.id.clone(),
                app: r.app.clone(),
                release: r.release.clone(),
                previous_release: r.previous_release.clone(),
                route_url: self.site.route_url.clone(),
            },
            target: Target {
                color: target,
                app_name: self.site.app(target).name.clone(),
                candidate_url: self.candidates.get(&target).cloned().unwrap_or_default(),
                first: target == r.order[0],
            },
            attempt,
            pending: if hook == Hook::MigrationSafetyCheck {
                self.pending.clone()
            } else {
                Vec::new()
            },
            failure: None,
        }
    }

    /// Calls every plugin on `hook` in name order. A `block` stops the
    /// deploy; `retry-after` from a health check polls again within the
    /// color's health deadline, and elsewhere counts as a block.
    async fn hooks(&mut self, hook: Hook, color: Option<Color>) -> Result<(), Stop> {
        if hook == Hook::HealthCheck
            && let Some(c) = color
            && !self.candidates.contains_key(&c)
        {
            // Resumed after an interruption: find the candidate again.
            let deadline = Instant::now() + self.file.health.timeout;
            self.health_deadline.insert(c, deadline);
            let url = self.site.candidate_url(c, deadline).await?;
            self.candidates.insert(c, url);
        }
        let names: Vec<String> = self
            .plugins
            .handling(hook)
            .map(|p| p.name.clone())
            .collect();
        for name in names {
            let mut attempt = 1;
            loop {
                let ctx = self.context(hook, color, (hook == Hook::HealthCheck).then_some(attempt));
                let plugin = self
                    .plugins
                    .loaded
                    .iter()
                    .find(|p| p.name == name)
                    .expect("loaded");
                let candidate = color
                    .and_then(|c| self.candidates.get(&c))
                    .map(String::as_str);
                let config = self.plugins.config(&name, candidate);
                let t = Instant::now();
                let report = self
                    .plugins
                    .host
                    .run_hook(plugin, hook, &ctx, &config)
                    .await;
                let report = report.map_err(|e| Stop::Failed(e.into()))?;
                let verdict = report.outcome.verdict.clone();
                self.report.hook_result(
                    hook,
                    color,
                    &name,
                    &verdict,
                    t.elapsed(),
                    &report.outcome.findings,
                );
                let errors: Vec<String> = report
                    .outcome
                    .findings
                    .iter()
                    .filter(|f| f.severity == crate::plugin::context::Severity::Error)
                    .map(|f| f.rule.clone())
                    .collect();
                match verdict {
                    Verdict::Proceed => break,
                    Verdict::Block(_)
                        if !errors.is_empty() && errors.iter().all(|r| self.allow.contains(r)) =>
                    {
                        self.record_override(&name, hook, errors)?;
                        break;
                    }
                    Verdict::Block(reason) => {
                        return Err(Stop::Blocked(format!(
                            "plugin `{name}` blocked at {hook}: {reason}"
                        )));
                    }
                    Verdict::RetryAfterMs(ms) => {
                        let wait = Duration::from_millis(ms.into());
                        let deadline = color.and_then(|c| self.health_deadline.get(&c)).copied();
                        match deadline {
                            Some(d) if hook == Hook::HealthCheck && Instant::now() + wait < d => {
                                tokio::time::sleep(wait).await;
                                attempt += 1;
                            }
                            Some(_) if hook == Hook::HealthCheck => {
                                return Err(Stop::Failed(anyhow::anyhow!(
                                    "plugin `{name}` still said retry after {attempt} attempts when the health timeout ran out"
                                )));
                            }
                            _ => {
                                return Err(Stop::Blocked(format!(
                                    "plugin `{name}` asked to retry {hook} in {} (only health checks are retried)",
                                    humantime::format_duration(wait)
                                )));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    fn record_override(
        &mut self,
        plugin: &str,
        hook: Hook,
        rules: Vec<String>,
    ) -> anyhow::Result<()> {
        let by = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        let rec = OverrideRecord {
            plugin: plugin.into(),
            hook,
            rules,
            reason: self.reason.clone(),
            by: format!("{by}@{}", super::lock::hostname()),
        };
        self.journal.append(&Entry::Override(rec.clone()))?;
        self.report.event(
            serde_json::json!({"event": "override", "plugin": rec.plugin,
            "hook": hook.name(), "rules": rec.rules, "reason": rec.reason, "by": rec.by}),
        );
        self.report.say(&format!(
            "      overridden by {} with --allow {}: {}",
            rec.by,
            rec.rules.join(","),
            rec.reason
        ));
        self.overrides.push(rec);
        Ok(())
    }

    /// After a failed or vetoed step: put the color in flight back, run the
    /// on-failure hooks, record, unlock.
    async fn stop(mut self, step: &Step, stop: Stop) -> anyhow::Error {
        let (what, blocked) = match &stop {
            Stop::Blocked(why) => (format!("deploy blocked: {why}"), true),
            Stop::Failed(e) => (format!("deploy failed at `{step}`: {}", chain(e)), false),
        };
        let mut aftermath = Vec::new();
        if matches!(step, Step::Migrate { contract: true, .. }) {
            aftermath.push(
                "both colors serve the new release; the contract migration did not finish (fix it and deploy again)".into(),
            );
        } else if let Some(c) = step.color().filter(|c| self.touched.contains(c)) {
            aftermath.push(self.restore(c).await);
        } else if matches!(
            step,
            Step::Hook {
                hook: Hook::PostDeploy,
                ..
            }
        ) {
            aftermath.push("the deploy itself had finished; nothing was rolled back".into());
        } else {
            aftermath.push("nothing on the route changed".into());
        }
        let failure = FailureInfo {
            step: step.kind().into(),
            color: step.color(),
            message: what.clone(),
        };
        aftermath.extend(self.on_failure(failure).await);
        let outcome = if blocked {
            Outcome::Blocked
        } else {
            Outcome::Failed
        };
        let summary = self.summary(outcome, Some(what.clone()));
        if let Err(e) = super::journal::append_history(self.journal.dir(), &summary) {
            aftermath.push(format!("could not record the history: {e:#}"));
        }
        if !self.keep_lock
            && let Err(e) = self.lock.release().await
        {
            aftermath.push(format!("could not release the lock: {e:#}"));
        }
        if let Err(e) = self.journal.close() {
            aftermath.push(format!("could not close the journal: {e:#}"));
        }
        let aftermath = aftermath
            .iter()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        if blocked {
            DeployError::Blocked { what, aftermath }.into()
        } else {
            DeployError::Failed { what, aftermath }.into()
        }
    }

    /// Finishes an interrupted deploy that had not yet put its first color
    /// back on the route with the new release: that color goes back to what
    /// it ran before, the other was never touched.
    pub async fn roll_back_interrupted(mut self, at: usize) -> anyhow::Result<String> {
        let first = self.record.order[0];
        let step = self
            .record
            .steps
            .get(at)
            .map(|s| s.to_string())
            .unwrap_or_default();
        let restored = self.restore(first).await;
        let what = format!("interrupted at `{step}`; recover rolled it back: {restored}");
        let summary = self.summary(Outcome::Failed, Some(what.clone()));
        super::journal::append_history(self.journal.dir(), &summary)?;
        if !self.keep_lock {
            self.lock.release().await?;
        }
        self.journal.close()?;
        Ok(what)
    }

    /// Puts `color` back on the droplet it ran before this deploy, checks it
    /// and maps it. Returns what happened, for the summary.
    pub async fn restore(&mut self, color: Color) -> String {
        match self.try_restore(color).await {
            Ok(done) => done,
            Err(e) => format!(
                "{color} could not be restored ({}); it stays off the route while {} serves",
                chain(&e),
                color.other()
            ),
        }
    }

    async fn try_restore(&mut self, color: Color) -> anyhow::Result<String> {
        let t = Instant::now();
        let client = self.site.client.clone();
        let app = self.site.app(color).clone();
        let before = self.record.before[&color].clone();
        let Some(droplet) = before.droplet.clone() else {
            client.app_action(&app.guid, "stop").await?;
            client.unmap_route(&self.site.route.guid, &app.guid).await?;
            return Ok(format!(
                "{color} had no earlier release: stopped and left off the route"
            ));
        };
        let current = client.current_droplet(&app.guid).await?;
        let app_now = client.get_app(&app.guid).await?;
        if current.as_deref() != Some(droplet.as_str()) {
            self.switch(color, &droplet, before.release.as_deref())
                .await?;
        } else if app_now.state != "STARTED" {
            client.app_action(&app.guid, "start").await?;
        }
        // It no longer runs the newest release: the order of the next deploy
        // must not change because of this one.
        let mut meta = v3::Metadata::default();
        meta.annotations
            .insert(site::DEPLOYED_AT.into(), before.deployed_at.clone());
        client.set_metadata(&app.guid, &meta).await?;
        let deadline = Instant::now() + self.file.health.timeout;
        let url = self.site.candidate_url(color, deadline).await?;
        health::probe(&url, &self.file.health, deadline).await?;
        self.site.until_running(color, deadline).await?;
        self.map(color).await.map_err(|s| match s {
            Stop::Failed(e) => e,
            Stop::Blocked(b) => anyhow::anyhow!(b),
        })?;
        let release = before.release.as_deref().unwrap_or("its earlier droplet");
        Ok(format!(
            "rolled {color} back to {release}: healthy and on the route again ({:.1}s)",
            t.elapsed().as_secs_f64()
        ))
    }

    /// Best effort: an on-failure plugin cannot hide the first error.
    async fn on_failure(&self, failure: FailureInfo) -> Vec<String> {
        let mut notes = Vec::new();
        for plugin in self.plugins.handling(Hook::OnFailure) {
            let mut ctx = self.context(Hook::OnFailure, failure.color, None);
            ctx.failure = Some(failure.clone());
            let config = self.plugins.config(&plugin.name, None);
            let t = Instant::now();
            match self
                .plugins
                .host
                .run_hook(plugin, Hook::OnFailure, &ctx, &config)
                .await
            {
                Ok(r) => self.report.hook_result(
                    Hook::OnFailure,
                    failure.color,
                    &plugin.name,
                    &r.outcome.verdict,
                    t.elapsed(),
                    &r.outcome.findings,
                ),
                Err(e) => notes.push(format!(
                    "on-failure plugin `{}` failed too: {e}",
                    plugin.name
                )),
            }
        }
        self.report.flush();
        notes
    }

    pub fn summary(&self, result: Outcome, message: Option<String>) -> HistoryEntry {
        let r = &self.record;
        let mut releases = BTreeMap::new();
        let mut droplets = BTreeMap::new();
        for c in [Color::Blue, Color::Green] {
            let (d, rel) = match result {
                Outcome::Done => (r.droplets.get(&c).cloned(), Some(r.release.clone())),
                _ => (r.before[&c].droplet.clone(), r.before[&c].release.clone()),
            };
            if let Some(d) = d {
                droplets.insert(c, d);
            }
            if let Some(rel) = rel {
                releases.insert(c, rel);
            }
        }
        HistoryEntry {
            id: r.id.clone(),
            kind: r.kind,
            release: r.release.clone(),
            previous_release: r.previous_release.clone(),
            result,
            started: r.started.clone(),
            finished: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            droplets,
            releases,
            migration_version: match (result, r.kind) {
                (Outcome::Done, Kind::Deploy) => r.migration_version.clone(),
                _ => None,
            },
            message,
            recovered: self.recovered,
            overrides: self.overrides.clone(),
            contract: match (result, r.kind) {
                (Outcome::Done, Kind::Deploy) => r.contract.clone(),
                _ => Vec::new(),
            },
        }
    }
}

/// An error and its causes on one line.
pub fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}
