//! Undoing: after a failed or vetoed step the color in flight goes back to
//! the droplet it ran before and onto the route, then a color that had
//! already switched to the new release goes back too, so one release serves
//! the route. The history records what happened and the lock is released.

use super::{DeployError, Executor, Stop, chain};
use crate::deploy::journal::{HistoryEntry, Kind, Outcome};
use crate::deploy::plan::Step;
use crate::deploy::site;
use crate::platform::v3;
use crate::plugin::Hook;
use crate::plugin::context::{Color, FailureInfo};
use std::collections::BTreeMap;
use std::time::Instant;

impl Executor {
    /// After a failed or vetoed step: put the color in flight back, run the
    /// on-failure hooks, record, unlock.
    pub(super) async fn stop(mut self, step: &Step, stop: Stop) -> anyhow::Error {
        let (what, blocked) = match &stop {
            Stop::Blocked(why) => (format!("deploy blocked: {why}"), true),
            Stop::Failed(e) => (format!("deploy failed at `{step}`: {}", chain(e)), false),
            Stop::Interrupted(s) => (
                format!("deploy interrupted ({}) at `{step}`", s.name()),
                false,
            ),
        };
        let interrupted = match stop {
            Stop::Interrupted(s) => Some(s),
            _ => None,
        };
        let mut aftermath = Vec::new();
        if matches!(step, Step::Migrate { contract: true, .. }) {
            if let Some(s) = interrupted {
                self.announce_interrupt(s, "both colors serve the new release; its contract migration is left to the next deploy");
            }
            aftermath.push(
                "both colors serve the new release; the contract migration did not finish (fix it and deploy again)".into(),
            );
        } else if matches!(
            step,
            Step::Hook {
                hook: Hook::PostDeploy,
                ..
            }
        ) {
            if let Some(s) = interrupted {
                self.announce_interrupt(s, "the deploy had finished, nothing is rolled back");
            }
            aftermath.push("the deploy itself had finished; nothing was rolled back, and the history records the release as serving".into());
        } else if self.site.mode == site::Mode::Native {
            if let Some(s) = interrupted {
                self.announce_interrupt(s, "rolling the app back through CF's deployment");
            }
            aftermath.push(self.native_undo().await);
        } else {
            // A watch step names the old color it judged; the color in
            // flight then is the other one, pushed and not yet mapped.
            let in_flight = match step {
                Step::Watch { color, .. } => Some(color.other()),
                _ => step.color(),
            }
            .filter(|c| self.touched.contains(c));
            if let Some(s) = interrupted {
                self.announce_undo(s, in_flight);
            }
            if let Some(c) = in_flight {
                aftermath.push(self.restore(c).await);
            }
            for c in self.switched.clone() {
                if Some(c) != in_flight {
                    aftermath.push(self.bring_back(c).await);
                }
            }
            if aftermath.is_empty() {
                aftermath.push("nothing on the route changed".into());
            }
        }
        let failure = FailureInfo {
            step: step.kind().into(),
            color: step.color(),
            message: what.clone(),
        };
        aftermath.extend(self.on_failure(failure).await);
        // Past post-deploy nothing is undone: the release serves, its
        // migrations ran. The history says so (done, with the block as its
        // message), so it agrees with `status` and the next deploy does not
        // send those migrations again. The exit code still reports the block.
        let finished = matches!(
            step,
            Step::Hook {
                hook: Hook::PostDeploy,
                ..
            }
        );
        let outcome = if finished {
            Outcome::Done
        } else if blocked {
            Outcome::Blocked
        } else if interrupted.is_some() {
            Outcome::Interrupted
        } else {
            Outcome::Failed
        };
        let summary = self.summary(outcome, Some(what.clone()));
        if let Err(e) = crate::deploy::journal::append_history(self.journal.dir(), &summary) {
            aftermath.push(format!("could not record the history: {e:#}"));
        }
        if let Some(lock) = self.lock.take()
            && let Err(e) = lock.release().await
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
        match interrupted {
            Some(signal) => DeployError::Interrupted {
                signal,
                what,
                aftermath,
            }
            .into(),
            None if blocked => DeployError::Blocked { what, aftermath }.into(),
            None => DeployError::Failed { what, aftermath }.into(),
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
        let restored = match self.site.mode {
            site::Mode::Native => self.native_undo().await,
            _ => self.restore(first).await,
        };
        let what = format!("interrupted at `{step}`; recover rolled it back: {restored}");
        let summary = self.summary(Outcome::Failed, Some(what.clone()));
        crate::deploy::journal::append_history(self.journal.dir(), &summary)?;
        if let Some(lock) = self.lock.take() {
            lock.release().await?;
        }
        self.journal.close()?;
        Ok(what)
    }

    /// Puts `color` back on the droplet it ran before this deploy, checks it
    /// and maps it. Returns what happened, for the summary.
    pub async fn restore(&mut self, color: Color) -> String {
        if self.standby_mode() && !self.record.before[&color].mapped {
            return self.park(color).await;
        }
        match self.try_restore(color).await {
            Ok(done) => done,
            Err(e) => {
                // Never leave a color we could not check on the route: the
                // other one serves, if it is there.
                let off = self.take_off_route(color).await;
                format!("{color} could not be restored ({}); {off}", chain(&e),)
            }
        }
    }

    /// Takes `color`, already serving the new release, back to its earlier
    /// one, while the other color (back on its own earlier release) serves.
    /// Without an earlier release, or with the other color off the route,
    /// it keeps serving the new one: an empty route is worse.
    async fn bring_back(&mut self, color: Color) -> String {
        let other = color.other();
        let why = if self.record.before[&color].droplet.is_none() {
            Some(format!("{color} had no earlier release"))
        } else if !self.site.mapped(other).await.unwrap_or(false) {
            Some(format!("{other} is not on the route to serve meanwhile"))
        } else {
            None
        };
        if let Some(why) = why {
            self.forward.insert(color);
            return format!(
                "{color} keeps serving release {}: {why}",
                self.record.release
            );
        }
        format!(
            "{} (so one release serves the route)",
            self.restore(color).await
        )
    }

    /// Unmaps `color` when the other color is on the route; says what it
    /// did, and whether the other color serves (mapped, running, answering
    /// its health check) rather than assuming it does.
    pub(super) async fn take_off_route(&self, color: Color) -> String {
        let other = color.other();
        let other_mapped = self.site.mapped(other).await.unwrap_or(false);
        let mapped = self.site.mapped(color).await.unwrap_or(true);
        if mapped && !other_mapped {
            return format!("it stays on the route: {other} is not on it to take over");
        }
        let serving = self.site.serves_now(other, &self.file.health).await;
        let done = if !mapped {
            "it stays off the route".to_string()
        } else {
            match self
                .site
                .client
                .unmap_route(&self.site.route.guid, &self.site.app(color).guid)
                .await
            {
                Ok(()) => "it was taken off the route".to_string(),
                Err(e) => return format!("taking it off the route failed too: {e}"),
            }
        };
        match serving {
            Ok(()) => format!("{done} while {other} serves"),
            Err(why) => format!(
                "{done}, and {why}: the route has no healthy color to serve it. \
                 See why with `bluegreen status` and `bluegreen logs`, then deploy a release \
                 that starts (or `bluegreen rollback --to` one that did)"
            ),
        }
    }

    pub(super) async fn try_restore(&mut self, color: Color) -> anyhow::Result<String> {
        let t = Instant::now();
        let client = self.site.client.clone();
        let app = self.site.app(color).clone();
        let before = self.record.before[&color].clone();
        // A Cloud Foundry canary ran the first color at a step's instance
        // count: back to its own before the manifest's scale rule reads it.
        if color == self.record.order[0]
            && let Some(n) = self.canary_instances.take()
        {
            let process = client.web_process(&app.guid).await?;
            client.scale_process(&process.guid, n).await?;
        }
        let Some(droplet) = before.droplet.clone() else {
            // Off the route, and done with what it answers, before it stops:
            // a pushed app or the other color may serve the route meanwhile.
            if self.site.mapped(color).await? {
                client.unmap_route(&self.site.route.guid, &app.guid).await?;
                self.drain(color, self.file.drain, "stops")
                    .await
                    .map_err(Stop::into_error)?;
            }
            client.app_action(&app.guid, "stop").await?;
            return Ok(format!(
                "{color} had no earlier release: stopped and left off the route"
            ));
        };
        // A color that is restarted on its old bits must not take traffic
        // until it has been checked: off the route first, if the other
        // color serves.
        if self.site.mapped(color.other()).await? && self.site.mapped(color).await? {
            client.unmap_route(&self.site.route.guid, &app.guid).await?;
            // Requests it is still serving finish before the restart.
            self.drain(color, self.file.drain, "restarts")
                .await
                .map_err(Stop::into_error)?;
        }
        let current = client.current_droplet(&app.guid).await?;
        let app_now = client.get_app(&app.guid).await?;
        // The release annotation is written last: one other than `before`'s
        // on the old droplet is a switch cut short (a runner killed, or a
        // second Ctrl-C, between the droplet and the restart), done again.
        let labelled = app_now.metadata.annotations.get(site::RELEASE).cloned();
        let cut_short = labelled.flatten() != before.release;
        if current.as_deref() != Some(droplet.as_str()) || cut_short {
            self.switch(
                color,
                &droplet,
                before.release.as_deref(),
                before.env.as_ref(),
            )
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
        self.site
            .check_healthy(color, &self.file.health, deadline)
            .await?;
        self.map(color).await.map_err(Stop::into_error)?;
        let release = before.release.as_deref().unwrap_or("its earlier droplet");
        Ok(format!(
            "rolled {color} back to {release}: healthy and on the route again ({:.1}s)",
            t.elapsed().as_secs_f64()
        ))
    }

    pub fn summary(&self, result: Outcome, message: Option<String>) -> HistoryEntry {
        let r = &self.record;
        let mut releases = BTreeMap::new();
        let mut droplets = BTreeMap::new();
        // A native deploy's one app stands as blue.
        for c in r.before.keys().copied() {
            let (d, rel) = match result {
                // With a standby one color got the release; the other keeps
                // its own (a switch back pushed none: the standby had it).
                Outcome::Done if self.standby_mode() && !r.droplets.contains_key(&c) => {
                    let before = &r.before[&c];
                    match before.release.as_deref() == Some(r.release.as_str()) {
                        true => (before.droplet.clone(), before.release.clone()),
                        false => (None, before.release.clone()),
                    }
                }
                Outcome::Done => (r.droplets.get(&c).cloned(), Some(r.release.clone())),
                _ if self.forward.contains(&c) => {
                    (r.droplets.get(&c).cloned(), Some(r.release.clone()))
                }
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
            finished: crate::units::now_rfc3339(),
            duration_ms: self.started.elapsed().as_millis() as u64,
            droplets,
            releases,
            migration_version: match (result, r.kind) {
                (Outcome::Done, Kind::Deploy) => r.migration_version.clone(),
                _ => None,
            },
            // A rollback carries the set forward: its schema stays.
            applied: match result {
                Outcome::Done => r.applied.clone(),
                _ => Vec::new(),
            },
            message,
            recovered: self.recovered,
            overrides: self.overrides.clone(),
            approvals: self.approvals.clone(),
            contract: match (result, r.kind) {
                (Outcome::Done, Kind::Deploy) => r.contract.clone(),
                _ => Vec::new(),
            },
        }
    }
}
