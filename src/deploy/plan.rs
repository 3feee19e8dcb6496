//! The deploy sequence as a pure list of steps, so it can be shown
//! (`bluegreen plan`) and tested without touching a platform. The order is
//! the Cloud Foundry blue-green recipe with hooks at every step; the first
//! color is one whose leaving the route costs nothing (it does not serve),
//! else the one *not* serving the newest release, so the newest survives
//! longest.

use crate::config::{DeployFile, PlatformKind, Strategy};
use crate::plugin::Hook;
use crate::plugin::context::Color;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub mod native;
pub mod standby;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// Config, policy and every plugin checked before anything changes.
    Validate,
    AcquireLock,
    /// Plugins handling `hook`, in name order (maybe none).
    Hook {
        hook: Hook,
        color: Option<Color>,
        plugins: Vec<String>,
    },
    /// Before anything moves: the route's live traffic over one window
    /// (or, without traffic, each color's own URL probed), the reference
    /// every later window is judged against.
    Baseline {
        #[serde(
            rename = "up_to_ms",
            alias = "up_to",
            with = "crate::units::duration_ms"
        )]
        up_to: Duration,
    },
    Unmap {
        color: Color,
    },
    Drain {
        color: Color,
        #[serde(
            rename = "up_to_ms",
            alias = "up_to",
            with = "crate::units::duration_ms"
        )]
        up_to: Duration,
    },
    /// A deploy stages on the first color and the second reuses that
    /// droplet; a rollback switches each color to a droplet it ran before.
    Push {
        color: Color,
        bits: Bits,
    },
    /// Before the expand phase: the same command on the same droplet, but
    /// against a scratch database made from the shared one's schema (and
    /// `sample_rows` rows per table), its locks watched from a second
    /// connection (`deploy/rehearse.rs`). Blocks on what would hurt the
    /// release still serving; `required`: one that cannot run refuses.
    Rehearse {
        color: Color,
        command: String,
        sample_rows: u32,
        #[serde(rename = "max_exclusive_ms", with = "crate::units::duration_ms")]
        max_exclusive: Duration,
        #[serde(default)]
        required: bool,
    },
    /// The expand phase runs on the first color's new droplet; the contract
    /// phase (`post_dirs`) once both colors serve the new release.
    Migrate {
        color: Color,
        command: String,
        #[serde(default)]
        contract: bool,
    },
    Health {
        color: Color,
        path: String,
        #[serde(
            rename = "timeout_ms",
            alias = "timeout",
            with = "crate::units::duration_ms"
        )]
        timeout: Duration,
    },
    /// After the migration, before the new release serves: `color`, still
    /// on the old release and alone on the route, judged against the route
    /// before the deploy. A migration that broke it stops the deploy here.
    Watch {
        color: Color,
        #[serde(
            rename = "up_to_ms",
            alias = "up_to",
            with = "crate::units::duration_ms"
        )]
        up_to: Duration,
    },
    Map {
        color: Color,
    },
    /// A canary step: `color` (mapped, on the new release) gets `percent`
    /// of the route's requests and the other color the rest. On Cloud
    /// Foundry, which routes by instances, `instances` says how.
    Weigh {
        color: Color,
        percent: u8,
        #[serde(default)]
        instances: Option<Instances>,
    },
    /// Watches `color`'s live traffic against the other color's over one
    /// window and rolls it back past the limits; `plugins` (the `analyze`
    /// hook) judge the same window.
    Analyze {
        color: Color,
        /// The canary step's share; none after a whole-color map.
        percent: Option<u8>,
        /// The window: this long, or until the color served `min_requests`.
        #[serde(
            rename = "up_to_ms",
            alias = "up_to",
            with = "crate::units::duration_ms"
        )]
        up_to: Duration,
        min_requests: Option<u64>,
        /// The limits: 5xx share over the other color's, p99 ratio.
        max_error_rate: f64,
        max_p99_ratio: f64,
        plugins: Vec<String>,
        /// The step gives the new release all the route's traffic: a window
        /// that cannot decide fails here unless the file says `warn`.
        #[serde(default)]
        last: bool,
        /// `analysis.on_fail: pause`: a failed window pauses the deploy
        /// (see `Pause`) instead of rolling back.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pause_on_fail: bool,
    },
    /// Holds the release at a canary step (`steps: [10, pause, …]`) until
    /// an operator says (`bluegreen resume`, `promote`, `abort`), the lock
    /// held all along. `timed`: it goes on by itself after `up_to`;
    /// otherwise `up_to` is the most it waits, then it rolls back.
    Pause {
        color: Color,
        percent: u8,
        #[serde(rename = "up_to_ms", with = "crate::units::duration_ms")]
        up_to: Duration,
        timed: bool,
    },
    /// `scale_down_delay`: `color`, just taken off the route, keeps running
    /// its release for `keep` (the expiry is recorded on its app), so a
    /// rollback maps it again without a push; then it is stopped.
    Standby {
        color: Color,
        #[serde(rename = "keep_ms", with = "crate::units::duration_ms")]
        keep: Duration,
    },
    RecordRelease,
    ReleaseLock,
    /// An app pushed before bluegreen (`cf push`, named as the deploy
    /// file's app) that was on the route: once both colors serve, it leaves
    /// the route, finishes what it is answering (up to `up_to`, the drain)
    /// and stops (it is kept, not deleted).
    Retire {
        app: String,
        #[serde(rename = "up_to_ms", default, with = "crate::units::duration_ms")]
        up_to: Duration,
    },
    /// The steps of a deploy through Cloud Foundry's own deployments (one
    /// app, no colors): `plan/native.rs`.
    #[serde(untagged)]
    Native(native::Native),
}

/// A canary step's share on a platform that spreads requests evenly over
/// instances: the candidate runs `candidate` instances beside the other
/// color's `baseline`, so it gets `candidate / (candidate + baseline)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instances {
    pub candidate: u32,
    pub baseline: u32,
}

impl Instances {
    /// The instance counts nearest `percent` with `baseline` instances of
    /// the other color (the candidate runs at least one).
    pub fn approximate(percent: u8, baseline: u32) -> Instances {
        let p = f64::from(percent.min(99));
        let k = (p * f64::from(baseline) / (100.0 - p)).round().max(1.0) as u32;
        Instances {
            candidate: k,
            baseline,
        }
    }

    pub fn percent(&self) -> f64 {
        100.0 * f64::from(self.candidate) / f64::from(self.candidate + self.baseline)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bits {
    Stage,
    Reuse,
    Release(String),
}

/// What a plan deploys: new bits from the app directory, or a release that
/// ran before (a rollback: no staging, no migration).
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    New,
    Existing(String),
}

/// The colors in deploy order. When exactly one color serves (mapped and
/// running), the other goes first: unmapping the only one serving would
/// empty the route. Otherwise the one not serving the newest release goes
/// first.
pub fn order(newest: Option<Color>, serving: &[Color]) -> [Color; 2] {
    let first = match serving {
        [only] => only.other(),
        _ => match newest {
            Some(c) => c.other(),
            None => Color::Blue,
        },
    };
    [first, first.other()]
}

/// The steps of a deploy of `file`: through Cloud Foundry's deployments
/// (`native`, see `plan/native.rs`), else with two colors (`plan`).
pub fn for_mode(
    file: &DeployFile,
    native: bool,
    order: [Color; 2],
    plugins: &BTreeMap<Hook, Vec<String>>,
    source: &Source,
) -> Vec<Step> {
    match (native, file.scale_down_delay) {
        (true, _) => native::plan(file, plugins, source),
        (false, Some(_)) => standby::plan(file, standby::Sides::assumed(order), plugins, source),
        (false, None) => plan(file, order, plugins, source),
    }
}

/// The steps of a deploy of `file`, given the colors' `order` and which
/// plugins handle each hook.
pub fn plan(
    file: &DeployFile,
    order: [Color; 2],
    plugins: &BTreeMap<Hook, Vec<String>>,
    source: &Source,
) -> Vec<Step> {
    let migrate = match source {
        Source::New => file.migrate.as_ref(),
        Source::Existing(_) => None,
    };
    let hook = |hook: Hook, color: Option<Color>| Step::Hook {
        hook,
        color,
        plugins: plugins.get(&hook).cloned().unwrap_or_default(),
    };
    let mut steps = vec![
        Step::Validate,
        Step::AcquireLock,
        hook(Hook::PreDeploy, None),
    ];
    if migrate.is_some() {
        steps.push(hook(Hook::MigrationSafetyCheck, None));
    }
    let analysis = file.analysis();
    if let Some(a) = &analysis {
        steps.push(Step::Baseline { up_to: a.duration });
    }
    for (i, color) in order.into_iter().enumerate() {
        let c = Some(color);
        steps.extend([
            hook(Hook::PreUnmap, c),
            Step::Unmap { color },
            Step::Drain {
                color,
                up_to: file.drain,
            },
            hook(Hook::PrePush, c),
            Step::Push {
                color,
                bits: match (source, i) {
                    (Source::Existing(r), _) => Bits::Release(r.clone()),
                    (Source::New, 0) => Bits::Stage,
                    (Source::New, _) => Bits::Reuse,
                },
            },
        ]);
        if let (0, Some(m)) = (i, migrate) {
            if m.rehearse.enabled {
                steps.push(Step::Rehearse {
                    color,
                    command: m.command.clone(),
                    sample_rows: m.rehearse.sample_rows,
                    max_exclusive: m.rehearse.max_exclusive,
                    required: m.rehearse.required,
                });
            }
            steps.push(Step::Migrate {
                color,
                command: m.command.clone(),
                contract: false,
            });
            if let Some(a) = &analysis {
                steps.push(Step::Watch {
                    color: color.other(),
                    up_to: a.duration,
                });
            }
        }
        steps.extend([
            Step::Health {
                color,
                path: file.health.path.clone(),
                timeout: file.health.timeout,
            },
            hook(Hook::HealthCheck, c),
            hook(Hook::PreMap, c),
        ]);
        let analyze = |a: &crate::config::Analysis, percent, last| Step::Analyze {
            color,
            percent,
            up_to: a.duration,
            min_requests: a.min_requests,
            max_error_rate: a.max_error_rate,
            max_p99_ratio: a.max_p99_ratio,
            plugins: plugins.get(&Hook::Analyze).cloned().unwrap_or_default(),
            last,
            pause_on_fail: a.on_fail == crate::config::OnFail::Pause,
        };
        let canary = file.strategy == Strategy::Canary && i == 0;
        if canary {
            // The other color's web instances, for Cloud Foundry's even
            // spread over instances (the manifest's count, else one).
            let baseline = file
                .cf_manifest
                .as_ref()
                .and_then(|m| m.web().instances)
                .unwrap_or(1);
            for (n, &percent) in file.steps.iter().enumerate() {
                steps.push(Step::Weigh {
                    color,
                    percent,
                    instances: (file.platform == PlatformKind::Cf && percent < 100)
                        .then(|| Instances::approximate(percent, baseline)),
                });
                if let Some(a) = &analysis {
                    steps.push(analyze(a, Some(percent), percent == 100));
                }
                if let Some(p) = file.step_list.pause_after(n + 1) {
                    steps.push(pause(color, percent, p));
                }
            }
        } else {
            steps.push(Step::Map { color });
            if let Some(a) = &analysis {
                // The second color's map gives the new release all traffic.
                steps.push(analyze(a, None, i == 1));
            }
        }
        steps.push(hook(Hook::PostMap, c));
    }
    if let Some(m) = migrate.filter(|m| !m.post_dirs.is_empty()) {
        steps.push(Step::Migrate {
            color: order[0],
            command: m.command.clone(),
            contract: true,
        });
    }
    steps.extend([
        hook(Hook::PostDeploy, None),
        Step::RecordRelease,
        Step::ReleaseLock,
    ]);
    steps
}

fn name(c: Color) -> &'static str {
    c.name()
}

/// The step for a pause after the canary step at `percent`.
fn pause(color: Color, percent: u8, p: crate::config::steps::Pause) -> Step {
    Step::Pause {
        color,
        percent,
        up_to: p.resume_after.unwrap_or(crate::config::steps::MAX_PAUSE),
        timed: p.resume_after.is_some(),
    }
}

impl Step {
    /// A short machine name for `--json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::AcquireLock => "acquire-lock",
            Step::Hook { hook, .. } => hook.name(),
            Step::Baseline { .. } => "baseline",
            Step::Unmap { .. } => "unmap",
            Step::Drain { .. } => "drain",
            Step::Push { .. } => "push",
            Step::Rehearse { .. } => "rehearse",
            Step::Migrate { .. } => "migrate",
            Step::Health { .. } => "health",
            Step::Watch { .. } => "watch",
            Step::Map { .. } => "map",
            Step::Weigh { .. } => "weigh",
            Step::Analyze { .. } => "analyze",
            Step::Pause { .. } => "pause",
            Step::Standby { .. } => "standby",
            Step::RecordRelease => "record-release",
            Step::ReleaseLock => "release-lock",
            Step::Retire { .. } => "retire",
            Step::Native(n) => n.kind(),
        }
    }

    pub fn color(&self) -> Option<Color> {
        match self {
            Step::Hook { color, .. } => *color,
            Step::Unmap { color }
            | Step::Drain { color, .. }
            | Step::Push { color, .. }
            | Step::Rehearse { color, .. }
            | Step::Migrate { color, .. }
            | Step::Health { color, .. }
            | Step::Watch { color, .. }
            | Step::Map { color }
            | Step::Weigh { color, .. }
            | Step::Pause { color, .. }
            | Step::Standby { color, .. }
            | Step::Analyze { color, .. } => Some(*color),
            _ => None,
        }
    }

    /// Steps that can take a while, which get a spinner.
    pub fn waits(&self) -> bool {
        matches!(
            self,
            Step::Drain { .. }
                | Step::Push { .. }
                | Step::Rehearse { .. }
                | Step::Migrate { .. }
                | Step::Health { .. }
                | Step::Baseline { .. }
                | Step::Watch { .. }
                | Step::Analyze { .. }
                | Step::Pause { .. }
                | Step::Native(_)
        ) || matches!(self, Step::Hook { plugins, .. } if !plugins.is_empty())
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| crate::units::human_duration(*d);
        match self {
            Step::Validate => write!(f, "validate the deploy file, policy and plugins"),
            Step::AcquireLock => write!(f, "acquire the deploy lock"),
            Step::Hook {
                hook,
                color,
                plugins,
            } => {
                write!(f, "hook {hook}")?;
                if let Some(c) = color {
                    write!(f, " ({})", name(*c))?;
                }
                if plugins.is_empty() {
                    write!(f, ": no plugins")
                } else {
                    write!(f, ": {}", plugins.join(", "))
                }
            }
            Step::Baseline { up_to } => write!(
                f,
                "read the route's live traffic for up to {} (or probe each color): the \
                 reference every later window is judged against",
                d(up_to)
            ),
            Step::Watch { color, up_to } => write!(
                f,
                "watch {} (still on the old release) for up to {} against the route before \
                 the deploy: stop if the migration broke it",
                name(*color),
                d(up_to)
            ),
            Step::Unmap { color } => write!(f, "unmap the route from {}", name(*color)),
            Step::Drain { color, up_to } => {
                write!(f, "drain {} (up to {})", name(*color), d(up_to))
            }
            Step::Push {
                color,
                bits: Bits::Stage,
            } => write!(
                f,
                "push to {}: upload and stage a new droplet",
                name(*color)
            ),
            Step::Push {
                color,
                bits: Bits::Reuse,
            } => write!(f, "push to {}: reuse the staged droplet", name(*color)),
            Step::Push {
                color,
                bits: Bits::Release(r),
            } => write!(f, "push to {}: switch back to release {r}", name(*color)),
            Step::Rehearse {
                color,
                command,
                sample_rows,
                max_exclusive,
                required,
            } => write!(
                f,
                "rehearse the migration on {}'s new droplet against a scratch copy of the \
                 database's schema ({sample_rows} rows per table), watching its locks: block on \
                 a rewrite, a dropped or renamed table or column, or ACCESS EXCLUSIVE on a table \
                 in use over {}{}: {command}",
                name(*color),
                d(max_exclusive),
                if *required {
                    "; required by the policy: refuse if it cannot run"
                } else {
                    ""
                }
            ),
            Step::Migrate {
                color,
                command,
                contract: false,
            } => write!(
                f,
                "migrate once on {}'s new droplet: {command}",
                name(*color)
            ),
            Step::Migrate {
                color,
                command,
                contract: true,
            } => write!(
                f,
                "migrate the contract phase once, on {}, now that both colors run the new release: {command}",
                name(*color)
            ),
            Step::Health {
                color,
                path,
                timeout,
            } => {
                write!(
                    f,
                    "probe {}'s own URL {path} until healthy (up to {})",
                    name(*color),
                    d(timeout)
                )
            }
            Step::Map { color } => write!(f, "map the route to {}", name(*color)),
            Step::Weigh {
                color,
                percent: 100,
                ..
            } => write!(
                f,
                "canary step 100%: every request of the route to {}",
                name(*color)
            ),
            Step::Weigh {
                color,
                percent,
                instances: None,
            } => write!(
                f,
                "canary step {percent}%: map {} with weight {percent}, {} {}",
                name(*color),
                name(color.other()),
                100 - percent
            ),
            Step::Weigh {
                color,
                percent,
                instances: Some(i),
            } => {
                let got = i.percent();
                write!(
                    f,
                    "canary step {percent}%: Cloud Foundry spreads requests over instances, so {} \
                     runs {} beside {}'s {}: {got:.0}% ({:.0} points off{})",
                    name(*color),
                    plural(i.candidate, "instance"),
                    name(color.other()),
                    i.baseline,
                    (got - f64::from(*percent)).abs(),
                    closer(*percent, i)
                )
            }
            Step::Analyze {
                color,
                percent,
                up_to,
                min_requests,
                max_error_rate,
                max_p99_ratio,
                plugins,
                last,
                pause_on_fail,
            } => {
                let share = match percent {
                    Some(p) => format!(" at {p}%"),
                    None => String::new(),
                };
                let until = match min_requests {
                    Some(n) => format!("{n} requests or {}", d(up_to)),
                    None => d(up_to),
                };
                write!(
                    f,
                    "analyze {}'s live traffic{share} against the route before the deploy and \
                     {}'s for up to {until}; roll back if a serving color's 5xx share rises by \
                     over {:.1} points or its p99 over {max_p99_ratio}x",
                    name(*color),
                    name(color.other()),
                    max_error_rate * 100.0
                )?;
                if *last {
                    write!(f, "; not enough evidence fails here")?;
                }
                if *pause_on_fail {
                    write!(f, "; a failed window pauses instead (on_fail: pause)")?;
                }
                if !plugins.is_empty() {
                    write!(f, "; analyze: {}", plugins.join(", "))?;
                }
                Ok(())
            }
            Step::Pause {
                color,
                percent,
                up_to,
                timed: true,
            } => write!(
                f,
                "pause at {percent}% ({} on the new release) for {}, then go on \
                 (`bluegreen resume`, `promote` or `abort` sooner)",
                name(*color),
                d(up_to)
            ),
            Step::Pause {
                color,
                percent,
                up_to,
                timed: false,
            } => write!(
                f,
                "pause at {percent}% ({} on the new release) until `bluegreen resume`, \
                 `promote` or `abort` (rolled back after {} without one)",
                name(*color),
                d(up_to)
            ),
            Step::Standby { color, keep } => write!(
                f,
                "keep {} running off the route on its release for {} as the standby \
                 (`bluegreen rollback` maps it again without a push), then stop it",
                name(*color),
                d(keep)
            ),
            Step::RecordRelease => write!(f, "record the release in the history"),
            Step::ReleaseLock => write!(f, "release the deploy lock"),
            Step::Retire { app, up_to } => write!(
                f,
                "adopt the route from `{app}` (pushed before bluegreen): unmap it, drain it \
                 (up to {}) and stop it, both colors serving (it is kept: `cf delete {app}` \
                 when sure)",
                d(up_to)
            ),
            Step::Native(n) => n.fmt(f),
        }
    }
}

fn plural(n: u32, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// How many instances of the other color would make the share exact (a
/// step's percent with one candidate instance).
fn closer(percent: u8, i: &Instances) -> String {
    let exact = (100u32 - u32::from(percent)).is_multiple_of(u32::from(percent));
    if (i.percent() - f64::from(percent)).abs() < 0.5 || !exact {
        return String::new();
    }
    let baseline = (100 - u32::from(percent)) / u32::from(percent);
    format!("; exact with {baseline} instances of the other color")
}

/// `steps` with `app` (on the route before bluegreen) retired once both
/// colors serve, after a drain of `up_to`: before the contract migration
/// and `post-deploy`.
pub fn with_retire(mut steps: Vec<Step>, app: &str, up_to: Duration) -> Vec<Step> {
    let at = steps
        .iter()
        .position(|s| {
            matches!(
                s,
                Step::Migrate { contract: true, .. }
                    | Step::Hook {
                        hook: Hook::PostDeploy,
                        ..
                    }
            )
        })
        .unwrap_or(steps.len());
    let retire = Step::Retire {
        app: app.into(),
        up_to,
    };
    steps.insert(at, retire);
    steps
}

/// The plan as numbered lines, one step each.
pub fn render(steps: &[Step]) -> String {
    steps
        .iter()
        .enumerate()
        .map(|(i, s)| format!("{:>2}. {s}\n", i + 1))
        .collect()
}

#[cfg(test)]
mod tests;
