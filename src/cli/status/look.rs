//! What one `status` looks at: the route and its colors (each probed now on
//! its own URL), the lock, and a deploy in flight (`live`); whether the
//! route serves decides the exit code, and `--wait` looks again until it
//! does.

use super::live::InFlight;
use super::{print_status, siteless_lock};
use crate::cli::deploy::Loaded;
use crate::cli::output::outln;
use crate::deploy::journal::{self, Journal};
use crate::deploy::lock;
use crate::deploy::site;
use crate::platform::lease::Lease;
use crate::platform::local;
use crate::plugin::context::Color;
use serde_json::json;
use std::time::Instant;

/// What `status` saw: the route and its colors (none before the first
/// deploy), the lock, and a deploy in flight.
pub(super) struct Look {
    route_url: Option<String>,
    colors: Vec<serde_json::Value>,
    holder: Option<Lease>,
    pub(super) in_flight: Option<InFlight>,
}

pub(super) async fn look(l: &Loaded) -> anyhow::Result<Look> {
    let jdir = journal::dir(&local::home_dir(), &l.file.app);
    let replay = Journal::read(&jdir)?;
    let Some(site) = l.site(false).await? else {
        // The same shape as a deployed app's, with nothing in it but the
        // lock of a first deploy that holds it before making the apps.
        let holder = siteless_lock(l).await?.and_then(|(_, _, held)| held);
        let in_flight = InFlight::new(replay, holder.as_ref());
        return Ok(Look {
            route_url: None,
            colors: Vec::new(),
            holder,
            in_flight,
        });
    };
    let holder = lock::holder(&site.client, l.file.platform, &l.file.app, &site.space_guid).await?;
    let mut in_flight = InFlight::new(replay, holder.as_ref());
    if let Some(f) = in_flight.as_mut().filter(|f| f.running()) {
        f.read_weights(&site).await?;
        f.window = crate::deploy::window_now::read(&jdir);
    }
    let mut colors = Vec::new();
    // A native deploy's one app stands as blue (see `site::Mode`).
    let native = site.mode == site::Mode::Native;
    for c in site.apps.keys().copied().collect::<Vec<Color>>() {
        let app = site.app(c);
        let mapped = site.mapped(c).await?;
        let healthy = match site.candidate_url(c, Instant::now()).await {
            Ok(url) => {
                let once = crate::config::Health {
                    successes: 1,
                    ..l.file.health.clone()
                };
                crate::deploy::health::probe(&url, &once, Instant::now())
                    .await
                    .is_ok()
            }
            Err(_) => false,
        };
        let processes = site.processes(c).await?;
        let mut entry = json!({"color": c, "app": app.name, "state": app.state,
            "release": site.annotation(c, site::RELEASE), "mapped": mapped, "healthy": healthy,
            "newest": site.newest() == Some(c), "processes": processes,
            "standby": standby_of(&site, c, mapped)});
        if native {
            entry["color"] = serde_json::Value::Null;
            // CF's deployment under way, or the last one: its state and step.
            let deployments: Vec<crate::platform::deployments::Deployment> = site
                .client
                .list(&format!("/v3/deployments?app_guids={}", app.guid))
                .await?;
            // CF lists them oldest first.
            entry["deployment"] = json!(deployments.last().map(|d| json!({
                "guid": d.guid, "strategy": d.strategy, "state": d.describe(),
                "status": d.status,
            })));
        }
        colors.push(entry);
    }
    Ok(Look {
        route_url: Some(site.route_url.clone()),
        colors,
        holder,
        in_flight,
    })
}

impl Look {
    /// The route serves and no deploy runs (an interrupted journal waits for
    /// `recover`, not for time).
    pub(super) fn settled(&self) -> bool {
        self.serving() && !self.in_flight.as_ref().is_some_and(InFlight::running)
    }

    /// The exit code: whether the route serves, and with `waited`, whether a
    /// deploy still runs.
    pub(super) fn exit(&self, waited: bool) -> crate::cli::Exit {
        use crate::cli::Exit;
        match &self.in_flight {
            Some(f) if waited && f.running() => Exit::Locked,
            _ if self.serving() => Exit::Ok,
            _ => Exit::NotServing,
        }
    }

    /// Whether a color on the route answers healthy.
    pub(super) fn serving(&self) -> bool {
        self.colors
            .iter()
            .any(|c| c["mapped"] == true && c["healthy"] == true)
    }

    pub(super) fn json(&self, l: &Loaded) -> serde_json::Value {
        let interrupted = self
            .in_flight
            .as_ref()
            .filter(|f| !f.running())
            .map(|f| f.replay.record.id.clone());
        json!({"app": l.file.app, "route_url": self.route_url, "colors": self.colors,
            "lock": self.holder, "interrupted": interrupted, "serving": self.serving(),
            "deploy": self.in_flight.as_ref().map(InFlight::json)})
    }

    pub(super) fn print(&self, l: &Loaded) {
        let running = self.in_flight.as_ref().is_some_and(InFlight::running);
        // A running deploy names its runner itself.
        let holder = self.holder.as_ref().filter(|h| !h.expired() && !running);
        match &self.route_url {
            None => {
                outln!(
                    "{}: not deployed yet, or its platform is not running (`bluegreen deploy` does both)",
                    l.file.app
                );
                if let Some(h) = holder {
                    outln!("  {}", lock::describe(h));
                }
            }
            Some(url) => print_status(l, url, &self.colors, holder),
        }
        if let Some(f) = &self.in_flight {
            f.print();
        }
        if self.route_url.is_some() && !self.serving() {
            outln!("  the route does not serve: no color on it answers healthy");
        }
    }
}

/// `color` as a standby (`scale_down_delay`): off the route, its release,
/// until when, and whether its time is over; or when it ended.
fn standby_of(site: &site::Site, color: Color, mapped: bool) -> serde_json::Value {
    use crate::platform::standby::{STANDBY_ENDED, STANDBY_UNTIL, expired};
    let app = site.app(color);
    match site.annotation(color, STANDBY_UNTIL) {
        Some(until) if !mapped => json!({
            "until": until,
            "expired": expired(&app.metadata.annotations, std::time::SystemTime::now()),
            "release": site.annotation(color, site::RELEASE),
        }),
        _ => match site.annotation(color, STANDBY_ENDED) {
            Some(ended) if !mapped => json!({"ended": ended}),
            _ => serde_json::Value::Null,
        },
    }
}
