//! CC's rule for one step of a rollout (`Actions::Scale` and the canary
//! plan of `DeploymentModel` in cloud_controller_ng), as pure functions of
//! what runs: the driver (`rollout.rs`) applies what they say, and the
//! tests here run them against a simulated supervisor.

use super::super::supervisor::{Member, State};

/// What a step aims at: `total` instances counting the new ones running,
/// `interim` of them new, `max_in_flight` new ones starting at once; at
/// the end, whether every old instance goes.
#[derive(Debug, PartialEq)]
pub struct Goal {
    pub total: u32,
    pub interim: u32,
    pub max_in_flight: u32,
    pub final_step: bool,
}

/// CC's `canary_step_plan`: per step, the new instances and the old ones
/// kept (one more than the rest, so the count never dips while the next
/// new one starts; none at 100%). No steps: one new instance beside all
/// the old ones.
pub fn canary_plan(steps: Option<&[u32]>, original: u32, web: Option<u32>) -> Vec<(u32, u32)> {
    let Some(steps) = steps else {
        return vec![(1, original)];
    };
    let instances = web.filter(|w| *w < original).unwrap_or(original);
    steps
        .iter()
        .map(|&weight| {
            let canary = ((instances as f64 * weight as f64 / 100.0).round() as u32).max(1);
            let old = if weight == 100 {
                0
            } else {
                (instances + 1).saturating_sub(canary)
            };
            (canary, old)
        })
        .collect()
}

/// What one tick does.
#[derive(Debug, Default, PartialEq)]
pub struct Step {
    /// Instances to stop, by key.
    pub stop: Vec<String>,
    /// Indices to start new instances at.
    pub start: Vec<u32>,
    /// The goal is met (what `stop` says stopped).
    pub finished: bool,
}

/// CC's `Scale`: old instances down to what the running new ones leave of
/// `total` (those not running first), then, unless the goal is met, new
/// ones up by `max_in_flight` while none is starting beyond it or failing.
pub fn plan(goal: &Goal, members: &[(Member, bool)]) -> Step {
    let new: Vec<&Member> = members.iter().filter(|m| m.1).map(|m| &m.0).collect();
    let mut old: Vec<&Member> = members.iter().filter(|m| !m.1).map(|m| &m.0).collect();
    let count = |s: State| new.iter().filter(|m| m.state == s).count() as u32;
    let (running, starting) = (count(State::Running), count(State::Starting));
    let failing = new.len() as u32 - running - starting;
    old.sort_by_key(|m| (m.state == State::Running, std::cmp::Reverse(m.index)));
    let keep_old = goal.total.saturating_sub(running) as usize;
    let finished = new.len() as u32 >= goal.interim && running >= goal.interim;
    let stop_old = if finished && goal.final_step {
        old.len()
    } else {
        old.len().saturating_sub(keep_old)
    };
    let mut step = Step {
        stop: old.iter().take(stop_old).map(|m| m.key.clone()).collect(),
        finished,
        ..Step::default()
    };
    if finished {
        if goal.final_step {
            // More new ones than wanted (a cancel finding extra): the
            // highest indices go.
            let mut extra: Vec<&&Member> = new.iter().collect();
            extra.sort_by_key(|m| (m.state == State::Running, std::cmp::Reverse(m.index)));
            let n = extra.len().saturating_sub(goal.interim as usize);
            step.stop
                .extend(extra.iter().take(n).map(|m| m.key.clone()));
        }
        return step;
    }
    if starting < goal.max_in_flight && failing == 0 {
        let want = (running + goal.max_in_flight).min(goal.interim);
        let missing = want.saturating_sub(new.len() as u32) as usize;
        let taken: Vec<u32> = new.iter().map(|m| m.index).collect();
        step.start = (0..).filter(|i| !taken.contains(i)).take(missing).collect();
    }
    step
}

#[cfg(test)]
mod tests;
