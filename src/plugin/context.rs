//! What the host hands a hook and what it gets back, as plain serde types.
//!
//! These mirror the WIT records in `wit/hooks.wit` but belong to the host:
//! the deploy executor builds them, `plugin run --context` reads them from
//! JSON or YAML, and `--json` output serializes them. `bindings.rs` converts
//! them to and from the generated types at the call boundary.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Blue,
    Green,
}

impl Color {
    pub fn name(self) -> &'static str {
        match self {
            Color::Blue => "blue",
            Color::Green => "green",
        }
    }

    pub fn other(self) -> Color {
        match self {
            Color::Blue => Color::Green,
            Color::Green => Color::Blue,
        }
    }
}

impl std::fmt::Display for Color {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Error,
}

/// The deploy a hook runs for; a plugin's own settings are added per call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeployInfo {
    pub id: String,
    pub app: String,
    pub release: String,
    pub previous_release: Option<String>,
    pub route_url: String,
}

impl Default for DeployInfo {
    fn default() -> Self {
        DeployInfo {
            id: "local-run".into(),
            app: "example".into(),
            release: "dev".into(),
            previous_release: None,
            route_url: "http://example.apps.localhost:8080".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Target {
    pub color: Color,
    pub app_name: String,
    pub candidate_url: String,
    pub first: bool,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            color: Color::Blue,
            app_name: "example-blue".into(),
            candidate_url: "http://127.0.0.1:8080".into(),
            first: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    pub path: String,
    pub version: String,
    #[serde(default = "expand")]
    pub phase: String,
    pub contents: String,
}

fn expand() -> String {
    "expand".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureInfo {
    pub step: String,
    #[serde(default)]
    pub color: Option<Color>,
    pub message: String,
}

/// Everything a hook may be given. Each hook reads the parts it needs; the
/// rest is ignored. This is also the `plugin run --context` file format.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HookContext {
    pub deploy: DeployInfo,
    /// For per-color hooks.
    pub target: Target,
    /// For `health-check`: 1 on the first call for a color.
    pub attempt: Option<u32>,
    /// For `migration-safety-check`.
    pub pending: Vec<Migration>,
    /// For `on-failure`.
    pub failure: Option<FailureInfo>,
    /// For `analyze`: the window's traffic of the candidate and the baseline.
    pub analysis: Option<AnalysisWindow>,
    /// For `approval`: the pause being asked about.
    pub pause: Option<PauseInfo>,
}

/// What the `approval` hook is asked about: one pause of a deploy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PauseInfo {
    /// As the deploy's output says it, e.g. `paused at 10%`.
    pub at: String,
    /// The canary step held, 1-based in `steps`.
    pub step: Option<u32>,
    pub weight_percent: u8,
    /// The color serving the new release.
    pub color: Color,
    /// Set when a failed analysis window paused the deploy (`on_fail:
    /// pause`): its verdict with the numbers. None: a `pause` step.
    pub failed_analysis: Option<String>,
    pub timed: bool,
    /// How long until the pause's own deadline.
    pub remaining_ms: u64,
    pub promote_command: String,
    pub resume_command: String,
    pub abort_command: String,
}

impl Default for PauseInfo {
    fn default() -> Self {
        PauseInfo {
            at: "paused at 10%".into(),
            step: Some(1),
            weight_percent: 10,
            color: Color::Green,
            failed_analysis: None,
            timed: false,
            remaining_ms: 24 * 3600 * 1000,
            promote_command: "bluegreen promote -f bluegreen.yaml".into(),
            resume_command: "bluegreen resume -f bluegreen.yaml".into(),
            abort_command: "bluegreen abort -f bluegreen.yaml".into(),
        }
    }
}

/// One color's requests over an analysis window, as the router (or
/// log-cache) saw them. Latencies run to the response's headers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Metrics {
    pub requests: u64,
    pub status_2xx: u64,
    pub status_3xx: u64,
    pub status_4xx: u64,
    /// 5xx answers, and requests the router could not deliver (502).
    pub status_5xx: u64,
    /// Percentiles in milliseconds; 0 when there were no requests.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
}

impl Metrics {
    /// The share of requests answered 5xx, 0 when there were none.
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.status_5xx as f64 / self.requests as f64
        }
    }
}

/// What the `analyze` hook judges: one window of live traffic.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisWindow {
    /// How long the window lasted.
    pub duration_ms: u64,
    /// The share of the route's requests meant for the candidate, 0-100.
    pub weight_percent: u8,
    /// Where the numbers come from: `router` (the local platform),
    /// `log-cache` (Cloud Foundry), or `probes` (health probes only).
    pub source: String,
    /// The color just mapped with the new release.
    pub candidate: Metrics,
    /// The other color over the same window, when it served.
    pub baseline: Option<Metrics>,
}

impl HookContext {
    /// A `--context` file's text: JSON when `path` ends in `.json`, else
    /// YAML. The error names the file and where in it.
    pub fn parse(path: &std::path::Path, text: &str) -> Result<HookContext, String> {
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(text).map_err(|e| e.to_string())
        } else {
            serde_yaml::from_str(text).map_err(|e| e.to_string())
        };
        parsed.map_err(|e| format!("{}: {e}", path.display()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "verdict", content = "detail")]
pub enum Verdict {
    Proceed,
    Block(String),
    RetryAfterMs(u32),
    /// `approval` only: the plugin has no say at this pause (it only told
    /// people); the other plugins or an operator decide.
    Abstain,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub rule: String,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    #[serde(default)]
    pub fix: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    #[serde(flatten)]
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    /// `approval` only: who decided and why, or what the pause waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The most text an outcome may carry (reason and findings together): the
/// host keeps outcomes in memory and prints them.
pub const OUTCOME_TEXT_CAP: usize = 16 << 20;

impl Outcome {
    /// Checks what the type system cannot: a veto must say why, a finding
    /// must name its rule, lines are 1-based, and the whole stays under
    /// `OUTCOME_TEXT_CAP`.
    pub fn validate(&self) -> Result<(), String> {
        let reason = match &self.verdict {
            Verdict::Block(r) => r.len(),
            _ => 0,
        } + self.message.as_ref().map_or(0, String::len);
        let text: usize = reason
            + self
                .findings
                .iter()
                .map(|f| {
                    f.rule.len()
                        + f.message.len()
                        + f.file.as_ref().map_or(0, String::len)
                        + f.fix.as_ref().map_or(0, String::len)
                })
                .sum::<usize>();
        if text > OUTCOME_TEXT_CAP {
            return Err(format!(
                "the outcome carries {} MiB of text ({} findings); the most is {} MiB",
                text >> 20,
                self.findings.len(),
                OUTCOME_TEXT_CAP >> 20
            ));
        }
        if let Verdict::Block(reason) = &self.verdict
            && reason.trim().is_empty()
        {
            return Err("`block` needs a reason, got an empty string".into());
        }
        for f in &self.findings {
            if f.rule.trim().is_empty() {
                return Err(format!(
                    "a finding has an empty `rule` (message: {:?})",
                    f.message
                ));
            }
            if f.line == Some(0) {
                return Err(format!(
                    "finding `{}` has line 0; lines are 1-based",
                    f.rule
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_files_default_every_part_and_reject_unknown_fields() {
        let ctx: HookContext =
            serde_yaml::from_str("target:\n  candidate_url: http://127.0.0.1:9\n").unwrap();
        assert_eq!(ctx.target.candidate_url, "http://127.0.0.1:9");
        assert_eq!(ctx.deploy, DeployInfo::default());
        let err = serde_yaml::from_str::<HookContext>("targte: {}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `targte`"), "{err}");
    }

    /// Defect 12 of «7 · Hardening»: findings had no size cap.
    #[test]
    fn defect_12_an_outcome_over_the_text_cap_is_a_bad_result() {
        let big = |n: usize| Outcome {
            verdict: Verdict::Proceed,
            findings: (0..n)
                .map(|_| Finding {
                    severity: Severity::Info,
                    rule: "r".into(),
                    message: "m".repeat(1 << 20),
                    file: None,
                    line: None,
                    fix: None,
                })
                .collect(),
            message: None,
        };
        assert_eq!(big(15).validate(), Ok(()));
        let err = big(17).validate().unwrap_err();
        assert!(err.contains("the most is 16 MiB"), "{err}");
    }

    #[test]
    fn outcomes_with_empty_reasons_rules_or_line_zero_are_invalid() {
        let finding = |rule: &str, line| Finding {
            severity: Severity::Info,
            rule: rule.into(),
            message: "m".into(),
            file: None,
            line,
            fix: None,
        };
        let ok = Outcome {
            verdict: Verdict::Proceed,
            findings: vec![finding("r", Some(1))],
            message: None,
        };
        assert_eq!(ok.validate(), Ok(()));
        let cases = [
            Outcome {
                verdict: Verdict::Block(" ".into()),
                findings: vec![],
                message: None,
            },
            Outcome {
                verdict: Verdict::Proceed,
                findings: vec![finding("", None)],
                message: None,
            },
            Outcome {
                verdict: Verdict::Proceed,
                findings: vec![finding("r", Some(0))],
                message: None,
            },
        ];
        for bad in cases {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
