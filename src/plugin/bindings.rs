//! The one place that generates host bindings from `wit/`, and the
//! conversions between them and the host's own types in `context.rs`.

use super::context as host;

wasmtime::component::bindgen!({
    world: "all-hooks",
    path: "wit",
    exports: { default: async },
});

pub use self::bluegreen::hooks::types as wit;
pub use self::exports::bluegreen::hooks;

impl From<host::Color> for wit::Color {
    fn from(c: host::Color) -> Self {
        match c {
            host::Color::Blue => wit::Color::Blue,
            host::Color::Green => wit::Color::Green,
        }
    }
}

impl From<wit::Severity> for host::Severity {
    fn from(s: wit::Severity) -> Self {
        match s {
            wit::Severity::Info => host::Severity::Info,
            wit::Severity::Warning => host::Severity::Warning,
            wit::Severity::Error => host::Severity::Error,
        }
    }
}

pub fn deploy(d: &host::DeployInfo, settings: &[(String, String)]) -> wit::Deploy {
    wit::Deploy {
        id: d.id.clone(),
        app: d.app.clone(),
        release: d.release.clone(),
        previous_release: d.previous_release.clone(),
        route_url: d.route_url.clone(),
        settings: settings.to_vec(),
    }
}

pub fn target(t: &host::Target) -> wit::Target {
    wit::Target {
        color: t.color.into(),
        app_name: t.app_name.clone(),
        candidate_url: t.candidate_url.clone(),
        first: t.first,
    }
}

pub fn migration(m: &host::Migration) -> hooks::migration_safety_check::Migration {
    hooks::migration_safety_check::Migration {
        path: m.path.clone(),
        version: m.version.clone(),
        phase: m.phase.clone(),
        contents: m.contents.clone(),
    }
}

pub fn failure(f: &host::FailureInfo) -> wit::Failure {
    wit::Failure {
        step: f.step.clone(),
        color: f.color.map(Into::into),
        message: f.message.clone(),
    }
}

pub fn metrics(m: &host::Metrics) -> hooks::analyze::Metrics {
    hooks::analyze::Metrics {
        requests: m.requests,
        status_2xx: m.status_2xx,
        status_3xx: m.status_3xx,
        status_4xx: m.status_4xx,
        status_5xx: m.status_5xx,
        p50_ms: m.p50_ms,
        p90_ms: m.p90_ms,
        p99_ms: m.p99_ms,
    }
}

pub fn window(w: &host::AnalysisWindow) -> hooks::analyze::Window {
    hooks::analyze::Window {
        duration_ms: w.duration_ms,
        weight_percent: w.weight_percent,
        source: w.source.clone(),
        candidate: metrics(&w.candidate),
        baseline: w.baseline.as_ref().map(metrics),
    }
}

pub fn pause(p: &host::PauseInfo) -> hooks::approval::Pause {
    use hooks::approval::PauseReason;
    hooks::approval::Pause {
        at: p.at.clone(),
        step: p.step,
        weight_percent: p.weight_percent,
        color: p.color.into(),
        reason: match &p.failed_analysis {
            None => PauseReason::Scheduled,
            Some(why) => PauseReason::FailedAnalysis(why.clone()),
        },
        timed: p.timed,
        remaining_ms: p.remaining_ms,
        promote_command: p.promote_command.clone(),
        resume_command: p.resume_command.clone(),
        abort_command: p.abort_command.clone(),
    }
}

fn finding(f: wit::Finding) -> host::Finding {
    host::Finding {
        severity: f.severity.into(),
        rule: f.rule,
        message: f.message,
        file: f.file,
        line: f.line,
        fix: f.fix,
    }
}

impl From<hooks::approval::Answer> for host::Outcome {
    fn from(a: hooks::approval::Answer) -> Self {
        use hooks::approval::Decision;
        host::Outcome {
            verdict: match a.decision {
                Decision::Proceed => host::Verdict::Proceed,
                Decision::Block(reason) => host::Verdict::Block(reason),
                Decision::RetryAfterMs(ms) => host::Verdict::RetryAfterMs(ms),
                Decision::Abstain => host::Verdict::Abstain,
            },
            findings: a.findings.into_iter().map(finding).collect(),
            message: Some(a.message).filter(|m| !m.is_empty()),
        }
    }
}

impl From<wit::Outcome> for host::Outcome {
    fn from(o: wit::Outcome) -> Self {
        host::Outcome {
            verdict: match o.verdict {
                wit::Verdict::Proceed => host::Verdict::Proceed,
                wit::Verdict::Block(reason) => host::Verdict::Block(reason),
                wit::Verdict::RetryAfterMs(ms) => host::Verdict::RetryAfterMs(ms),
            },
            findings: o.findings.into_iter().map(finding).collect(),
            message: None,
        }
    }
}
