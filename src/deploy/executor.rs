//! The one place a deploy has side effects: it walks the plan's steps,
//! journals each before and after, and on a failure or a plugin's veto puts
//! the color in flight back on its previous droplet and on the route, so one
//! healthy color always serves.

use super::interrupt::{Interrupt, Signal};
use super::journal::{DeployRecord, Entry, Journal, Outcome, OverrideRecord};
use super::lock::LockGuard;
use super::plan::{Bits, Step};
use super::plugins::Plugins;
use super::progress::Reporter;
use super::site::{self, Site};
use crate::config::DeployFile;
use crate::platform::v3;
use crate::plugin::Hook;
use crate::plugin::context::{Color, Migration};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod adopt;
mod analyze;
mod approval;
mod hooks;
mod interrupted;
mod load;
mod migrate;
mod native;
mod native_judge;
mod native_undo;
mod pause;
mod rehearse;
mod rehearse_run;
mod standby;
mod undo;

/// How a deploy ended when it did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{what}\n{aftermath}")]
    Blocked { what: String, aftermath: String },
    #[error("{what}\n{aftermath}")]
    Failed { what: String, aftermath: String },
    /// Ctrl-C or SIGTERM: rolled back as a failure is; exits 130 or 143.
    #[error("{what}\n{aftermath}")]
    Interrupted {
        signal: Signal,
        what: String,
        aftermath: String,
    },
}

/// Why a step stopped the deploy.
enum Stop {
    Blocked(String),
    Failed(anyhow::Error),
    /// The first Ctrl-C or SIGTERM (see `interrupted`).
    Interrupted(Signal),
}

impl Stop {
    fn into_error(self) -> anyhow::Error {
        match self {
            Stop::Failed(e) => e,
            Stop::Blocked(why) => anyhow::anyhow!(why),
            Stop::Interrupted(s) => anyhow::anyhow!("interrupted ({})", s.name()),
        }
    }
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
/// How long the color staying on the route gets to prove it is healthy.
const RECHECK_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Executor {
    pub file: DeployFile,
    pub app_dir: PathBuf,
    pub site: Site,
    pub plugins: Plugins,
    pub report: Reporter,
    pub record: DeployRecord,
    pub journal: Journal,
    /// The app's lock until the `ReleaseLock` step or a stop releases it
    /// (a guard nested in a deploy's own leaves the lease to that one).
    pub lock: Option<LockGuard>,
    /// The app's bits, when this deploy stages.
    pub zip: Option<crate::platform::package::Zipped>,
    pub pending: Vec<Migration>,
    /// Set when `recover` carries on an interrupted deploy.
    pub recovered: bool,
    /// `--allow RULE`: a block whose errors are all these rules proceeds.
    pub allow: Vec<String>,
    /// `--reset-scale`: the manifest's instance count even where the live
    /// app runs another (autoscaled).
    pub reset_scale: bool,
    pub reason: String,
    /// Ctrl-C and SIGTERM: the first stops the step in flight and rolls
    /// back (`Interrupt::none` where nobody listens).
    pub interrupt: Interrupt,
    overrides: Vec<OverrideRecord>,
    /// The `approval` plugins' decisions at pauses, for the history.
    approvals: Vec<super::journal::ApprovalRecord>,
    pub started: Instant,
    candidates: BTreeMap<Color, String>,
    health_deadline: BTreeMap<Color, Instant>,
    touched: BTreeSet<Color>,
    /// Colors this deploy put on the route with the new release.
    switched: BTreeSet<Color>,
    /// Colors a stopped deploy leaves on the new release (see `undo`).
    forward: BTreeSet<Color>,
    /// The analysis window `analyze` plugins are judging, and which call.
    window: Option<crate::plugin::context::AnalysisWindow>,
    window_attempt: u32,
    /// The longest an `analyze` plugin asked to keep watching.
    watch_longer: Option<Duration>,
    /// Cloud Foundry canary: the candidate's web instances before its steps.
    canary_instances: Option<u32>,
    /// The route's traffic before the deploy touched it (`Step::Baseline`).
    pre_deploy: Option<crate::platform::traffic::Sample>,
    /// A window on the old color after the migration is in progress.
    watching: bool,
    /// A deploy through CF's deployments (`site.mode` native).
    native: native::Run,
    /// What the `migration-safety-check` plugins found, for the rehearsal
    /// to combine with its evidence.
    static_findings: Vec<crate::plugin::context::Finding>,
    /// Commands from `bluegreen promote`, `resume`, `abort` (`pause`).
    operator: crate::deploy::operator::Operator,
}

/// What an executor is built from: the deploy's file, site, plugins,
/// output, record, journal and lock.
pub struct Setup {
    pub file: DeployFile,
    pub app_dir: PathBuf,
    pub site: Site,
    pub plugins: Plugins,
    pub report: Reporter,
    pub record: DeployRecord,
    pub journal: Journal,
    pub lock: LockGuard,
}

impl Executor {
    pub fn new(setup: Setup) -> Executor {
        let Setup {
            file,
            app_dir,
            site,
            plugins,
            report,
            record,
            journal,
            lock,
        } = setup;
        Executor {
            file,
            app_dir,
            site,
            plugins,
            report,
            record,
            journal,
            lock: Some(lock),
            zip: None,
            pending: Vec::new(),
            recovered: false,
            allow: Vec::new(),
            reset_scale: false,
            reason: String::new(),
            interrupt: Interrupt::none(),
            overrides: Vec::new(),
            approvals: Vec::new(),
            started: Instant::now(),
            candidates: BTreeMap::new(),
            health_deadline: BTreeMap::new(),
            touched: BTreeSet::new(),
            switched: BTreeSet::new(),
            forward: BTreeSet::new(),
            window: None,
            window_attempt: 1,
            watch_longer: None,
            canary_instances: None,
            pre_deploy: None,
            watching: false,
            native: native::Run::default(),
            static_findings: Vec::new(),
            operator: Default::default(),
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
            if let Some(Step::Map { color } | Step::Weigh { color, .. }) = self.steps().get(i)
                && done.contains(&i)
            {
                self.switched.insert(*color);
            }
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
            let held = match &self.lock {
                Some(lock) => lock.ensure_held().await,
                None => Err("it was released already".to_string()),
            };
            if let Err(why) = held {
                self.report
                    .say(&format!("Stopped: lost the deploy lock ({why})"));
                return Err(super::lock::LostLock {
                    app: self.file.app.clone(),
                    why,
                    step: step.to_string(),
                }
                .into());
            }
            // A signal that came between steps (or during one that runs to
            // its end) stops the deploy before the next one starts.
            if let Some(signal) = self.stops_before(&step) {
                return Err(self.stop(&step, Stop::Interrupted(signal)).await);
            }
            self.journal.append(&Entry::Start { step: i })?;
            let spinner = self.report.step_started(i, n, &step);
            let t = Instant::now();
            let result = self.exec_operated(&step).await;
            drop(spinner);
            let message = match &result {
                Ok(()) => None,
                Err(Stop::Blocked(why)) => Some(why.clone()),
                Err(Stop::Failed(e)) => Some(chain(e)),
                Err(Stop::Interrupted(s)) => Some(format!("interrupted ({})", s.name())),
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
            Step::Baseline { up_to } if self.site.mode == site::Mode::Native => {
                self.native_baseline(*up_to).await
            }
            Step::Baseline { up_to } => self.baseline(*up_to).await,
            Step::Native(n) => self.native(n).await,
            Step::Retire { app, up_to } => self.retire(app, *up_to).await,
            Step::Watch { color, up_to } => self.watch(*color, *up_to).await,
            Step::Unmap { color } => {
                self.other_serves(*color).await?;
                self.touched.insert(*color);
                let app = self.site.app(*color).guid.clone();
                client.unmap_route(&self.site.route.guid, &app).await?;
                Ok(())
            }
            Step::Drain { color, up_to } => self.drain(*color, *up_to, "restarts").await,
            Step::Push { color, bits } => self.push(*color, bits).await,
            Step::Rehearse { .. } => self.rehearse(step).await,
            Step::Migrate {
                color,
                command,
                contract,
            } => self.migrate(step, *color, command, *contract).await,
            Step::Health { color, timeout, .. } => {
                let deadline = Instant::now() + *timeout;
                self.health_deadline.insert(*color, deadline);
                let url = self
                    .site
                    .check_healthy(*color, &self.file.health, deadline)
                    .await?;
                self.candidates.insert(*color, url);
                Ok(())
            }
            Step::Map { color } => {
                self.map(*color).await?;
                self.switched.insert(*color);
                let mut meta = v3::Metadata::default();
                // A color on the route is no standby (nobody stops it).
                meta.annotations
                    .insert(crate::platform::standby::STANDBY_UNTIL.into(), None);
                meta.annotations.insert(
                    site::DEPLOYED_AT.into(),
                    Some(humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string()),
                );
                client
                    .set_metadata(&self.site.app(*color).guid, &meta)
                    .await?;
                Ok(())
            }
            Step::Weigh {
                color,
                percent,
                instances,
            } => {
                self.weigh(*color, *percent, *instances).await?;
                self.switched.insert(*color);
                Ok(())
            }
            Step::Analyze { .. } => self.analyze(step).await,
            Step::Pause { .. } => self.pause_step(step).await,
            Step::Standby { color, keep } => self.keep_standby(*color, *keep).await,
            Step::RecordRelease => {
                let entry = self.summary(Outcome::Done, None);
                super::journal::append_history(self.journal.dir(), &entry)?;
                Ok(())
            }
            Step::ReleaseLock => {
                if let Some(lock) = self.lock.take() {
                    lock.release().await?;
                }
                Ok(())
            }
        }
    }

    async fn map(&self, color: Color) -> Result<(), Stop> {
        let client = &self.site.client;
        let route = &self.site.route.guid;
        let guid = self.site.app(color).guid.as_str();
        let dests = client.destinations(route).await?;
        let there = dests.iter().any(|d| d.app.guid == guid);
        if dests.iter().any(|d| d.weight.is_some()) {
            // A whole-color map ends a canary: every destination even again.
            let mut apps: Vec<(&str, Option<u32>)> = Vec::new();
            for d in &dests {
                if !apps.iter().any(|(g, _)| *g == d.app.guid) {
                    apps.push((d.app.guid.as_str(), None));
                }
            }
            if !there {
                apps.push((guid, None));
            }
            client.set_destinations(route, &apps).await?;
        } else if !there {
            client.map_route(route, guid).await?;
        }
        Ok(())
    }

    /// Before `color` leaves the route the other color must be on it and
    /// answer healthy on its own URL now, not just when it was mapped:
    /// otherwise the unmap would leave the route empty or to a sick color.
    async fn other_serves(&self, color: Color) -> Result<(), Stop> {
        if !self.site.mapped(color).await? {
            return Ok(());
        }
        let other = color.other();
        if !self.site.mapped(other).await? {
            return Err(Stop::Failed(anyhow::anyhow!(
                "{other} is not on the route, so unmapping {color} would leave it empty; \
                 {color} keeps serving"
            )));
        }
        let deadline = Instant::now() + self.file.health.timeout.min(RECHECK_TIMEOUT);
        let check = self.site.check_healthy(other, &self.file.health, deadline);
        check.await.map(|_| ()).map_err(|e| {
            Stop::Failed(e.context(format!(
                "{other} must serve while {color} is off the route, and it is not healthy now"
            )))
        })
    }

    /// Waits until requests in flight to `color` finish, or says which are
    /// cut when it `then` (restarts, stops).
    async fn drain(&self, color: Color, up_to: Duration, then: &str) -> Result<(), Stop> {
        let guid = &self.site.app(color).guid;
        let who = ("color", color.to_string(), color.to_string());
        self.drain_app(guid, up_to, who, then).await
    }

    /// Waits until requests in flight to the app `guid` finish (the local
    /// router counts them), or for the whole drain time where nothing counts
    /// them. Those still in flight when `up_to` ends are cut when the app
    /// `then` (restarts, stops): a warning says so, with the setting that
    /// would have let them finish. `who` is the app's JSON key, value and
    /// name for people.
    async fn drain_app(
        &self,
        guid: &str,
        up_to: Duration,
        (key, value, shown): (&str, String, String),
        then: &str,
    ) -> Result<(), Stop> {
        let deadline = Instant::now() + up_to;
        if self.site.kind == crate::config::PlatformKind::Cf {
            tokio::time::sleep(up_to).await;
            return Ok(());
        }
        let left = loop {
            let left = self.site.client.inflight(guid).await?;
            if left == 0 {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break left;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.report
            .event(serde_json::json!({"event": "warning", "rule": "drain-cut",
            key: value, "inflight": left, "drain_ms": up_to.as_millis() as u64}));
        self.report.result(&format!(
            "warning: {left} request(s) still in flight to {shown} when its drain of {} ended; \
             they are cut when it {then} (a longer `drain:` lets them finish)",
            humantime::format_duration(up_to)
        ));
        Ok(())
    }

    async fn push(&mut self, color: Color, bits: &Bits) -> Result<(), Stop> {
        self.touched.insert(color);
        self.end_standby(color).await?;
        self.site.bind_services(color, STAGE_TIMEOUT).await?;
        let client = self.site.client.clone();
        let app = self.site.app(color).clone();
        let droplet = match (self.record.droplets.get(&color), bits) {
            (Some(d), _) => d.clone(),
            (None, Bits::Stage) => {
                let zip = self.zip.as_ref().ok_or_else(|| {
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
                match client.copy_droplet(&source, &app.guid, STAGE_TIMEOUT).await {
                    Ok(d) => d,
                    // Korifi copies no droplets: stage this color from the
                    // same bits instead, when this deploy has them.
                    Err(e) if e.is_unknown_endpoint() => {
                        let zip = self.zip.as_ref().ok_or_else(|| {
                            anyhow::anyhow!(
                                "{e}; this platform cannot copy droplets, and this deploy has no bits to stage {color} from"
                            )
                        })?;
                        self.report.say(&format!(
                            "  the platform cannot copy droplets: staging {} from the same bits",
                            app.name
                        ));
                        let pkg = client.create_package(&app.guid).await?;
                        client.upload_package(&pkg.guid, zip, STAGE_TIMEOUT).await?;
                        client.stage(&pkg.guid, STAGE_TIMEOUT).await?
                    }
                    Err(e) => return Err(e.into()),
                }
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
        self.switch(color, &droplet, Some(&release), None).await?;
        Ok(())
    }

    /// Points `color` at `droplet` with its release's environment (the
    /// deploy file's, or `restore`: what the color had before, every other
    /// variable removed) and restarts it.
    async fn switch(
        &self,
        color: Color,
        droplet: &str,
        release: Option<&str>,
        restore: Option<&BTreeMap<String, String>>,
    ) -> Result<(), crate::platform::PlatformError> {
        let client = &self.site.client;
        let app = self.site.app(color);
        let mut env: BTreeMap<String, Option<String>> = match restore {
            None => self
                .file
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect(),
            Some(before) => {
                let now = client.get_env(&app.guid).await?;
                now.keys()
                    .map(|k| (k.clone(), None))
                    .chain(before.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
                    .collect()
            }
        };
        env.insert("BLUEGREEN_RELEASE".into(), release.map(String::from));
        env.insert("BLUEGREEN_COLOR".into(), Some(color.name().into()));
        if let Some(m) = &self.file.cf_manifest {
            let keep = self.scale_to_keep(color, m).await?;
            let yaml = m.for_color(&app.name, keep);
            client
                .apply_manifest(&self.site.space_guid, &yaml, STAGE_TIMEOUT)
                .await?;
        }
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
}

impl Executor {
    /// Scale follows the live app: a color running another web instance
    /// count than the manifest says (an autoscaler's doing) keeps it, unless
    /// `--reset-scale`; either way the output says which.
    async fn scale_to_keep(
        &self,
        color: Color,
        m: &crate::config::manifest::Manifest,
    ) -> Result<Option<u32>, crate::platform::PlatformError> {
        let Some(wanted) = m.web().instances else {
            return Ok(None);
        };
        let Some(live) = self.site.live_instances(color).await? else {
            return Ok(None);
        };
        if live == wanted {
            return Ok(None);
        }
        let name = &self.site.app(color).name;
        self.report.event(serde_json::json!({
            "event": "scale", "color": color, "app": name, "live_instances": live,
            "manifest_instances": wanted, "kept_live": !self.reset_scale,
        }));
        if self.reset_scale {
            self.report.say(&format!(
                "  {name} runs {live} web instances; the manifest's {wanted} apply (--reset-scale)"
            ));
            return Ok(None);
        }
        self.report.say(&format!(
            "  {name} runs {live} web instances, the manifest says {wanted}: kept {live} \
             (the live app was scaled; --reset-scale applies the manifest's)"
        ));
        Ok(Some(live))
    }
}

/// An error and its causes on one line.
pub fn chain(e: &anyhow::Error) -> String {
    format!("{e:#}")
}
