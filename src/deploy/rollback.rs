//! Rollback specifics: which release to go back to and each color's droplet
//! for it, and the warning when going back past contract-phase migrations.
//! The rollback itself is the CLI's deploy with an existing release.

use crate::BadInput;
use crate::deploy::journal;
use crate::deploy::progress::Reporter;
use crate::deploy::site::{self, Site};
use crate::plugin::context::Color;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// A rollback past deploys that ran contract-phase migrations: the old code
/// may not run on the contracted schema.
pub fn warn_contracted(report: &Reporter, history: &[journal::HistoryEntry], target: &str) {
    let after = history
        .iter()
        .rposition(|h| h.result == journal::Outcome::Done && h.release == target)
        .map(|i| i + 1)
        .unwrap_or(0);
    let contracted: Vec<String> = history[after..]
        .iter()
        .filter(|h| h.result == journal::Outcome::Done)
        .flat_map(|h| {
            h.contract
                .iter()
                .map(move |c| format!("{c} (release {})", h.release))
        })
        .collect();
    if contracted.is_empty() {
        return;
    }
    report.event(
        json!({"event": "warning", "rule": "rollback-past-contract", "migrations": contracted}),
    );
    report.result(&format!(
        "warning: rolling back past contract-phase migrations {}: release {target}'s code may not run on the contracted schema",
        contracted.join(", ")
    ));
}

/// Which release a rollback goes to and each color's droplet for it: the
/// history first, else what the apps' annotations remember.
pub fn rollback_target(
    site: &Site,
    history: &[journal::HistoryEntry],
    to: Option<&str>,
    current: Option<&str>,
) -> anyhow::Result<(String, BTreeMap<crate::plugin::context::Color, String>)> {
    let target = to
        .map(String::from)
        .or_else(|| {
            history
                .iter()
                .rev()
                .filter(|h| {
                    h.result == journal::Outcome::Done && Some(h.release.as_str()) != current
                })
                .map(|h| h.release.clone())
                .next()
        })
        .or_else(|| {
            site.newest()
                .and_then(|c| site.annotation(c, site::PREVIOUS_RELEASE))
        })
        .ok_or_else(|| {
            BadInput(
                "no earlier release to roll back to (the history is empty); name one with `--to`"
                    .into(),
            )
        })?;
    if let Some(h) = history.iter().rev().find(|h| {
        h.result == journal::Outcome::Done && h.release == target && !h.droplets.is_empty()
    }) {
        return Ok((target, h.droplets.clone()));
    }
    let mut droplets = BTreeMap::new();
    for c in [Color::Blue, Color::Green] {
        if site.annotation(c, site::PREVIOUS_RELEASE).as_deref() == Some(target.as_str())
            && let Some(d) = site.annotation(c, site::PREVIOUS_DROPLET)
        {
            droplets.insert(c, d);
        }
    }
    if droplets.is_empty() {
        let known: BTreeSet<&str> = history
            .iter()
            .filter(|h| h.result == journal::Outcome::Done)
            .map(|h| h.release.as_str())
            .collect();
        return Err(BadInput(format!(
            "release `{target}` is not in the history; known releases: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.into_iter().collect::<Vec<_>>().join(", ")
            }
        ))
        .into());
    }
    Ok((target, droplets))
}

/// Each color's droplet for the rollback still exists: platforms keep only
/// the newest few per app, so an old release may be gone.
pub async fn check_droplets(
    site: &Site,
    target: &str,
    droplets: &BTreeMap<Color, String>,
) -> anyhow::Result<()> {
    for (color, guid) in droplets {
        let found = site
            .client
            .get::<crate::platform::v3::Droplet>(&format!("/v3/droplets/{guid}"))
            .await;
        match found {
            Ok(_) => {}
            Err(crate::platform::PlatformError::Api { status: 404, .. }) => {
                return Err(BadInput(format!(
                    "release `{target}`: {color}'s droplet {guid} is gone (the platform keeps the \
                     newest {} per app, as Cloud Foundry does); deploy that release again instead",
                    crate::platform::local::DROPLETS_KEPT
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
