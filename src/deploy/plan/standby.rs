//! The steps of a deploy with `scale_down_delay`: the classic blue-green,
//! where only the idle color gets the new release and the color it replaces
//! stays up off the route on the previous one (the standby), and the
//! rollback that maps that standby again: no push, no staging, no restart.

use super::{Bits, Source, Step};
use crate::config::DeployFile;
use crate::plugin::Hook;
use crate::plugin::context::Color;
use std::collections::BTreeMap;

/// Where the colors stand before a standby deploy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sides {
    /// The color that gets the release: the one not serving (the standby,
    /// if there is one); on a first deploy, blue.
    pub idle: Color,
    /// It is on the route (both colors served, as a deploy without a
    /// standby leaves them): it leaves the route before its push.
    pub idle_mapped: bool,
    /// The color serving now, which becomes the standby; none on a first
    /// deploy.
    pub live: Option<Color>,
}

impl Sides {
    /// From the deploy order alone (`bluegreen plan` without a site): the
    /// steady state, one color serving and the other idle.
    pub fn assumed(order: [Color; 2]) -> Sides {
        Sides {
            idle: order[0],
            idle_mapped: false,
            live: Some(order[1]),
        }
    }

    /// From the order and which colors are mapped and which serve.
    pub fn from_site(order: [Color; 2], mapped: &[Color], serving: &[Color]) -> Sides {
        Sides {
            idle: order[0],
            idle_mapped: mapped.contains(&order[0]),
            live: serving.contains(&order[1]).then_some(order[1]),
        }
    }
}

fn hook(plugins: &BTreeMap<Hook, Vec<String>>, hook: Hook, color: Option<Color>) -> Step {
    Step::Hook {
        hook,
        color,
        plugins: plugins.get(&hook).cloned().unwrap_or_default(),
    }
}

/// The one window that judges the new color beside the old (both mapped),
/// before the old one leaves: the last chance, so it must decide.
fn analyze(file: &DeployFile, color: Color, plugins: &BTreeMap<Hook, Vec<String>>) -> Option<Step> {
    let a = file.analysis()?;
    Some(Step::Analyze {
        color,
        percent: None,
        up_to: a.duration,
        min_requests: a.min_requests,
        max_error_rate: a.max_error_rate,
        max_p99_ratio: a.max_p99_ratio,
        plugins: plugins.get(&Hook::Analyze).cloned().unwrap_or_default(),
        last: true,
        pause_on_fail: a.on_fail == crate::config::OnFail::Pause,
    })
}

/// A deploy (or a rollback replaying an earlier release) to the idle color
/// alone: pushed, migrated, checked, mapped; then the live color leaves the
/// route and stays up as the standby. No drain: it keeps running, so its
/// requests in flight finish on their own.
pub fn plan(
    file: &DeployFile,
    sides: Sides,
    plugins: &BTreeMap<Hook, Vec<String>>,
    source: &Source,
) -> Vec<Step> {
    let keep = file.scale_down_delay.unwrap_or_default();
    let migrate = match source {
        Source::New => file.migrate.as_ref(),
        Source::Existing(_) => None,
    };
    let (idle, c) = (sides.idle, Some(sides.idle));
    let mut steps = vec![
        Step::Validate,
        Step::AcquireLock,
        hook(plugins, Hook::PreDeploy, None),
    ];
    if migrate.is_some() {
        steps.push(hook(plugins, Hook::MigrationSafetyCheck, None));
    }
    let analysis = file.analysis();
    if let Some(a) = &analysis {
        steps.push(Step::Baseline { up_to: a.duration });
    }
    if sides.idle_mapped {
        steps.extend([
            hook(plugins, Hook::PreUnmap, c),
            Step::Unmap { color: idle },
            Step::Drain {
                color: idle,
                up_to: file.drain,
            },
        ]);
    }
    steps.extend([
        hook(plugins, Hook::PrePush, c),
        Step::Push {
            color: idle,
            bits: match source {
                Source::New => Bits::Stage,
                Source::Existing(r) => Bits::Release(r.clone()),
            },
        },
    ]);
    if let Some(m) = migrate {
        if m.rehearse.enabled {
            steps.push(Step::Rehearse {
                color: idle,
                command: m.command.clone(),
                sample_rows: m.rehearse.sample_rows,
                max_exclusive: m.rehearse.max_exclusive,
                required: m.rehearse.required,
            });
        }
        steps.push(Step::Migrate {
            color: idle,
            command: m.command.clone(),
            contract: false,
        });
        if let (Some(a), Some(live)) = (&analysis, sides.live) {
            steps.push(Step::Watch {
                color: live,
                up_to: a.duration,
            });
        }
    }
    steps.extend(bring_up(file, idle, plugins));
    steps.extend(sides.live.and_then(|_| analyze(file, idle, plugins)));
    steps.push(hook(plugins, Hook::PostMap, c));
    if let Some(live) = sides.live {
        steps.extend(leave(live, keep, plugins));
    }
    steps.extend(finish(plugins));
    steps
}

/// `bluegreen rollback` to a live standby: checked on its own URL, mapped,
/// and the color serving now leaves the route and becomes the standby in
/// its turn (a second rollback goes forward again).
pub fn switch_back(
    file: &DeployFile,
    standby: Color,
    plugins: &BTreeMap<Hook, Vec<String>>,
) -> Vec<Step> {
    let keep = file.scale_down_delay.unwrap_or_default();
    let c = Some(standby);
    let mut steps = vec![
        Step::Validate,
        Step::AcquireLock,
        hook(plugins, Hook::PreDeploy, None),
    ];
    steps.extend(bring_up(file, standby, plugins));
    steps.extend(analyze(file, standby, plugins));
    steps.push(hook(plugins, Hook::PostMap, c));
    steps.extend(leave(standby.other(), keep, plugins));
    steps.extend(finish(plugins));
    steps
}

/// `color` checked healthy on its own URL (and by the plugins), then put on
/// the route: the same for a pushed color and a standby switched back.
fn bring_up(file: &DeployFile, color: Color, plugins: &BTreeMap<Hook, Vec<String>>) -> [Step; 4] {
    let c = Some(color);
    [
        Step::Health {
            color,
            path: file.health.path.clone(),
            timeout: file.health.timeout,
        },
        hook(plugins, Hook::HealthCheck, c),
        hook(plugins, Hook::PreMap, c),
        Step::Map { color },
    ]
}

/// `color` leaves the route and stays up as the standby.
fn leave(
    color: Color,
    keep: std::time::Duration,
    plugins: &BTreeMap<Hook, Vec<String>>,
) -> [Step; 3] {
    [
        hook(plugins, Hook::PreUnmap, Some(color)),
        Step::Unmap { color },
        Step::Standby { color, keep },
    ]
}

fn finish(plugins: &BTreeMap<Hook, Vec<String>>) -> [Step; 3] {
    [
        hook(plugins, Hook::PostDeploy, None),
        Step::RecordRelease,
        Step::ReleaseLock,
    ]
}

#[cfg(test)]
#[path = "standby_tests.rs"]
mod tests;
