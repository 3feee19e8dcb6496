//! The plan of a deploy through Cloud Foundry's own deployments
//! (`strategy: cf-canary | cf-rolling`): one app instead of two colors, so
//! one set of bindings, policies and autoscaler rules and about one app's
//! instances at rest. The guard and the migration's expand phase come
//! first, on the staged droplet before any instance runs it (CF's
//! deployments do not handle migrations); then CF's deployment, each
//! canary pause judged by the same health checks, plugins and analysis as
//! a color, and acted on with `continue` or `cancel`; the contract phase
//! once CF says `DEPLOYED`.

use super::Step;
use crate::config::{DeployFile, Strategy};
use crate::plugin::Hook;
use crate::plugin::context::Color;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Native {
    /// The new droplet staged on the app, not yet running anywhere.
    Stage,
    /// A migration as a task on the staged droplet: the expand phase
    /// before the deployment, the contract phase once it is deployed.
    Task { command: String, contract: bool },
    /// CF's deployment created: a canary with its instance weights, or
    /// rolling (`steps` empty).
    Deployment {
        strategy: String,
        steps: Vec<u8>,
        max_in_flight: u32,
    },
    /// Until the canary pauses at `step` (1-based) with `weight`% of the
    /// instances new, then each new instance's health check.
    Pause {
        #[serde(rename = "canary_step")]
        step: u32,
        weight: u8,
        #[serde(rename = "timeout_ms", with = "crate::units::duration_ms")]
        timeout: Duration,
    },
    /// The new instances' requests (log-cache, by process) against the old
    /// ones' and the app's before the deploy; a failure cancels.
    Judge {
        /// The canary step; none once the rollout is done.
        #[serde(rename = "canary_step")]
        step: Option<u32>,
        #[serde(rename = "up_to_ms", with = "crate::units::duration_ms")]
        up_to: Duration,
        min_requests: Option<u64>,
        max_error_rate: f64,
        max_p99_ratio: f64,
        #[serde(default)]
        last: bool,
    },
    /// `continue` past a pause.
    Continue {
        #[serde(rename = "canary_step")]
        step: u32,
    },
    /// Until CF finalizes the deployment: `DEPLOYED`, or why not.
    Rollout {
        #[serde(rename = "timeout_ms", with = "crate::units::duration_ms")]
        timeout: Duration,
    },
}

/// The steps of a native deploy of `file` with these hooks' plugins. A
/// rollback (`source` existing) stages and migrates nothing and goes back
/// as `cf rollback` does: a rolling deployment of the release's revision.
pub fn plan(
    file: &DeployFile,
    plugins: &BTreeMap<Hook, Vec<String>>,
    source: &super::Source,
) -> Vec<Step> {
    let rollback = matches!(source, super::Source::Existing(_));
    let hook = |hook: Hook, color: Option<Color>| Step::Hook {
        hook,
        color,
        plugins: plugins.get(&hook).cloned().unwrap_or_default(),
    };
    // The one app stands where a color would in a plugin's context.
    let app = Some(Color::Blue);
    let analysis = file.analysis();
    let mut steps = vec![
        Step::Validate,
        Step::AcquireLock,
        hook(Hook::PreDeploy, None),
    ];
    let migrate = file.migrate.as_ref().filter(|_| !rollback);
    if migrate.is_some() {
        steps.push(hook(Hook::MigrationSafetyCheck, None));
    }
    if let Some(a) = &analysis {
        steps.push(Step::Baseline { up_to: a.duration });
    }
    steps.push(hook(Hook::PrePush, app));
    if !rollback {
        steps.push(Step::Native(Native::Stage));
    }
    if let Some(m) = migrate {
        steps.push(Step::Native(Native::Task {
            command: m.command.clone(),
            contract: false,
        }));
    }
    let canary = file.strategy == Strategy::CfCanary && !rollback;
    steps.push(Step::Native(Native::Deployment {
        strategy: if canary { "canary" } else { "rolling" }.into(),
        steps: if canary { file.steps.clone() } else { vec![] },
        max_in_flight: file.max_in_flight.unwrap_or(1),
    }));
    let judge = |step: Option<u32>, last: bool| {
        analysis.as_ref().map(|a| {
            Step::Native(Native::Judge {
                step,
                up_to: a.duration,
                min_requests: a.min_requests,
                max_error_rate: a.max_error_rate,
                max_p99_ratio: a.max_p99_ratio,
                last,
            })
        })
    };
    if canary {
        for (i, &weight) in file.steps.iter().enumerate() {
            let step = i as u32 + 1;
            steps.push(Step::Native(Native::Pause {
                step,
                weight,
                timeout: file.health.timeout,
            }));
            steps.push(hook(Hook::HealthCheck, app));
            steps.extend(judge(Some(step), false));
            steps.push(Step::Native(Native::Continue { step }));
        }
    }
    steps.push(Step::Native(Native::Rollout {
        timeout: file.health.timeout,
    }));
    if !canary {
        steps.push(hook(Hook::HealthCheck, app));
    }
    steps.extend(judge(None, true));
    steps.push(hook(Hook::PostMap, app));
    if let Some(m) = migrate.filter(|m| !m.post_dirs.is_empty()) {
        steps.push(Step::Native(Native::Task {
            command: m.command.clone(),
            contract: true,
        }));
    }
    steps.extend([
        hook(Hook::PostDeploy, None),
        Step::RecordRelease,
        Step::ReleaseLock,
    ]);
    steps
}

impl Native {
    pub fn kind(&self) -> &'static str {
        match self {
            Native::Stage => "stage",
            Native::Task { .. } => "migrate-task",
            Native::Deployment { .. } => "deployment",
            Native::Pause { .. } => "pause",
            Native::Judge { .. } => "judge",
            Native::Continue { .. } => "continue",
            Native::Rollout { .. } => "rollout",
        }
    }
}

impl fmt::Display for Native {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |d: &Duration| crate::units::human_duration(*d);
        match self {
            Native::Stage => write!(
                f,
                "upload and stage a new droplet on the app (it runs nowhere yet)"
            ),
            Native::Task {
                command,
                contract: false,
            } => write!(
                f,
                "migrate once, as a task on the new droplet before any instance runs it: {command}"
            ),
            Native::Task {
                command,
                contract: true,
            } => write!(
                f,
                "migrate the contract phase, as a task, now that every instance runs the new \
                 release: {command}"
            ),
            Native::Deployment {
                strategy,
                steps,
                max_in_flight,
            } if steps.is_empty() => write!(
                f,
                "create Cloud Foundry's {strategy} deployment of the new droplet \
                 (max_in_flight {max_in_flight})"
            ),
            Native::Deployment {
                strategy,
                steps,
                max_in_flight,
            } => {
                let weights: Vec<String> = steps.iter().map(|w| format!("{w}%")).collect();
                write!(
                    f,
                    "create Cloud Foundry's {strategy} deployment of the new droplet, pausing \
                     with {} of the instances new (max_in_flight {max_in_flight})",
                    weights.join(", then ")
                )
            }
            Native::Pause {
                step,
                weight,
                timeout,
            } => write!(
                f,
                "canary step {step}: wait until CF pauses with {weight}% of the instances new, \
                 then probe each new instance (X-CF-Process-Instance) until healthy (up to {})",
                d(timeout)
            ),
            Native::Judge {
                step,
                up_to,
                min_requests,
                max_error_rate,
                max_p99_ratio,
                last,
            } => {
                let at = match step {
                    Some(s) => format!(" at canary step {s}"),
                    None => " once every instance is new".into(),
                };
                let until = match min_requests {
                    Some(n) => format!("{n} requests or {}", d(up_to)),
                    None => d(up_to),
                };
                write!(
                    f,
                    "analyze the new instances' live traffic{at} (log-cache, by process) against \
                     the app before the deploy and the old instances for up to {until}; cancel \
                     if the 5xx share rises by over {:.1} points or p99 over {max_p99_ratio}x",
                    max_error_rate * 100.0
                )?;
                if *last {
                    write!(f, "; not enough evidence fails here")?;
                }
                Ok(())
            }
            Native::Continue { step } => {
                write!(f, "continue the deployment past canary step {step}")
            }
            Native::Rollout { timeout } => write!(
                f,
                "wait until CF has replaced every instance and says DEPLOYED (each new instance \
                 healthy within {})",
                d(timeout)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(yaml: &str) -> DeployFile {
        DeployFile::parse(Path::new("bluegreen.yaml"), yaml).unwrap()
    }

    fn kinds(steps: &[Step]) -> Vec<&'static str> {
        steps.iter().map(Step::kind).collect()
    }

    #[test]
    fn a_canary_migrates_before_the_deployment_and_judges_every_pause() {
        let f = file(
            "app: shop\nplatform: cf\nstrategy: cf-canary\nsteps: [20, 50]\nmax_in_flight: 2\n\
             migrate: { command: bin/migrate, post_dirs: [db/post] }\n",
        );
        let steps = plan(&f, &BTreeMap::new(), &crate::deploy::plan::Source::New);
        assert_eq!(
            kinds(&steps),
            [
                "validate",
                "acquire-lock",
                "pre-deploy",
                "migration-safety-check",
                "baseline",
                "pre-push",
                "stage",
                "migrate-task",
                "deployment",
                "pause",
                "health-check",
                "judge",
                "continue",
                "pause",
                "health-check",
                "judge",
                "continue",
                "rollout",
                "judge",
                "post-map",
                "migrate-task",
                "post-deploy",
                "record-release",
                "release-lock",
            ]
        );
        assert!(steps.contains(&Step::Native(Native::Deployment {
            strategy: "canary".into(),
            steps: vec![20, 50],
            max_in_flight: 2,
        })));
        // Only the judge after the rollout decides on thin evidence.
        let last: Vec<bool> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Native(Native::Judge { last, .. }) => Some(*last),
                _ => None,
            })
            .collect();
        assert_eq!(last, [false, false, true]);
    }

    #[test]
    fn rolling_has_no_pauses_and_is_judged_once_deployed() {
        let steps = plan(
            &file("app: shop\nplatform: cf\nstrategy: cf-rolling\n"),
            &BTreeMap::new(),
            &crate::deploy::plan::Source::New,
        );
        let text = super::super::render(&steps);
        assert!(!text.contains("pause"), "{text}");
        assert!(text.contains("rolling deployment"), "{text}");
        // No analysis asked for: none, and no migration: no task.
        assert!(!kinds(&steps).contains(&"judge"), "{text}");
        assert!(!kinds(&steps).contains(&"migrate-task"), "{text}");
    }

    #[test]
    fn a_rollback_stages_and_migrates_nothing_and_rolls() {
        let f = file(
            "app: shop\nplatform: cf\nstrategy: cf-canary\nsteps: [50]\n\
             migrate: { command: bin/migrate, post_dirs: [db/post] }\n",
        );
        let steps = plan(
            &f,
            &BTreeMap::new(),
            &crate::deploy::plan::Source::Existing("v1".into()),
        );
        let k = kinds(&steps);
        for absent in ["stage", "migrate-task", "migration-safety-check", "pause"] {
            assert!(!k.contains(&absent), "{absent}: {k:?}");
        }
        assert!(steps.contains(&Step::Native(Native::Deployment {
            strategy: "rolling".into(),
            steps: vec![],
            max_in_flight: 1,
        })));
        assert!(k.contains(&"judge"), "judged once back: {k:?}");
    }

    #[test]
    fn native_steps_round_trip_through_the_journal() {
        let steps = plan(
            &file("app: shop\nplatform: cf\nstrategy: cf-canary\nsteps: [50]\n"),
            &BTreeMap::new(),
            &crate::deploy::plan::Source::New,
        );
        let json = serde_json::to_string(&steps).unwrap();
        let back: Vec<Step> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, steps);
    }
}
