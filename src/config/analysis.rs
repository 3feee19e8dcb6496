//! How a deploy hands traffic to the new release and judges it on that
//! traffic: `strategy` (blue-green, or canary `steps`) and `analysis` (the
//! window watched after each map or step, and the limits that roll a color
//! back). Kept apart from the rest of the deploy file because these are
//! the fields a team tunes after its first bad release.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Each color leaves the route, takes the release, and comes back whole.
    #[default]
    BlueGreen,
    /// The first color takes the release and then a growing share of the
    /// route (`steps`), judged at each step, before the other color follows.
    Canary,
    /// One app, through Cloud Foundry's own canary deployment: `steps` are
    /// its instance weights, each step judged, then `continue` or `cancel`.
    CfCanary,
    /// One app, through Cloud Foundry's own rolling deployment
    /// (`max_in_flight` new instances at a time), judged once it is done.
    CfRolling,
}

impl Strategy {
    /// Through Cloud Foundry's deployment object, one app, no colors.
    pub fn native(self) -> bool {
        matches!(self, Strategy::CfCanary | Strategy::CfRolling)
    }

    pub fn name(self) -> &'static str {
        match self {
            Strategy::BlueGreen => "blue-green",
            Strategy::Canary => "canary",
            Strategy::CfCanary => "cf-canary",
            Strategy::CfRolling => "cf-rolling",
        }
    }
}

/// What a native strategy does on a foundation that cannot run it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Fallback {
    /// Deploy with two colors instead (`cf-canary` as `canary`, with the
    /// same steps as route shares; `cf-rolling` as `blue-green`), and say so.
    #[default]
    BlueGreen,
    /// Refuse: this app deploys through CF's deployments or not at all.
    None,
}

#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Analysis {
    /// How long each window lasts at most (above zero, at most 1h).
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "super::schema::HumanDuration")]
    pub duration: Duration,
    /// A window closes early once the candidate served this many requests
    /// (default: it lasts `duration`).
    #[schemars(range(min = 1))]
    pub min_requests: Option<u64>,
    /// How far the candidate's 5xx share may exceed the baseline's
    /// (`0.01` or `1%`); without a baseline, its own share.
    #[serde(deserialize_with = "share")]
    #[schemars(with = "super::schema::Share")]
    pub max_error_rate: f64,
    /// How many times the baseline's p99 the candidate's may reach (1 or
    /// more).
    #[schemars(range(min = 1.0))]
    pub max_p99_ratio: f64,
    /// p99s under this are never a reason to roll back (noise).
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "super::schema::HumanDuration")]
    pub p99_floor: Duration,
    /// The longest a window may grow when `analyze` plugins ask to watch
    /// longer (`retry-after`); at least `duration`.
    #[serde(with = "crate::config::duration")]
    #[schemars(with = "super::schema::HumanDuration")]
    pub max_duration: Duration,
    /// The most 5xx any release may answer, whatever the other color and
    /// the route before the deploy did (`0.1` or `10%`; under 100%).
    #[serde(deserialize_with = "share")]
    #[schemars(with = "super::schema::ShareBelowOne")]
    pub max_error_rate_abs: f64,
    /// An SLO: at most 1% of the judged color's requests may be slower
    /// (default: none).
    #[serde(with = "crate::config::duration::option")]
    #[schemars(with = "Option<super::schema::HumanDuration>")]
    pub max_p99: Option<Duration>,
    /// How sure a rollback must be: false rollbacks of a good release stay
    /// under `1 - confidence` (0.5 to 0.9999).
    #[schemars(range(min = 0.5, max = 0.9999))]
    pub confidence: f64,
    /// What a window that could not decide (too few requests) does:
    /// `fail` stops the deploy, `warn` goes on. Default: `fail` at the step
    /// that gives the new release all traffic, `warn` before it.
    pub on_inconclusive: Option<Inconclusive>,
    /// Synthetic requests to the judged color's own URL during each window,
    /// for apps with too little traffic to judge.
    pub load: Option<Load>,
    /// What a failed window does: `rollback` (default), or `pause`: the
    /// release stays where it is until an operator runs `bluegreen resume`,
    /// `promote` or `abort` (a canary can also pause at chosen `steps`).
    pub on_fail: OnFail,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnFail {
    /// Roll the color back to its previous release.
    #[default]
    Rollback,
    /// Hold the release where it is until `bluegreen resume`, `promote` or
    /// `abort`.
    Pause,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Inconclusive {
    /// Stop the deploy and roll back.
    Fail,
    /// Say so and go on.
    Warn,
}

/// A bounded synthetic request mix, as Flagger's load tester sends.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Paths requested in turn, each starting with `/` (default: the health
    /// path).
    #[serde(default)]
    #[schemars(inner(pattern(r"^/")))]
    pub paths: Vec<String>,
    /// The HTTP method of the synthetic requests.
    #[serde(default = "Load::default_method")]
    #[schemars(extend("enum" = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]))]
    pub method: String,
    /// Requests per second, from 1 to 1000.
    #[serde(default = "Load::default_rate")]
    #[schemars(range(min = 1, max = 1000))]
    pub rate: u32,
}

impl Load {
    fn default_method() -> String {
        "GET".into()
    }
    fn default_rate() -> u32 {
        20
    }
}

impl Default for Analysis {
    fn default() -> Self {
        Analysis {
            duration: Duration::from_secs(60),
            min_requests: None,
            max_error_rate: 0.01,
            max_p99_ratio: 2.0,
            p99_floor: Duration::from_millis(20),
            max_duration: Duration::from_secs(600),
            max_error_rate_abs: 0.10,
            max_p99: None,
            confidence: 0.99,
            on_inconclusive: None,
            load: None,
            on_fail: OnFail::Rollback,
        }
    }
}

/// `0.05` or `"5%"`.
fn share<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Share {
        Number(f64),
        Text(String),
    }
    let v = match Share::deserialize(d)? {
        Share::Number(n) => n,
        Share::Text(t) => {
            let n = t.trim().strip_suffix('%').ok_or_else(|| {
                serde::de::Error::custom(format!("`{t}` is not a share: write `0.01` or `1%`"))
            })?;
            n.trim().parse::<f64>().map_err(|_| {
                serde::de::Error::custom(format!("`{t}` is not a share: write `0.01` or `1%`"))
            })? / 100.0
        }
    };
    if !(0.0..=1.0).contains(&v) {
        return Err(serde::de::Error::custom(format!(
            "{v} is not a share between 0 and 1: write `0.01` or `1%` for one percent"
        )));
    }
    Ok(v)
}

/// Checks what serde cannot: a field name and why, for `ConfigError::Field`.
pub fn validate(
    strategy: Strategy,
    steps: &[u8],
    analysis: Option<&Analysis>,
) -> Result<(), (&'static str, String)> {
    match strategy {
        Strategy::BlueGreen if !steps.is_empty() => {
            return Err((
                "steps",
                "canary steps need `strategy: canary`; add it, or remove `steps`".into(),
            ));
        }
        Strategy::Canary if steps.is_empty() => {
            return Err((
                "steps",
                "`strategy: canary` needs steps, the first color's share of requests in \
                 percent, e.g. `steps: [10, 50, 100]`"
                    .into(),
            ));
        }
        Strategy::CfCanary if steps.is_empty() => {
            return Err((
                "steps",
                "`strategy: cf-canary` needs steps, the share of the app's instances on the \
                 new release at each pause, e.g. `steps: [20, 50]`"
                    .into(),
            ));
        }
        Strategy::CfRolling if !steps.is_empty() => {
            return Err((
                "steps",
                "`strategy: cf-rolling` has no steps (CF replaces instances `max_in_flight` at \
                 a time); use `strategy: cf-canary` for steps, or remove `steps`"
                    .into(),
            ));
        }
        _ => {}
    }
    if strategy == Strategy::CfCanary {
        // CF's canary rules: weights 1-100, growing; after the last pause a
        // `continue` rolls out the rest, so the last need not be 100.
        if steps.iter().any(|&p| p == 0 || p > 100) {
            return Err((
                "steps",
                "each step is a share of instances from 1 to 100".into(),
            ));
        }
        if steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(("steps", "steps must grow, e.g. `[20, 50]`".into()));
        }
    } else if !steps.is_empty() {
        if steps.iter().any(|&p| p == 0 || p > 100) {
            return Err(("steps", "each step is a percent from 1 to 100".into()));
        }
        if steps.windows(2).any(|w| w[0] >= w[1]) {
            return Err(("steps", "steps must grow, e.g. `[10, 50, 100]`".into()));
        }
        if steps.last() != Some(&100) {
            return Err((
                "steps",
                "the last step must be 100: the new release ends up serving every request".into(),
            ));
        }
    }
    if let Some(a) = analysis {
        if a.duration.is_zero() || a.duration > Duration::from_secs(3600) {
            return Err((
                "analysis.duration",
                "must be above zero and at most 1h".into(),
            ));
        }
        if a.max_duration < a.duration {
            return Err((
                "analysis.max_duration",
                "must be at least `analysis.duration`".into(),
            ));
        }
        if !(a.max_p99_ratio >= 1.0 && a.max_p99_ratio.is_finite()) {
            return Err((
                "analysis.max_p99_ratio",
                format!(
                    "{} would roll back a release as fast as the old one; write 1.5 or more",
                    a.max_p99_ratio
                ),
            ));
        }
        if a.max_error_rate_abs >= 1.0 {
            return Err((
                "analysis.max_error_rate_abs",
                "a ceiling of 100% would pass a release answering only 5xx; write 50% or less"
                    .into(),
            ));
        }
        if !(0.5..=0.9999).contains(&a.confidence) {
            return Err((
                "analysis.confidence",
                format!(
                    "{} is not a confidence between 0.5 and 0.9999; 0.99 keeps false rollbacks \
                     under 1%",
                    a.confidence
                ),
            ));
        }
        if let Some(load) = &a.load {
            if load.rate == 0 || load.rate > 1000 {
                return Err((
                    "analysis.load.rate",
                    "requests per second from 1 to 1000".into(),
                ));
            }
            if !["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"].contains(&load.method.as_str())
            {
                return Err((
                    "analysis.load.method",
                    format!(
                        "`{}` is not GET, HEAD, POST, PUT, DELETE or OPTIONS",
                        load.method
                    ),
                ));
            }
            if let Some(bad) = load.paths.iter().find(|p| !p.starts_with('/')) {
                return Err((
                    "analysis.load.paths",
                    format!("`{bad}` must start with `/` (a path on the app's own URL)"),
                ));
            }
        }
        if a.min_requests == Some(0) {
            return Err((
                "analysis.min_requests",
                "0 would judge a window with no requests; leave it out to watch for `duration`"
                    .into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_read_as_numbers_or_percents() {
        let a: Analysis = serde_yaml::from_str("max_error_rate: 2%").unwrap();
        assert!((a.max_error_rate - 0.02).abs() < 1e-12);
        let a: Analysis = serde_yaml::from_str("max_error_rate: 0.005").unwrap();
        assert!((a.max_error_rate - 0.005).abs() < 1e-12);
        for bad in [
            "max_error_rate: 5",
            "max_error_rate: five",
            "max_error_rate: 150%",
        ] {
            let e = serde_yaml::from_str::<Analysis>(bad)
                .unwrap_err()
                .to_string();
            assert!(e.contains("`1%`"), "{bad}: {e}");
        }
    }

    #[test]
    fn steps_must_grow_to_100_under_canary() {
        use Strategy::*;
        assert!(validate(Canary, &[10, 50, 100], None).is_ok());
        assert!(validate(BlueGreen, &[], None).is_ok());
        for (s, steps) in [
            (Canary, &[][..]),
            (BlueGreen, &[10, 100][..]),
            (Canary, &[50, 10, 100][..]),
            (Canary, &[10, 10, 100][..]),
            (Canary, &[10, 50][..]),
            (Canary, &[0, 100][..]),
        ] {
            let (field, _) = validate(s, steps, None).unwrap_err();
            assert_eq!(field, "steps", "{s:?} {steps:?}");
        }
        let thin = Analysis {
            min_requests: Some(0),
            ..Analysis::default()
        };
        assert_eq!(
            validate(Canary, &[100], Some(&thin)).unwrap_err().0,
            "analysis.min_requests"
        );
    }
}
