//! Undoing a native deploy: while CF's deployment is active, its `cancel`
//! (the old instances, on the previous droplet, take the app back); once
//! it is deployed, a rolling deployment of the revision that ran before
//! (`cf rollback`), or of its droplet where the foundation keeps no
//! revisions; for an app that ran nothing before, a stop. CF restores
//! neither the environment nor the annotations: both are put back here.

use super::Executor;
use crate::deploy::site;
use crate::platform::deployments::{Deployment, Request};
use crate::platform::v3;
use crate::plugin::context::Color;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const APP: Color = Color::Blue;
const POLL: Duration = Duration::from_millis(200);
/// A cancel or a redeploy of the previous release waits this long at most.
const UNDO_TIMEOUT: Duration = Duration::from_secs(600);

impl Executor {
    /// Puts the app back as it was before this deploy; says what happened.
    pub async fn native_undo(&mut self) -> String {
        match self.try_native_undo().await {
            Ok(what) => what,
            Err(e) => format!(
                "could not roll the app back: {e:#}; run `bluegreen recover`, or `cf cancel-deployment {}`",
                self.site.app(APP).name
            ),
        }
    }

    async fn try_native_undo(&mut self) -> anyhow::Result<String> {
        let t = Instant::now();
        let client = self.site.client.clone();
        let app = self.site.app(APP).clone();
        let before = self.record.before[&APP].clone();
        let d = match self.record.deployment.clone() {
            Some(guid) => Some(client.deployment(&guid).await?),
            None => None,
        };
        let what = if let Some(d) = d.as_ref().filter(|d| d.active()) {
            let guid = &d.guid;
            client.deployment_action(guid, "cancel").await?;
            let end = self.until_final(guid).await?;
            format!(
                "canceled CF's deployment ({}): the old instances serve the previous droplet",
                end.describe()
            )
        } else if d.as_ref().is_some_and(|d| d.status.reason == "DEPLOYED") {
            match &before.droplet {
                None => {
                    client.app_action(&app.guid, "stop").await?;
                    "stopped the app: it ran no release before this one".into()
                }
                Some(old) => self.redeploy(&app.guid, old).await?,
            }
        } else if let Some(d) = d {
            format!("the deployment had ended: {}", d.describe())
        } else {
            "no deployment was created: the old instances never stopped serving".into()
        };
        // CF's cancel keeps the new environment; the old one comes back.
        if let Some(env) = &before.env {
            let now = client.get_env(&app.guid).await?;
            let vars: BTreeMap<String, Option<String>> = now
                .keys()
                .map(|k| (k.clone(), None))
                .chain(env.iter().map(|(k, v)| (k.clone(), Some(v.clone()))))
                .collect();
            client.set_env(&app.guid, &vars).await?;
        }
        let mut meta = v3::Metadata::default();
        meta.annotations
            .insert(site::RELEASE.into(), before.release.clone());
        meta.annotations
            .insert(site::DEPLOYED_AT.into(), before.deployed_at.clone());
        client.set_metadata(&app.guid, &meta).await?;
        Ok(format!(
            "{what}; its environment is the old release's again ({:.1}s)",
            t.elapsed().as_secs_f64()
        ))
    }

    /// A rolling deployment back to `droplet`: by the newest revision that
    /// ran it (its environment and commands too), else the droplet alone.
    async fn redeploy(&mut self, app: &str, droplet: &str) -> anyhow::Result<String> {
        let client = self.site.client.clone();
        let max_in_flight = self.file.max_in_flight.unwrap_or(1);
        let (req, how) = match super::native::revision_of(&client, app, droplet).await {
            Some(revision) => (
                Request::Revision {
                    revision,
                    max_in_flight,
                },
                "its revision".to_string(),
            ),
            None => (
                Request::Droplet {
                    droplet: droplet.into(),
                    steps: Vec::new(),
                    max_in_flight,
                },
                "its droplet (no revision kept it)".into(),
            ),
        };
        let back = client.create_deployment(app, &req, "rolling").await?;
        let end = self.until_final(&back.guid).await?;
        anyhow::ensure!(
            end.status.reason == "DEPLOYED",
            "the deployment back to the previous release ended {}",
            end.describe()
        );
        Ok(format!(
            "the new release was deployed already: deployed the previous one again from {how}"
        ))
    }

    /// Polls `guid` until CF finalizes it.
    async fn until_final(&self, guid: &str) -> anyhow::Result<Deployment> {
        let deadline = Instant::now() + UNDO_TIMEOUT;
        loop {
            let d = self.site.client.deployment(guid).await?;
            if !d.active() {
                return Ok(d);
            }
            if let Some(e) = &d.status.details.error {
                anyhow::bail!(
                    "Cloud Foundry stopped deployment {guid}: {}",
                    crate::output::printable(e)
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "deployment {guid} was still {} after {}",
                d.describe(),
                crate::units::human_duration(UNDO_TIMEOUT)
            );
            tokio::time::sleep(POLL).await;
        }
    }
}
