//! The rollout of a deployment: what Cloud Controller's deployment updater
//! and Diego do on a foundation, done here against the supervisor. The
//! app's web instances are one set, each on its own droplet; a deployment
//! brings up instances of its own generation (`RunSpec::generation`)
//! beside the old ones and replaces them by CC's rule (`Actions::Scale`):
//! at most `max_in_flight` new instances starting at once, none while one
//! is unhealthy, and an old instance stopped only for a new one that is
//! running and has passed its health check, so the router, which spreads
//! requests over every running instance, always has the app's count of
//! them to send to. A canary scales to its step's counts (CC's plan) and
//! pauses; a cancel is the same rollout back to the previous droplet.
//!
//! One task per app drives its active deployment (`kick`), re-reading the
//! record every tick, so a continue, a cancel or a superseding deployment
//! takes effect at the next tick. Every wait is bounded: a new instance
//! that has not passed its health check within the web process's health
//! check `timeout` (CF's default, 60 s, when unset) stops the rollout with
//! `status.details.error`, the deployment left ACTIVE as CF leaves it, the
//! old instances untouched; a cancel or a new deployment moves it on.

use super::api::blocking;
use super::records::*;
use super::state::{ApiResult, Platform};
use super::supervisor::{Member, RunSpec, State};

mod scale;

use scale::{Goal, canary_plan, plan};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(100);
/// How long an instance is off the router before it stops.
const DRAIN: Duration = Duration::from_millis(500);
/// CF's health check timeout when the process sets none.
const HEALTH_TIMEOUT: u64 = 60;

/// Which apps have a rollout task, and how often each was asked to look.
#[derive(Default)]
pub struct Rollouts(Mutex<HashMap<String, Slot>>);

#[derive(Default)]
struct Slot {
    running: bool,
    kicks: u64,
}

/// Has `app_guid`'s active deployment driven: starts its task unless one
/// runs, which then looks again before it ends.
pub fn kick(p: &Arc<Platform>, app_guid: &str) {
    let mut slots = p.rollouts.0.lock().unwrap();
    let slot = slots.entry(app_guid.to_string()).or_default();
    slot.kicks += 1;
    if std::mem::replace(&mut slot.running, true) {
        return;
    }
    tokio::spawn(drive(p.clone(), app_guid.to_string()));
}

/// Ends the slot's run even if the task panics.
struct Running(Arc<Platform>, String);

impl Drop for Running {
    fn drop(&mut self) {
        let mut slots = self.0.rollouts.0.lock().unwrap();
        if let Some(slot) = slots.get_mut(&self.1) {
            slot.running = false;
        }
    }
}

async fn drive(p: Arc<Platform>, app: String) {
    let _running = Running(p.clone(), app.clone());
    let mut late = Late::default();
    loop {
        let seen = p.rollouts.0.lock().unwrap()[&app].kicks;
        match tick(&p, &app, &mut late).await {
            Ok(true) => tokio::time::sleep(TICK).await,
            // Nothing to do now (or the store failed): end, unless asked to
            // look again meanwhile.
            Ok(false) | Err(_) => {
                let slots = p.rollouts.0.lock().unwrap();
                if slots[&app].kicks == seen {
                    return;
                }
            }
        }
    }
}

/// When each new instance was first seen not running, for the bound.
#[derive(Default)]
struct Late(HashMap<String, Instant>);

/// One step of the app's active deployment; whether there is more to do.
async fn tick(p: &Arc<Platform>, app: &str, late: &mut Late) -> ApiResult<bool> {
    let guid = app.to_string();
    let (rec, d) = blocking(p, move |p| {
        let rec: Option<AppRec> = p.transaction(|tx| tx.find(APP, &guid))?;
        Ok((rec, p.active_deployment(&guid)?))
    })
    .await?;
    let (Some(rec), Some(d)) = (rec, d) else {
        return Ok(false);
    };
    if rec.app.state != "STARTED" || d.error.is_some() {
        return Ok(false);
    }
    let Some(goal) = goal(&d) else {
        return Ok(false);
    };
    let canceling = d.state == "CANCELING";
    let previous = d.previous_droplet.clone().unwrap_or_default();
    let is_new = |m: &Member| match canceling {
        false => m.generation == d.guid,
        true => m.generation != d.guid && m.droplet == previous,
    };
    let members: Vec<(Member, bool)> = p
        .supervisor
        .members(app, "web")
        .into_iter()
        .map(|m| {
            let new = is_new(&m);
            (m, new)
        })
        .collect();
    let timeout = Duration::from_secs(
        rec.process
            .health_check
            .data
            .timeout
            .unwrap_or(HEALTH_TIMEOUT),
    );
    late.0
        .retain(|k, _| members.iter().any(|(m, new)| *new && &m.key == k));
    for (m, _) in members.iter().filter(|(_, new)| *new) {
        if m.state == State::Running {
            late.0.remove(&m.key);
            continue;
        }
        let since = *late.0.entry(m.key.clone()).or_insert_with(Instant::now);
        if since.elapsed() > timeout {
            let what = if canceling { "Restored" } else { "New" };
            let error = format!(
                "{what} instance {} did not pass its {} health check within {}s",
                m.index,
                rec.process.health_check.kind,
                timeout.as_secs()
            );
            record(p, &d, move |d| d.error = Some(error)).await?;
            return Ok(false);
        }
    }
    let step = plan(&goal, &members);
    p.supervisor.retire(&step.stop, DRAIN).await;
    if step.finished {
        finish(p, &d, &rec).await?;
        return Ok(true);
    }
    if !step.start.is_empty() {
        // Read again: an app deleted since the tick began gets no instance.
        let guid = app.to_string();
        let spec = blocking(p, move |p| p.web_spec(&p.app(&guid)?)).await?;
        let generation = match canceling {
            false => d.guid.clone(),
            true => format!("{}-cancel", d.guid),
        };
        for index in step.start {
            p.supervisor.start(RunSpec {
                index,
                generation: generation.clone(),
                ..spec.clone()
            });
        }
        record(p, &d, |d| d.last_healthy_at = now()).await?;
    }
    Ok(true)
}

/// The deployment's step done: a canary pauses, a rollout is DEPLOYED
/// (the app's other processes restarted on the new droplet, as CC does),
/// a cancel CANCELED.
async fn finish(p: &Arc<Platform>, d: &DeploymentRec, rec: &AppRec) -> ApiResult<()> {
    use super::state::{ACTIVE, FINALIZED};
    let (state, value, reason) = match d.state.as_str() {
        "PREPAUSED" => ("PAUSED", ACTIVE, "PAUSED"),
        "DEPLOYING" => {
            for other in rec.others.iter().filter(|o| o.instances > 0) {
                p.restart_kind(&rec.app.guid, &other.kind).await?;
            }
            ("DEPLOYED", FINALIZED, "DEPLOYED")
        }
        _ => ("CANCELED", FINALIZED, "CANCELED"),
    };
    record(p, d, move |d| {
        d.set_status(state, value, reason);
        d.last_healthy_at = now();
    })
    .await
}

/// Changes the deployment's record unless it moved on meanwhile (a
/// continue, a cancel, a superseding deployment): they win.
async fn record(
    p: &Arc<Platform>,
    d: &DeploymentRec,
    change: impl FnOnce(&mut DeploymentRec) + Send + 'static,
) -> ApiResult<()> {
    let (guid, state) = (d.guid.clone(), d.state.clone());
    blocking(p, move |p| {
        p.update(DEPLOYMENT, &guid, |d: &mut DeploymentRec| {
            if d.state == state && d.is_active() {
                change(d);
            }
            Ok(())
        })
    })
    .await
}

fn goal(d: &DeploymentRec) -> Option<Goal> {
    let n = d.desired_instances();
    Some(match d.state.as_str() {
        "DEPLOYING" => Goal {
            total: n,
            interim: n,
            max_in_flight: d.max_in_flight,
            final_step: true,
        },
        "PREPAUSED" => {
            let plan = canary_plan(
                d.canary_steps.as_deref(),
                d.original_instances,
                d.web_instances,
            );
            let step = d.canary_current_step.unwrap_or(1).max(1) as usize;
            let (canary, original) = *plan.get(step - 1).or(plan.last())?;
            Goal {
                total: canary + original,
                interim: canary,
                max_in_flight: d.max_in_flight,
                final_step: false,
            }
        }
        // A cancel brings the old count back at once, then stops the rest.
        "CANCELING" => Goal {
            total: d.original_instances,
            interim: d.original_instances,
            max_in_flight: d.original_instances.max(1),
            final_step: true,
        },
        _ => return None,
    })
}
