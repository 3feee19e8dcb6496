//! The steps of a deploy through Cloud Foundry's own deployments
//! (`plan/native.rs`): stage on the one app, migrate on the staged droplet,
//! create the deployment, and at each canary pause probe every new
//! instance through the route with gorouter's `X-CF-Process-Instance`
//! (the only way to reach one instance of a process on a foundation), then
//! `continue`; the judging is `native_judge.rs`. Undo is CF's `cancel`
//! while the deployment is active, and a deployment of the previous
//! revision once it is done; either way the app's environment is put back,
//! which CF's cancel does not do.

use super::{Executor, STAGE_TIMEOUT, Stop};
use crate::deploy::journal::Entry;
use crate::deploy::plan::native::Native;
use crate::deploy::site;
use crate::platform::deployments::{Deployment, Request};
use crate::platform::v3;
use crate::plugin::context::Color;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The one app stands where a color would.
const APP: Color = Color::Blue;
const POLL: Duration = Duration::from_millis(200);
/// The longest a deploy waits for CF to move a deployment on; CF itself
/// stops a rollout whose new instance is not healthy in its health check's
/// timeout, so this is a backstop against a foundation that never answers.
const BACKSTOP: Duration = Duration::from_secs(900);

/// What a native deploy knows of its deployment as it goes.
#[derive(Default)]
pub struct Run {
    pub deployment: Option<Deployment>,
    /// `X-CF-Process-Instance` of the new instance `health-check` plugins
    /// reach through the route.
    pub pin: Option<String>,
    /// The log-cache reads of the app's requests (`native_judge.rs`).
    pub(super) meter: Option<super::native_judge::Meter>,
}

impl Run {
    /// The deployment's new process, whose instances run the release.
    pub fn new_process(&self) -> Option<&str> {
        let d = self.deployment.as_ref()?;
        d.new_processes.first().map(|p| p.guid.as_str())
    }

    /// CF deployed at once (the app was not running), so no pauses.
    fn done_at_once(&self) -> bool {
        self.deployment
            .as_ref()
            .is_some_and(|d| !d.active() && d.status.reason == "DEPLOYED")
    }
}

impl Executor {
    /// Reads a recovered native deploy's deployment: true when CF has
    /// deployed it (the rest of the deploy carries on), false while it is
    /// active or when it ended otherwise (it is cancelled and undone).
    pub async fn deployed_natively(&mut self) -> anyhow::Result<bool> {
        let Some(guid) = self.record.deployment.clone() else {
            return Ok(false);
        };
        let d = self.site.client.deployment(&guid).await?;
        let deployed = !d.active() && d.status.reason == "DEPLOYED";
        self.native.deployment = Some(d);
        Ok(deployed)
    }

    pub(super) async fn native(&mut self, step: &Native) -> Result<(), Stop> {
        match step {
            Native::Stage => self.stage().await,
            Native::Task { command, contract } => {
                let s = crate::deploy::plan::Step::Native(step.clone());
                self.migrate(&s, APP, command, *contract).await
            }
            Native::Deployment {
                strategy,
                steps,
                max_in_flight,
            } => self.deploy_native(strategy, steps, *max_in_flight).await,
            Native::Pause {
                step,
                weight,
                timeout,
            } => self.pause(*step, *weight, *timeout).await,
            Native::Judge { .. } => self.judge_native(step).await,
            Native::Continue { step } => {
                if self.native.done_at_once() {
                    return Ok(());
                }
                let guid = self.deployment_guid()?;
                let d = self
                    .site
                    .client
                    .deployment_action(&guid, "continue")
                    .await?;
                self.report
                    .say(&format!("  continued past step {step}: {}", d.describe()));
                self.native.deployment = Some(d);
                Ok(())
            }
            Native::Rollout { timeout } => self.rollout(*timeout).await,
        }
    }

    fn deployment_guid(&self) -> Result<String, Stop> {
        self.record
            .deployment
            .clone()
            .ok_or_else(|| Stop::Failed(anyhow::anyhow!("no deployment was created")))
    }

    /// The release's services and environment on the app (what the new
    /// instances and the migration task start with; CF applies neither to
    /// running instances), then its droplet staged.
    async fn stage(&mut self) -> Result<(), Stop> {
        self.site.bind_services(APP, STAGE_TIMEOUT).await?;
        let client = self.site.client.clone();
        let app = self.site.app(APP).guid.clone();
        let mut env: BTreeMap<String, Option<String>> = self
            .file
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        env.insert(
            "BLUEGREEN_RELEASE".into(),
            Some(self.record.release.clone()),
        );
        client.set_env(&app, &env).await?;
        if let Some(cmd) = &self.file.command {
            let process = client.web_process(&app).await?;
            client
                .update_process(&process.guid, Some(cmd), None)
                .await?;
        }
        if self.record.droplets.contains_key(&APP) {
            return Ok(());
        }
        let zip = self
            .zip
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the app's bits were not prepared (internal error)"))?;
        let pkg = client.create_package(&app).await?;
        client.upload_package(&pkg.guid, zip, STAGE_TIMEOUT).await?;
        let droplet = client.stage(&pkg.guid, STAGE_TIMEOUT).await?;
        self.journal.append(&Entry::Droplet {
            color: APP,
            guid: droplet.clone(),
        })?;
        self.record.droplets.insert(APP, droplet);
        Ok(())
    }

    /// CF's deployment of the staged droplet.
    async fn deploy_native(
        &mut self,
        strategy: &str,
        steps: &[u8],
        max_in_flight: u32,
    ) -> Result<(), Stop> {
        let client = self.site.client.clone();
        let app = self.site.app(APP).guid.clone();
        if let Some(guid) = &self.record.deployment {
            // Recovered: carry on with the one created.
            self.native.deployment = Some(client.deployment(guid).await?);
            return Ok(());
        }
        let droplet = self.record.droplets[&APP].clone();
        let req = match self.record.kind {
            // As `cf rollback`: the newest revision that ran the release's
            // droplet brings its environment and commands back too.
            crate::deploy::journal::Kind::Rollback => {
                match revision_of(&client, &app, &droplet).await {
                    Some(revision) => Request::Revision {
                        revision,
                        max_in_flight,
                    },
                    None => Request::Droplet {
                        droplet,
                        steps: Vec::new(),
                        max_in_flight,
                    },
                }
            }
            _ => Request::Droplet {
                droplet,
                steps: steps.to_vec(),
                max_in_flight,
            },
        };
        let d = client.create_deployment(&app, &req, strategy).await?;
        self.journal.append(&Entry::Deployment {
            guid: d.guid.clone(),
        })?;
        self.record.deployment = Some(d.guid.clone());
        self.report.say(&format!(
            "  Cloud Foundry {strategy} deployment {}: {}",
            d.guid,
            d.describe()
        ));
        self.report.event(serde_json::json!({
            "event": "deployment", "guid": d.guid, "strategy": strategy,
            "status": d.status,
        }));
        self.native.deployment = Some(d);
        Ok(())
    }

    /// Polls the deployment until `done` says it reached what the step
    /// waits for (`Some(true)`), or CF ended or stopped it (an error).
    async fn await_deployment(
        &mut self,
        what: &str,
        done: impl Fn(&Deployment) -> bool,
    ) -> Result<Deployment, Stop> {
        let guid = self.deployment_guid()?;
        let deadline = Instant::now() + BACKSTOP;
        loop {
            let d = self.site.client.deployment(&guid).await?;
            self.native.deployment = Some(d.clone());
            if done(&d) {
                return Ok(d);
            }
            if let Some(e) = &d.status.details.error {
                return Err(Stop::Failed(anyhow::anyhow!(
                    "Cloud Foundry stopped the deployment before {what}: {}",
                    crate::output::printable(e)
                )));
            }
            if !d.active() {
                return Err(Stop::Failed(anyhow::anyhow!(
                    "the deployment ended before {what}: {}",
                    d.describe()
                )));
            }
            if Instant::now() >= deadline {
                return Err(Stop::Failed(anyhow::anyhow!(
                    "the deployment did not reach {what} within {}: {}",
                    crate::units::human_duration(BACKSTOP),
                    d.describe()
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Until CF pauses at `step`, then each new instance healthy through
    /// the route, pinned to it.
    async fn pause(&mut self, step: u32, weight: u8, timeout: Duration) -> Result<(), Stop> {
        if self.native.done_at_once() {
            self.report.say(
                "  the app was not running, so CF started it on the new droplet at once: no \
                 canary pauses",
            );
            return Ok(());
        }
        let what = format!("canary step {step}");
        self.await_deployment(&what, |d| d.paused() && d.step() == Some(step))
            .await?;
        let instances = self
            .site
            .client
            .web_process(&self.site.app(APP).guid)
            .await?;
        let new = canary_instances(instances.instances, weight);
        self.check_new_instances(new, timeout).await
    }

    /// Probes instances `0..count` of the new process until each is
    /// healthy; the first is what `health-check` plugins reach.
    async fn check_new_instances(&mut self, count: u32, timeout: Duration) -> Result<(), Stop> {
        let process = match self.native.new_process() {
            Some(p) => p.to_string(),
            // CF started a stopped app on the droplet: its web process.
            None => {
                let app = &self.site.app(APP).guid;
                self.site.client.web_process(app).await?.guid
            }
        };
        let deadline = Instant::now() + timeout;
        let url = self.site.route_url.clone();
        for i in 0..count.max(1) {
            let pin = format!("{process}:{i}");
            let client =
                crate::deploy::health::pinned_client(self.file.health.request_timeout, &pin);
            crate::deploy::health::probe_with(&client, &url, &self.file.health, deadline)
                .await
                .map_err(|e| {
                    Stop::Failed(anyhow::anyhow!(
                        "new instance {i} (X-CF-Process-Instance: {pin}): {e}"
                    ))
                })?;
        }
        self.report.say(&format!(
            "  {} healthy through the route, each reached alone (X-CF-Process-Instance)",
            plural(count.max(1))
        ));
        self.candidates.insert(APP, url);
        self.health_deadline.insert(APP, deadline);
        self.native.pin = Some(format!("{process}:0"));
        Ok(())
    }

    /// Until CF says DEPLOYED; then the app carries the release's
    /// annotations, and its instances are checked once more.
    async fn rollout(&mut self, timeout: Duration) -> Result<(), Stop> {
        self.await_deployment("DEPLOYED", |d| !d.active() && d.status.reason == "DEPLOYED")
            .await?;
        let client = self.site.client.clone();
        let app = self.site.app(APP).guid.clone();
        let before = self.record.before[&APP].clone();
        let mut meta = v3::Metadata::default();
        let now = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        meta.annotations
            .insert(site::RELEASE.into(), Some(self.record.release.clone()));
        meta.annotations.insert(site::DEPLOYED_AT.into(), Some(now));
        meta.annotations
            .insert(site::PREVIOUS_RELEASE.into(), before.release.clone());
        meta.annotations
            .insert(site::PREVIOUS_DROPLET.into(), before.droplet.clone());
        client.set_metadata(&app, &meta).await?;
        let instances = client.web_process(&app).await?.instances;
        self.check_new_instances(instances, timeout).await
    }
}

/// The newest deployable revision of `app` that ran `droplet`.
pub(super) async fn revision_of(
    client: &crate::platform::client::CfClient,
    app: &str,
    droplet: &str,
) -> Option<String> {
    let revisions = client.revisions(app).await.ok()?;
    revisions
        .into_iter()
        .rev()
        .find(|r| {
            r.deployable && r.droplet.as_ref().and_then(|d| d.guid.as_deref()) == Some(droplet)
        })
        .map(|r| r.guid)
}

/// CC's canary step plan: the new instances at `weight` percent of
/// `instances` (at least one).
pub fn canary_instances(instances: u32, weight: u8) -> u32 {
    ((f64::from(instances) * f64::from(weight) / 100.0).round() as u32).max(1)
}

fn plural(n: u32) -> String {
    if n == 1 {
        "1 new instance".into()
    } else {
        format!("{n} new instances")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canary_step_runs_its_share_of_instances_and_never_none() {
        assert_eq!(canary_instances(4, 50), 2);
        assert_eq!(canary_instances(4, 20), 1);
        assert_eq!(canary_instances(1, 10), 1);
        assert_eq!(canary_instances(10, 25), 3);
        assert_eq!(canary_instances(3, 100), 3);
    }
}
