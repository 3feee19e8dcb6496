//! `deploy`, `rollback`, `recover` and `plan`: check everything (the site
//! found read-only), take the app's lock, only then make its apps and route
//! where missing, write the journal's first record, and hand the plan and
//! the lock to the executor. An interrupted deploy found on the way is
//! recovered first, under the same lock.

use super::BadInput;

use crate::cli::Exit;
use crate::config::policy;
use crate::deploy::executor::{Executor, Setup};
use crate::deploy::interrupt::{Interrupt, Interrupted};
use crate::deploy::journal::{self, DeployRecord, Journal, Kind};
use crate::deploy::lock::{LockGuard, hostname};
use crate::deploy::plan::{self, Source};
use crate::deploy::progress::{Reporter, millis};
use crate::deploy::release;
pub use crate::deploy::session::Loaded;
use crate::deploy::session::Session;
use crate::deploy::site;
use crate::platform::local;
use clap::Args;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct FileArg {
    /// The deploy file.
    #[arg(short = 'f', long = "file", default_value = "bluegreen.yaml")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// One JSON event per line on stdout instead of progress lines.
    #[arg(long)]
    pub json: bool,
    /// Wait this long for another deploy's lock (`30s`, `10m`).
    #[arg(long, value_parser = crate::units::parse_duration, default_value = "0s")]
    pub wait: Duration,
    /// A policy layered on the system's (/etc/bluegreen/policy.yaml), which
    /// it can only add to; else $BLUEGREEN_POLICY, then the deploy file's
    /// `policy`.
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

/// `--allow` overrides, checked against the policy before anything runs.
#[derive(Debug, Default, Args)]
pub struct OverrideArgs {
    /// Let a plugin's block through when every rule it blocks on is listed
    /// (recorded in the journal and history with who and why).
    #[arg(long = "allow", value_name = "RULE")]
    pub allow: Vec<String>,
    /// Why the override is safe (the policy may require it).
    #[arg(long)]
    pub reason: Option<String>,
    /// With a `manifest`: apply its instance count even where a color runs
    /// another one (scaled by hand or an autoscaler), which is kept otherwise.
    #[arg(long)]
    pub reset_scale: bool,
    /// `rollback`: judge it as the deploy file says (canary steps, analysis)
    /// instead of a plain blue-green back to a release known to be good.
    #[arg(skip)]
    pub analyze: bool,
}

fn check_overrides(o: &OverrideArgs, policy: &policy::Loaded) -> anyhow::Result<()> {
    if o.allow.is_empty() {
        return Ok(());
    }
    let rules = &policy.policy.overrides;
    if !rules.allowed {
        return Err(crate::PolicyViolation(format!(
            "--allow {}: the org {} does not allow overrides",
            o.allow.join(","),
            policy.describe()
        ))
        .into());
    }
    if rules.require_reason && o.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        // Say where the rule comes from: an org policy, or the default.
        let whose = match &policy.path {
            Some(_) => format!(
                "the org {} requires a reason for every override (overrides.require_reason)",
                policy.describe()
            ),
            None => "with no org policy, every override is recorded with who and why \
                     (a policy can turn this off with overrides.require_reason: false)"
                .to_string(),
        };
        return Err(BadInput(format!(
            "--allow {} needs --reason TEXT: {whose}",
            o.allow.join(",")
        ))
        .into());
    }
    Ok(())
}

pub(super) use crate::units::now_rfc3339 as now;

/// The deploy's id: sortable by time, unique per run.
fn new_id() -> String {
    let t = now();
    let compact: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
    format!(
        "{compact}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..6]
    )
}

/// `deploy` (`source` New) and `rollback` (`source` Existing).
pub async fn run(
    args: &RunArgs,
    release: Option<String>,
    rollback_to: Option<Option<String>>,
    overrides: &OverrideArgs,
) -> anyhow::Result<Exit> {
    let started = Instant::now();
    let report = Reporter::new(args.json);
    let id = new_id();
    let kind = if rollback_to.is_some() {
        Kind::Rollback
    } else {
        Kind::Deploy
    };
    report.event(json!({"event": "deploy", "status": "started", "id": id, "kind": kind}));
    // The plan's length is not known before the deploy file is read.
    report.event(
        json!({"event": "step", "status": "started", "index": 1, "total": null,
        "step": "validate", "color": null, "text": plan::Step::Validate.to_string()}),
    );
    let mut reached = Reached::Validate { total: None };
    // From here on Ctrl-C and SIGTERM roll back rather than kill (see
    // `deploy::interrupt`); without signal handling they keep killing.
    let interrupt = Interrupt::install(&id, args.json).unwrap_or_else(|_| Interrupt::none());
    let result = deploy(
        args,
        (release, rollback_to),
        overrides,
        (&report, &interrupt),
        &id,
        &mut reached,
    )
    .await;
    let took = started.elapsed();
    match result {
        Ok((release, route_url)) => {
            report.event(
                json!({"event": "deploy", "status": "done", "id": id, "release": release,
                "route_url": route_url, "duration_ms": millis(took)}),
            );
            report.result(&format!(
                "Done in {:.1}s: release {release} serves {route_url}",
                took.as_secs_f64()
            ));
            Ok(super::Exit::Ok)
        }
        Err(e) => {
            let code = super::Exit::of(&e);
            let error = format!("{e:#}");
            let failed = match reached {
                Reached::Validate { total } => Some((0, total, plan::Step::Validate)),
                Reached::AcquireLock { total } => Some((1, Some(total), plan::Step::AcquireLock)),
                Reached::Steps => None,
            };
            if let Some((i, total, step)) = failed {
                report.event(json!({"event": "step", "status": "failed", "index": i + 1,
                    "total": total, "step": step.kind(), "color": null, "text": step.to_string(),
                    "error": error}));
            }
            let status = match code {
                super::Exit::BadInput => "bad-input",
                super::Exit::Blocked => "blocked",
                super::Exit::Locked => "locked",
                super::Exit::Interrupted | super::Exit::Terminated => "interrupted",
                _ => "failed",
            };
            report.event(json!({"event": "deploy", "status": status, "id": id,
                "exit_code": code as u8, "error": error, "duration_ms": millis(took)}));
            Err(e)
        }
    }
}

/// How far a deploy got before the executor took over, so the step that
/// failed is reported as such.
enum Reached {
    Validate { total: Option<usize> },
    AcquireLock { total: usize },
    Steps,
}

/// `run` without its first and last events: the release and route URL.
/// Before the lock is held the first signal ends the command; after, the
/// executor rolls back (see `deploy::interrupt`).
async fn deploy(
    args: &RunArgs,
    (release, rollback_to): (Option<String>, Option<Option<String>>),
    overrides: &OverrideArgs,
    (report, interrupt): (&Reporter, &Interrupt),
    id: &str,
    reached: &mut Reached,
) -> anyhow::Result<(String, String)> {
    let mut signals = interrupt.clone();
    let before_lock = until_locked(args, rollback_to.is_some(), overrides, report, id, reached);
    let locked = tokio::select! {
        locked = before_lock => locked?,
        signal = signals.wait() => {
            let what = "stopped before the deploy lock was held; nothing changed".into();
            return Err(Interrupted { signal, what }.into());
        }
    };
    let Locked {
        l,
        plugins,
        zip,
        survey,
        guard,
    } = locked;
    let id = id.to_string();
    // The guard stays here until the executor takes it (and releases it by
    // its last step, or when it stops); a failure before that releases it
    // below, since nothing of the deploy ran.
    let mut held = Some(guard);
    let result = async {
        let mut site = survey.create(&l.file).await?;
        let jdir = journal::dir(&local::home_dir(), &l.file.app);
        if let Some(replay) = Journal::read(&jdir)? {
            report.say(&format!("Found deploy {} interrupted; recovering it first", replay.record.id));
            // Under this deploy's lease, which the recovery's own release
            // leaves held (a nested guard).
            let nested = held.as_ref().expect("held").reenter().await?;
            super::recover::recover_replay(&l, &plugins.policy, replay, report, nested).await?;
            site.refresh().await?;
        }
        // Standbys whose time is over (Cloud Foundry has no daemon to stop
        // them on time; see `deploy::standby`).
        let expired = crate::deploy::standby::expire(&site).await?;
        for said in &expired {
            report.say(said);
        }
        if !expired.is_empty() {
            site.refresh().await?;
        }
        // Natively the one app stands as blue (see `site::Mode`).
        let native = site.mode == site::Mode::Native;
        let standby = l.file.scale_down_delay.is_some() && !native;
        let mut switch_back = None;
        let history = journal::history(&jdir)?;
        let newest = site.newest();
        let current = newest.and_then(|c| site.annotation(c, site::RELEASE));
        let (source, release, droplets) = match &rollback_to {
            None => {
                let r = release.unwrap_or_else(|| release::release_id(&l.app_dir, zip.as_ref().map(|z| z.sha256.as_str()).unwrap_or_default()));
                (Source::New, r, BTreeMap::new())
            }
            Some(to) if standby => match crate::deploy::standby::live(&site, &l.file.health).await {
                Ok(s) if to.as_deref().is_none_or(|t| t == s.release) => {
                    report.event(json!({"event": "rollback", "to": "standby", "color": s.color,
                        "release": s.release, "until": s.until}));
                    report.say(&format!(
                        "Rollback to the standby: {} runs release {} off the route (until {}); \
                         it goes back on the route after a health check, no push",
                        site.app(s.color).name, s.release, s.until
                    ));
                    switch_back = Some(s.color);
                    (Source::Existing(s.release.clone()), s.release, BTreeMap::new())
                }
                live => {
                    let why = match live {
                        Ok(s) => format!("the standby runs release {}, not {}", s.release, to.as_deref().unwrap_or_default()),
                        Err(why) => why,
                    };
                    report.event(json!({"event": "rollback", "to": "replay", "why": why}));
                    report.say(&format!(
                        "No standby to switch back to ({why}): replaying the release on the idle \
                         color instead (a restart from its kept droplet, no staging)"
                    ));
                    let (r, d) = crate::deploy::rollback::rollback_target(&site, &history, to.as_deref(), current.as_deref())?;
                    crate::deploy::rollback::check_droplets(&site, &r, &d).await?;
                    (Source::Existing(r.clone()), r, d)
                }
            },
            Some(to) => {
                let (r, d) = crate::deploy::rollback::rollback_target(&site, &history, to.as_deref(), current.as_deref())?;
                crate::deploy::rollback::check_droplets(&site, &r, &d).await?;
                (Source::Existing(r.clone()), r, d)
            }
        };
        let last = journal::last_done(&history);
        let since = last.and_then(|h| h.migration_version.clone());
        let applied = release::Applied::from_history(last);
        let (pending, present) = match (&l.file.migrate, &source) {
            (Some(m), Source::New) => {
                let all = release::all(&l.app_dir, m)?;
                let present: BTreeSet<String> = all.iter().map(|m| m.version.clone()).collect();
                (release::pending(all, &applied), present)
            }
            _ => (Vec::new(), BTreeSet::new()),
        };
        let order = match (native, switch_back) {
            (true, _) => plan::order(None, &[]),
            (false, Some(c)) => [c, c.other()],
            (false, None) => site.order().await?,
        };
        let mut steps = match (switch_back, standby) {
            (Some(c), _) => plan::standby::switch_back(&l.file, c, &plugins.by_hook()),
            (None, true) => {
                let sides = crate::deploy::standby::sides(Some(&site), order).await?;
                plan::standby::plan(&l.file, sides, &plugins.by_hook(), &source)
            }
            (None, false) => plan::for_mode(&l.file, native, order, &plugins.by_hook(), &source),
        };
        if let Some(app) = &site.adopted {
            report.say(&format!(
                "`{}` (pushed before bluegreen) serves the route: the colors take it over, then \
                 it is stopped",
                app.name
            ));
            steps = plan::with_retire(steps, &app.name, l.file.drain);
        }
        let mut before = BTreeMap::new();
        for c in site.apps.keys().copied().collect::<Vec<_>>() {
            before.insert(c, site.before(c).await?);
        }
        let record = DeployRecord {
            id: id.clone(),
            kind: if rollback_to.is_some() { Kind::Rollback } else { Kind::Deploy },
            app: l.file.app.clone(),
            file: l.path.clone(),
            release: release.clone(),
            previous_release: current.clone(),
            started: now(),
            host: hostname(),
            pid: std::process::id(),
            order,
            steps: steps.clone(),
            before,
            droplets,
            migration_version: pending
                .iter()
                .map(|m| m.version.clone())
                .max_by(|a, b| release::compare_versions(a, b))
                .or(since),
            // After success every migration file of this release has run.
            applied: applied.versions.iter().cloned().chain(present).collect::<BTreeSet<_>>().into_iter().collect(),
            contract: pending
                .iter()
                .filter(|m| m.phase == "contract")
                .map(|m| m.path.clone())
                .collect(),
            deployment: None,
        };
        if rollback_to.is_some() {
            crate::deploy::rollback::warn_contracted(report, &history, &release);
        }
        let mut journal = Journal::begin(&jdir, &record)?;
        interrupt.journal_begun();
        report.event(json!({"event": "deploy", "status": "running", "id": id, "app": l.file.app,
            "kind": record.kind, "release": release, "previous_release": current, "route_url": site.route_url}));
        report.say(&format!(
            "{} {} release {release} (now: {}) via {}",
            if rollback_to.is_some() { "Rolling back" } else { "Deploying" },
            l.file.app,
            current.as_deref().unwrap_or("nothing"),
            site.route_url
        ));
        for i in [0, 1] {
            journal.append(&journal::Entry::Done { step: i })?;
        }
        let route_url = site.route_url.clone();
        let mut exec = Executor::new(Setup {
            file: l.file.clone(),
            app_dir: l.app_dir.clone(),
            site,
            plugins,
            report: report.clone(),
            record,
            journal,
            lock: held.take().expect("held until the executor takes it"),
        });
        exec.zip = zip;
        exec.pending = pending;
        exec.allow = overrides.allow.clone();
        exec.reset_scale = overrides.reset_scale;
        exec.reason = overrides.reason.clone().unwrap_or_default();
        exec.interrupt = interrupt.clone();
        exec.run(2, &BTreeSet::from([0, 1])).await?;
        Ok::<_, anyhow::Error>((release, route_url))
    }
    .await;
    if let Some(guard) = held {
        let _ = guard.release().await;
    }
    result
}

/// `deploy` up to the lock: the checks (read-only), then the lock.
async fn until_locked(
    args: &RunArgs,
    rollback: bool,
    overrides: &OverrideArgs,
    report: &Reporter,
    id: &str,
    reached: &mut Reached,
) -> anyhow::Result<Locked> {
    let started = Instant::now();
    let session = Session::prepare(&args.file.file, args.policy.as_deref()).await?;
    let (mut l, plugins) = (session.loaded, session.plugins);
    if rollback && !overrides.analyze {
        l.file = l.file.plain();
    }
    let provisional = match rollback {
        false => Source::New,
        true => Source::Existing(String::new()),
    };
    // A rollback with a standby expects to switch back to it.
    let total = match rollback && l.file.scale_down_delay.is_some() {
        true => plan::standby::switch_back(&l.file, plan::order(None, &[])[0], &BTreeMap::new()),
        false => plan::for_mode(
            &l.file,
            l.file.strategy.native(),
            plan::order(None, &[]),
            &BTreeMap::new(),
            &provisional,
        ),
    }
    .len();
    *reached = Reached::Validate { total: Some(total) };
    check_overrides(overrides, &plugins.policy)?;
    let zip = match rollback {
        false => Some(crate::platform::package::zip_dir(&l.app_dir)?),
        true => None,
    };
    // Read-only until the lock is held: a deploy refused it leaves no apps,
    // routes or services behind.
    let survey = l.survey().await?;
    let l = fall_back(l, &survey.mode, report)?;
    if rollback && !overrides.analyze && l.file.scale_down_delay.is_none() {
        report.say(
            "Rollback: back to a release that served before, as a plain blue-green without \
             canary steps or analysis (usually seconds; `--analyze` judges it as the deploy file \
             says)",
        );
    }
    report.step_finished(0, total, &plan::Step::Validate, started.elapsed(), None);
    let waiting = report.step_started(1, total, &plan::Step::AcquireLock);
    *reached = Reached::AcquireLock { total };
    let t = Instant::now();
    let store = survey.lock_store();
    let client = survey.client().clone();
    let guard = LockGuard::acquire(client, store, l.lease(id), args.wait, None).await?;
    drop(waiting);
    report.step_finished(1, total, &plan::Step::AcquireLock, t.elapsed(), None);
    *reached = Reached::Steps;
    Ok(Locked {
        l,
        plugins,
        zip,
        survey,
        guard,
    })
}

/// A native strategy where the foundation cannot run CF's deployments:
/// two colors instead, said so, or with `fallback: none` refused before
/// anything changed.
fn fall_back(mut l: Loaded, mode: &site::Mode, report: &Reporter) -> anyhow::Result<Loaded> {
    let strategy = l.file.strategy.name();
    match mode {
        site::Mode::Fallback(why) if l.file.fallback == crate::config::Fallback::None => {
            Err(BadInput(format!(
                "{}: field `strategy`: `{strategy}` needs Cloud Foundry's deployments, and this \
                 foundation cannot run them: {why}. `fallback: none` refuses; remove it to deploy \
                 with two colors instead",
                l.path.display()
            ))
            .into())
        }
        site::Mode::Fallback(why) => {
            l.file = l.file.two_color();
            report.say(&format!(
                "`strategy: {strategy}` falls back to `{}` with two colors: this foundation \
                 cannot run Cloud Foundry's deployments ({why})",
                l.file.strategy.name()
            ));
            report.event(
                json!({"event": "mode", "mode": "two-color", "asked": strategy,
                "strategy": l.file.strategy.name(), "why": why}),
            );
            Ok(l)
        }
        site::Mode::Native => {
            report.event(json!({"event": "mode", "mode": "native", "strategy": strategy}));
            Ok(l)
        }
        site::Mode::Colors => Ok(l),
    }
}

/// What `deploy` has once it holds the lock.
struct Locked {
    l: Loaded,
    plugins: crate::deploy::plugins::Plugins,
    zip: Option<crate::platform::package::Zipped>,
    survey: crate::deploy::site::Survey,
    guard: LockGuard,
}
