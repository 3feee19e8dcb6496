//! Cloud Foundry's deployments as records, by Cloud Controller's rules
//! (`DeploymentCreate`, `DeploymentContinue`, `DeploymentCancel` in
//! cloud_controller_ng): a create points the app at the new droplet at
//! once (with a revision's environment and commands), records a revision,
//! supersedes the app's active deployment and leaves the instances to the
//! rollout (`rollout.rs`); continue and cancel only change the state the
//! rollout acts on. A CF client polls these records and acts on their
//! status, so they move through CC's states and no others.
//!
//! A daemon restart stops every app and starts it on its current droplet,
//! which would turn a paused canary into a full rollout nobody approved:
//! so a deployment still active at the restart is canceled (the app goes
//! back to its previous droplet, the record says why).

use super::super::deployment_message::CreateDeployment;
use super::super::records::*;
use super::revisions::{rollback_app_revision, update_app_revision};
use super::{ApiErr, ApiResult, Platform, Tx};

pub const ACTIVE: &str = "ACTIVE";
pub const FINALIZED: &str = "FINALIZED";

/// CC's words when a droplet cannot become the app's current one.
const UNASSIGNABLE: &str =
    "Unable to assign current droplet. Ensure the droplet exists and belongs to this app.";

impl DeploymentRec {
    pub fn is_active(&self) -> bool {
        self.status_value == ACTIVE
    }

    /// CC's `cancelable?`: every active state.
    pub fn cancelable(&self) -> bool {
        matches!(
            self.state.as_str(),
            "DEPLOYING" | "PREPAUSED" | "PAUSED" | "CANCELING"
        )
    }

    pub fn continuable(&self) -> bool {
        self.state == "PAUSED"
    }

    /// The web instances the deployment ends with.
    pub fn desired_instances(&self) -> u32 {
        self.web_instances.unwrap_or(self.original_instances)
    }

    /// Moves to CC state `state` with status `value`/`reason` (the time of
    /// the last status change kept as CC keeps it).
    pub fn set_status(&mut self, state: &str, value: &str, reason: &str) {
        let now = now();
        if self.status_value != value || self.status_reason != reason {
            self.status_changed_at = now.clone();
        }
        self.state = state.into();
        self.status_value = value.into();
        self.status_reason = reason.into();
        self.updated_at = now;
    }
}

impl Platform {
    /// `POST /v3/deployments`: the record, and whether the app was started
    /// (a stopped app is simply started on the new droplet, as CC does,
    /// and its deployment is DEPLOYED at once).
    pub fn create_deployment(&self, m: CreateDeployment) -> ApiResult<(DeploymentRec, bool)> {
        self.transaction(|tx| {
            let unable = || {
                ApiErr::unprocessable(
                    "Unable to use app. Ensure that the app exists and you have access to it."
                        .into(),
                )
            };
            let app_guid = m.app_guid.as_deref().ok_or_else(unable)?;
            let mut app: AppRec = tx.find(APP, app_guid)?.ok_or_else(unable)?;
            let target: Option<RevisionRec> =
                match &m.revision {
                    Some(g) => Some(tx.find(REVISION, g)?.ok_or_else(|| {
                        ApiErr::unprocessable("The revision does not exist".into())
                    })?),
                    None => None,
                };
            let droplet = target_droplet(tx, &app, &m, target.as_ref())?;
            let previous_droplet = app.current_droplet.replace(droplet.clone());
            if let Some(t) = &target {
                app.env = t.env.clone();
                for p in std::iter::once(&mut app.process).chain(app.others.iter_mut()) {
                    if let Some(command) = t.commands.get(&p.kind) {
                        p.command = command.clone();
                    }
                }
            }
            let revision = match &target {
                Some(t) => Some(rollback_app_revision(tx, &app, t)?),
                None => update_app_revision(tx, &app)?,
            };
            let previous = active_of(tx, app_guid)?;
            let original_instances = previous
                .as_ref()
                .map_or(app.process.instances, |p| p.original_instances);
            let original_memory_in_mb = previous
                .as_ref()
                .map_or(app.process.memory_in_mb, |p| p.original_memory_in_mb);
            if let Some(mut p) = previous {
                let state = if p.state == "DEPLOYING" {
                    "DEPLOYED"
                } else {
                    "CANCELED"
                };
                p.set_status(state, FINALIZED, "SUPERSEDED");
                tx.put(DEPLOYMENT, &p.guid, &p)?;
            }
            if let Some(n) = m.web_instances {
                app.process.instances = n;
            }
            if m.memory_in_mb.is_some() {
                app.process.memory_in_mb = m.memory_in_mb;
            }
            let started = app.app.state == "STARTED";
            let canary = m.strategy == "canary";
            let now = now();
            let mut d = DeploymentRec {
                guid: new_guid(),
                app_guid: app_guid.to_string(),
                state: if canary { "PREPAUSED" } else { "DEPLOYING" }.into(),
                status_value: ACTIVE.into(),
                status_reason: "DEPLOYING".into(),
                error: None,
                strategy: m.strategy,
                max_in_flight: m.max_in_flight,
                canary_steps: m.canary_steps,
                canary_current_step: canary.then_some(1),
                web_instances: m.web_instances,
                memory_in_mb: m.memory_in_mb,
                original_instances,
                original_memory_in_mb,
                droplet,
                previous_droplet,
                revision: revision.map(|r| RevisionRef {
                    guid: r.guid,
                    version: r.version,
                }),
                new_process: started,
                metadata: m.metadata,
                created_at: now.clone(),
                updated_at: now.clone(),
                last_healthy_at: now.clone(),
                status_changed_at: now,
            };
            if !started {
                d.set_status("DEPLOYED", FINALIZED, "DEPLOYED");
            }
            tx.put(APP, app_guid, &app)?;
            tx.put(DEPLOYMENT, &d.guid, &d)?;
            Ok((d, started))
        })
    }

    /// `POST /v3/deployments/:guid/actions/continue`: a paused canary goes
    /// on to its next step, or after its last to the rest of the rollout.
    pub fn continue_deployment(&self, guid: &str) -> ApiResult<DeploymentRec> {
        self.update(DEPLOYMENT, guid, |d: &mut DeploymentRec| {
            if !d.continuable() {
                return Err(invalid("continue", d));
            }
            let steps = d.canary_steps.as_ref().map_or(0, Vec::len) as u32;
            match d.canary_current_step {
                Some(current) if current < steps => {
                    d.canary_current_step = Some(current + 1);
                    d.set_status("PREPAUSED", ACTIVE, "DEPLOYING");
                }
                _ => d.set_status("DEPLOYING", ACTIVE, "DEPLOYING"),
            }
            d.error = None;
            Ok(d.clone())
        })
    }

    /// `POST /v3/deployments/:guid/actions/cancel`: the app's current
    /// droplet and web instance count go back to what they were; the
    /// rollout then brings the instances back (CANCELING, then CANCELED).
    /// As on CF, the environment stays as it is.
    pub fn cancel_deployment(&self, guid: &str) -> ApiResult<DeploymentRec> {
        self.transaction(|tx| {
            let mut d: DeploymentRec = tx.get(DEPLOYMENT, guid)?;
            if !d.cancelable() {
                return Err(invalid("cancel", &d));
            }
            restore_app(tx, &d)?;
            d.set_status("CANCELING", ACTIVE, "CANCELING");
            d.error = None;
            tx.put(DEPLOYMENT, guid, &d)?;
            Ok(d)
        })
    }

    /// At a daemon start, before the apps start: every deployment still
    /// active is canceled outright (see the top of this file). Returns the
    /// names of the apps it put back.
    pub fn cancel_interrupted_deployments(&self) -> ApiResult<Vec<String>> {
        self.transaction(|tx| {
            let mut names = Vec::new();
            for mut d in tx.all::<DeploymentRec>(DEPLOYMENT)? {
                if !d.is_active() {
                    continue;
                }
                let back = match restore_app(tx, &d) {
                    Ok(app) => {
                        names.push(app.app.name);
                        "the app started on its previous droplet"
                    }
                    Err(_) => "its previous droplet is gone, so the app started on this one",
                };
                d.set_status("CANCELED", FINALIZED, "CANCELED");
                d.error = Some(format!(
                    "The local platform restarted during this deployment: it was canceled and \
                     {back}"
                ));
                tx.put(DEPLOYMENT, &d.guid, &d)?;
            }
            Ok(names)
        })
    }

    /// The app's active deployment, if any.
    pub fn active_deployment(&self, app_guid: &str) -> ApiResult<Option<DeploymentRec>> {
        self.transaction(|tx| active_of(tx, app_guid))
    }
}

fn active_of(tx: &Tx, app_guid: &str) -> ApiResult<Option<DeploymentRec>> {
    Ok(tx
        .all::<DeploymentRec>(DEPLOYMENT)?
        .into_iter()
        .rfind(|d| d.app_guid == app_guid && d.is_active()))
}

/// CC's refusal of an action the deployment's status does not allow.
fn invalid(action: &str, d: &DeploymentRec) -> ApiErr {
    ApiErr::unprocessable(format!(
        "Cannot {action} a deployment with status: {} and reason: {}",
        d.status_value, d.status_reason
    ))
}

/// The droplet a create deploys (CC's `DeploymentTargetState`): the
/// revision's, the one named, or the app's current one.
fn target_droplet(
    tx: &Tx,
    app: &AppRec,
    m: &CreateDeployment,
    target: Option<&RevisionRec>,
) -> ApiResult<String> {
    let found: Option<DropletRec> = if let Some(t) = target {
        let d: Option<DropletRec> = tx.find(DROPLET, &t.droplet)?;
        Some(d.filter(|d| d.droplet.state == "STAGED").ok_or_else(|| {
            ApiErr::unprocessable(
                "Unable to deploy this revision, the droplet for this revision no longer exists."
                    .into(),
            )
        })?)
    } else if let Some(g) = &m.droplet {
        tx.find(DROPLET, g)?
    } else {
        let current = app.current_droplet.as_deref().ok_or_else(|| {
            ApiErr::unprocessable(
                "Invalid droplet. Please specify a droplet in the request or set a current \
                 droplet for the app."
                    .into(),
            )
        })?;
        tx.find(DROPLET, current)?
    };
    match found {
        Some(d) if d.app_guid == app.app.guid => Ok(d.droplet.guid),
        _ => Err(ApiErr::unprocessable(UNASSIGNABLE.into())),
    }
}

/// Puts the app back on the deployment's previous droplet, with the web
/// instances and memory it had.
fn restore_app(tx: &Tx, d: &DeploymentRec) -> ApiResult<AppRec> {
    let mut app: AppRec = tx.get(APP, &d.app_guid)?;
    let previous = d
        .previous_droplet
        .as_deref()
        .ok_or_else(|| ApiErr::unprocessable(UNASSIGNABLE.into()))?;
    match tx.find::<DropletRec>(DROPLET, previous)? {
        Some(p) if p.app_guid == d.app_guid => {}
        _ => return Err(ApiErr::unprocessable(UNASSIGNABLE.into())),
    }
    app.current_droplet = Some(previous.to_string());
    app.process.instances = d.original_instances;
    app.process.memory_in_mb = d.original_memory_in_mb;
    tx.put(APP, &d.app_guid, &app)?;
    Ok(app)
}
