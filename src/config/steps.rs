//! `steps` as written: canary percents with pauses among them
//! (`[10, pause, 50, {pause: 10m}, 100]`). A pause holds the release at the
//! step before it until an operator goes on (`bluegreen resume`, `promote`,
//! `abort`), or, timed, until its time is up. Parsed into the percents (what
//! every other part of a deploy reads, as before pauses existed) and where
//! the pauses fall among them.

use super::analysis::{Analysis, OnFail, Strategy};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// The longest a pause may last, timed or waiting for a command: a release
/// held longer than a day needs a new deploy, not a held lock.
pub const MAX_PAUSE: Duration = Duration::from_secs(24 * 3600);

/// A pause after the canary step `percents[after - 1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pause {
    pub after: usize,
    /// A timed pause goes on by itself after this long; an untimed one
    /// waits for a command (at most `MAX_PAUSE`).
    pub resume_after: Option<Duration>,
}

/// The `steps` list, split.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepList {
    pub percents: Vec<u8>,
    pub pauses: Vec<Pause>,
    /// What is wrong with the list, said by `validate` with the field
    /// (kept here so the error names `steps` like the other checks).
    invalid: Option<String>,
}

impl StepList {
    /// Notes the first thing wrong with the list.
    fn fail(&mut self, why: String) {
        self.invalid.get_or_insert(why);
    }

    /// The pause right after the `n`th percent step (1-based), if any.
    pub fn pause_after(&self, n: usize) -> Option<Pause> {
        self.pauses.iter().copied().find(|p| p.after == n)
    }

    /// Why the pauses cannot go where they are, if so.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(why) = &self.invalid {
            return Err(why.clone());
        }
        if self.pauses.iter().any(|p| p.after == 0) {
            return Err(
                "a pause holds the release at the step before it: put it after a percent, \
                 e.g. `[10, pause, 100]`"
                    .into(),
            );
        }
        if self.pauses.windows(2).any(|w| w[0].after == w[1].after) {
            return Err("two pauses in a row: one is enough".into());
        }
        Ok(())
    }
}

/// One entry as YAML gives it (`{pause: 10m, resume: x}` is refused: a
/// misspelt key must not be ignored).
#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Raw {
    Number(i64),
    Word(String),
    Timed { pause: String },
}

impl<'de> Deserialize<'de> for StepList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StepList, D::Error> {
        let raw = Vec::<Raw>::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "steps are percents from 1 to 100, `pause`, or `{pause: 10m}`, e.g. \
                 `[10, pause, 50, {pause: 10m}, 100]`",
            )
        })?;
        let mut list = StepList::default();
        for entry in raw {
            match entry {
                Raw::Number(n) if (1..=100).contains(&n) => list.percents.push(n as u8),
                // 0 and 101.. are the percent checks' to word (`validate`).
                Raw::Number(n) if (0..=255).contains(&n) => list.percents.push(n as u8),
                Raw::Number(n) => list.fail(format!("{n} is not a percent from 1 to 100")),
                Raw::Word(w) if w == "pause" => list.pauses.push(Pause {
                    after: list.percents.len(),
                    resume_after: None,
                }),
                Raw::Word(w) => list.fail(format!(
                    "`{w}` is not a step: write a percent, `pause`, or `{{pause: 10m}}`"
                )),
                Raw::Timed { pause } => match humantime::parse_duration(&pause) {
                    Ok(t) if !t.is_zero() && t <= MAX_PAUSE => list.pauses.push(Pause {
                        after: list.percents.len(),
                        resume_after: Some(t),
                    }),
                    _ => list.fail(format!(
                        "`{{pause: {pause}}}` needs a duration above zero and at most 24h, \
                         e.g. `{{pause: 10m}}`"
                    )),
                },
            }
        }
        Ok(list)
    }
}

/// Checks the pauses and `analysis.on_fail` for `strategy`: a field name
/// and why, for `ConfigError::Field`.
pub fn validate(
    strategy: Strategy,
    steps: &StepList,
    analysis: Option<&Analysis>,
) -> Result<(), (&'static str, String)> {
    steps.validate().map_err(|why| ("steps", why))?;
    if !steps.pauses.is_empty() && strategy != Strategy::Canary {
        return Err((
            "steps",
            format!(
                "pauses need `strategy: canary` (with `{}`, remove them)",
                strategy.name()
            ),
        ));
    }
    if analysis.is_some_and(|a| a.on_fail == OnFail::Pause) && strategy.native() {
        return Err((
            "analysis.on_fail",
            format!(
                "`pause` holds two colors where they are; `{}` deploys one app through CF's \
                 deployment: remove it, or use `canary`",
                strategy.name()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> StepList {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn pauses_fall_between_the_percents() {
        let s = parse("[10, pause, 50, {pause: 10m}, 100]");
        assert_eq!(s.percents, [10, 50, 100]);
        assert_eq!(
            s.pauses,
            [
                Pause {
                    after: 1,
                    resume_after: None
                },
                Pause {
                    after: 2,
                    resume_after: Some(Duration::from_secs(600))
                }
            ]
        );
        assert_eq!(s.validate(), Ok(()));
        assert_eq!(
            s.pause_after(2).unwrap().resume_after.unwrap().as_secs(),
            600
        );
        assert!(s.pause_after(3).is_none());
        // Without pauses, as before.
        assert_eq!(parse("[10, 50, 100]").percents, [10, 50, 100]);
    }

    #[test]
    fn misplaced_or_malformed_pauses_say_how_to_write_them() {
        for (yaml, want) in [
            ("[pause, 10, 100]", "after a percent"),
            ("[10, pause, pause, 100]", "in a row"),
            ("[10, {pause: 0s}, 100]", "above zero"),
            ("[10, {pause: 2d}, 100]", "at most 24h"),
            ("[10, wait, 100]", "`wait` is not a step"),
            ("[10, 300, 100]", "300 is not a percent"),
        ] {
            let e = parse(yaml).validate().unwrap_err();
            assert!(e.contains(want), "{yaml}: {e}");
        }
        let pauses = parse("[10, pause, 100]");
        assert_eq!(validate(Strategy::Canary, &pauses, None), Ok(()));
        let (field, e) = validate(Strategy::CfCanary, &pauses, None).unwrap_err();
        assert_eq!(field, "steps", "{e}");
        let on_fail: Analysis = serde_yaml::from_str("on_fail: pause").unwrap();
        assert_eq!(on_fail.on_fail, OnFail::Pause);
        let (field, _) =
            validate(Strategy::CfRolling, &StepList::default(), Some(&on_fail)).unwrap_err();
        assert_eq!(field, "analysis.on_fail");
        let e = serde_yaml::from_str::<StepList>("[10, {wait: 1m}]").unwrap_err();
        assert!(e.to_string().contains("`{pause: 10m}`"), "{e}");
    }
}
