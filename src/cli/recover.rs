//! `recover`: finishes or rolls back a deploy that was interrupted, from its
//! journal, under the same deploy id (so it may take over the dead
//! runner's lock).

use super::deploy::{Loaded, RunArgs};
use crate::cli::Exit;
use crate::config::policy;
use crate::deploy::executor::{Executor, Setup};
use crate::deploy::journal::{self, Journal, Kind, Replay};
use crate::deploy::lock::{self, LockGuard};
use crate::deploy::plan::Step;
use crate::deploy::plugins::Plugins;
use crate::deploy::progress::Reporter;
use crate::platform::lease::control::{Command, Verb};
use crate::platform::local;
use serde_json::json;

/// The command sent to paused deploy `id` that it has not taken, if any.
async fn pending_command(site: &crate::deploy::site::Site, app: &str, id: &str) -> Option<Command> {
    let channel = crate::deploy::operator::Channel {
        client: site.client.clone(),
        store: lock::Store::of(site.kind, &site.space_guid),
        app: app.to_string(),
    };
    let control = channel.read().await.ok()?;
    let handled = control.state.and_then(|s| s.handled);
    control
        .command
        .filter(|c| c.deploy == id && handled.as_deref() != Some(c.id.as_str()))
}

/// Says whether a deploy paused when its runner died is resumed or aborted.
fn say_paused(report: &Reporter, id: &str, at: &str, pending: Option<&Command>) {
    let what = match pending {
        Some(c) if c.verb != Verb::Abort => format!(
            "`{}` by {} came since: resuming it",
            c.verb.name(),
            crate::output::printable(&c.by)
        ),
        Some(c) => format!(
            "`abort` by {} came since: aborting it",
            crate::output::printable(&c.by)
        ),
        None => "no `resume` or `promote` came since its runner died: aborting it (to carry on \
                 instead, `bluegreen resume`, then `bluegreen recover`)"
            .into(),
    };
    report.result(&format!("Deploy {id} was {at}; {what}"));
    report.event(json!({"event": "recover-paused", "id": id, "at": at,
        "resumed": pending.is_some_and(|c| c.verb != Verb::Abort),
        "command": pending.map(|c| c.verb)}));
}

/// `recover`: finishes or rolls back the interrupted deploy of the app.
pub async fn recover(args: &RunArgs) -> anyhow::Result<Exit> {
    let report = Reporter::new(args.json);
    let named = Loaded::read(&args.file.file)?;
    let jdir = journal::dir(&local::home_dir(), &named.file.app);
    let Some(replay) = Journal::read(&jdir)? else {
        report.result(&format!(
            "Nothing to recover: no interrupted deploy of {}",
            named.file.app
        ));
        report.event(json!({"event": "recover", "status": "nothing"}));
        return Ok(super::Exit::Ok);
    };
    // Carry on with the configuration the interrupted deploy used.
    let l = Loaded::read(&replay.record.file).unwrap_or(named);
    let policy = l.policy(args.policy.as_deref())?;
    let survey = l.survey().await?;
    let store = survey.lock_store();
    let client = survey.client().clone();
    // Taking over the interrupted deploy's own lease is for a runner that
    // died; one still at work is left alone (it would find its lease and
    // journal gone).
    if let Some(h) = store.holder(&client, &l.file.app).await?
        && h.id == replay.record.id
        && lock::may_be_alive(&h)
    {
        return Err(lock::Locked { holder: h }.into());
    }
    let id = replay.record.id.clone();
    let guard = LockGuard::acquire(client, store, l.lease(&id), args.wait, Some(&id)).await?;
    recover_replay(&l, &policy, replay, &report, guard).await?;
    Ok(super::Exit::Ok)
}

/// Rolls forward once the first color serves the new release (or when there
/// is nothing earlier to go back to); otherwise rolls the first color back.
/// The executor releases `lock` when done (left to its enclosing guard when
/// it is nested in a deploy's, see `LockGuard::reenter`); a failure before
/// the executor runs drops it, so the lease stays for the next `recover`.
pub(super) async fn recover_replay(
    l: &Loaded,
    policy: &policy::Loaded,
    replay: Replay,
    report: &Reporter,
    lock: LockGuard,
) -> anyhow::Result<()> {
    let rec = replay.record.clone();
    let at = replay.resume_at();
    let jdir = journal::dir(&local::home_dir(), &rec.app);
    let mut site = l.site(true).await?.expect("created");
    // A standby whose time is over stops here on Cloud Foundry too (no
    // daemon there; see `deploy::standby`).
    let expired = crate::deploy::standby::expire(&site).await?;
    for said in &expired {
        report.say(said);
    }
    if !expired.is_empty() {
        site.refresh().await?;
    }
    let plugins = Plugins::load(&l.file, &l.path, &l.base, policy.clone()).await?;
    let first = rec.order[0];
    let first_mapped = rec
        .steps
        .iter()
        .position(|s| *s == Step::Map { color: first })
        .is_some_and(|i| replay.done.contains(&i));
    let nothing_earlier = rec.before.values().all(|b| b.droplet.is_none());
    let step = rec.steps.get(at).map(|s| s.to_string()).unwrap_or_default();
    // Paused when its runner died: an operator's command sent since decides.
    let paused = replay.paused.clone().filter(|(i, _)| *i == at).map(|p| p.1);
    let pending = match &paused {
        Some(_) => pending_command(&site, &rec.app, &rec.id).await,
        None => None,
    };
    let journal = Journal::reopen(&jdir)?;
    let mut exec = Executor::new(Setup {
        file: l.file.clone(),
        app_dir: l.app_dir.clone(),
        site,
        plugins,
        report: report.clone(),
        record: rec.clone(),
        journal,
        lock,
    });
    exec.recovered = true;
    // A rehearsal killed mid-way left its scratch database: drop it first.
    exec.drop_leftover_scratch(&replay.scratch).await;
    let native = rec.steps.iter().any(|s| matches!(s, Step::Native(_)));
    let forward = match (native, &paused) {
        // `resume` or `promote` carries on (the pause takes the command);
        // `abort`, or no word since the runner died, rolls back.
        (_, Some(at)) => {
            say_paused(report, &rec.id, at, pending.as_ref());
            pending.as_ref().is_some_and(|c| c.verb != Verb::Abort)
        }
        // CF's deployment decides: a deployed one carries on (the judge,
        // the contract phase, the hooks), any other is cancelled.
        (true, None) => exec.deployed_natively().await?,
        (false, None) => first_mapped || nothing_earlier,
    };
    if forward {
        report.say(&format!(
            "Recovering deploy {} of release {}: carrying on from `{step}`",
            rec.id, rec.release
        ));
        report
            .event(json!({"event": "recover", "status": "forward", "id": rec.id, "from": at + 1}));
        if rec.kind == Kind::Deploy && rec.droplets.is_empty() {
            exec.zip = Some(crate::platform::package::zip_dir(&l.app_dir)?);
        }
        exec.run(at, &replay.done).await?;
    } else {
        report.say(&format!(
            "Recovering deploy {} of release {}: rolling back from `{step}`",
            rec.id, rec.release
        ));
        report.event(json!({"event": "recover", "status": "back", "id": rec.id, "from": at + 1}));
        let what = exec.roll_back_interrupted(at).await?;
        report.say(&what);
    }
    Ok(())
}
