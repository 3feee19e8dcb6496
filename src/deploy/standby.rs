//! A warm standby as a command finds it (`scale_down_delay`): which color
//! is one and whether `rollback` can map it as it is (up, healthy, its time
//! not over), and ending the standbys whose time is over. The local daemon
//! ends them on time by itself; Cloud Foundry has no such daemon, so there
//! the next `deploy`, `rollback` or `recover` does it, under the app's lock
//! (`status` only shows it: stopping an app without the lock could stop a
//! color a deploy is starting).

use super::site::{self, Site};
use crate::platform::standby::{self as record, STANDBY_ENDED, STANDBY_UNTIL};
use crate::plugin::context::Color;
use std::time::{Instant, SystemTime};

/// Where the colors stand for a standby deploy, from the site (`None`: not
/// deployed yet, so a first deploy).
pub async fn sides(
    site: Option<&Site>,
    order: [Color; 2],
) -> Result<super::plan::standby::Sides, crate::platform::PlatformError> {
    let (mut mapped, mut serving) = (Vec::new(), Vec::new());
    if let Some(site) = site {
        for c in [Color::Blue, Color::Green] {
            if site.mapped(c).await? {
                mapped.push(c);
            }
        }
        serving = site.serving().await?;
    }
    Ok(super::plan::standby::Sides::from_site(
        order, &mapped, &serving,
    ))
}

/// A standby `rollback` can map as it is.
#[derive(Clone, Debug)]
pub struct Standby {
    pub color: Color,
    pub release: String,
    pub until: String,
}

/// The live standby, or why there is none to switch back to.
pub async fn live(site: &Site, health: &crate::config::Health) -> Result<Standby, String> {
    let recorded = site
        .apps
        .keys()
        .copied()
        .find(|c| site.annotation(*c, STANDBY_UNTIL).is_some());
    let Some(color) = recorded else {
        let ended = [Color::Blue, Color::Green]
            .into_iter()
            .find_map(|c| site.annotation(c, STANDBY_ENDED).map(|t| (c, t)));
        return Err(match ended {
            Some((c, t)) => format!("{c}'s standby time ended at {t} and it was stopped"),
            None => "no color is recorded as a standby".into(),
        });
    };
    let until = site.annotation(color, STANDBY_UNTIL).unwrap_or_default();
    let app = site.app(color);
    if record::expired(&app.metadata.annotations, SystemTime::now()) {
        return Err(format!("{color}'s standby time ended at {until}"));
    }
    if app.state != "STARTED" {
        return Err(format!("{color} ({}) is stopped", app.name));
    }
    let Some(release) = site.annotation(color, site::RELEASE) else {
        return Err(format!("{color} records no release"));
    };
    match site.mapped(color).await {
        Ok(false) => {}
        Ok(true) => return Err(format!("{color} is on the route already")),
        Err(e) => return Err(e.to_string()),
    }
    let url = site
        .candidate_url(color, Instant::now())
        .await
        .map_err(|e| format!("{color} has no instance running: {e:#}"))?;
    let url = format!("{}{}", url.trim_end_matches('/'), health.path);
    let client = super::health::client(health.request_timeout);
    super::health::check(&client, &url, health)
        .await
        .map_err(|why| format!("{color} is up but not healthy: {url}: {why}"))?;
    Ok(Standby {
        color,
        release,
        until,
    })
}

/// Stops each color whose standby time is over (off the route, recorded
/// as such) and records that it ended; says what it did, one line each.
pub async fn expire(site: &Site) -> anyhow::Result<Vec<String>> {
    let now = SystemTime::now();
    let mut said = Vec::new();
    // A native deploy's one app stands as blue: only the apps there are.
    for color in site.apps.keys().copied() {
        let app = site.app(color);
        if !record::expired(&app.metadata.annotations, now) || site.mapped(color).await? {
            continue;
        }
        if app.state != "STOPPED" {
            site.client.app_action(&app.guid, "stop").await?;
        }
        site.client
            .set_metadata(&app.guid, &record::ended(now))
            .await?;
        said.push(format!(
            "Stopped {} ({color}, release {}): its standby time ended at {}",
            app.name,
            site.annotation(color, site::RELEASE)
                .unwrap_or_else(|| "-".into()),
            site.annotation(color, STANDBY_UNTIL).unwrap_or_default()
        ));
    }
    Ok(said)
}
