//! The decision itself, pure: limits, one window and the attempt in, an
//! outcome out. Kept apart from the hook glue so it is tested natively.

use crate::settings::Limits;
use bluegreen_plugin::analyze::{Finding, Metrics, Outcome, Window};

/// How long the host should watch more when the window was too thin.
pub const THIN_RETRY_MS: u32 = 1000;
/// From this attempt on, a thin window is judged on what it has.
pub const THIN_MAX_ATTEMPTS: u32 = 10;

/// A limit the candidate broke: its rule and the numbers.
struct Broken {
    rule: &'static str,
    message: String,
}

pub fn judge(limits: &Limits, w: &Window, attempt: u32) -> Result<Outcome, String> {
    check_numbers(w)?;
    let c = &w.candidate;
    // A baseline that served nothing is no baseline: its "0%" means nothing.
    let base = w.baseline.as_ref().filter(|b| b.requests > 0);
    let thin = c.requests == 0 || c.requests < limits.min_requests;
    if thin && attempt < THIN_MAX_ATTEMPTS {
        return Ok(Outcome::retry_after_ms(THIN_RETRY_MS).with(Finding::info(
            "thin-window",
            format!(
                "{} candidate requests in {} ms at {}% weight, need {}: watching longer (attempt {attempt} of {THIN_MAX_ATTEMPTS})",
                c.requests, w.duration_ms, w.weight_percent, limits.min_requests.max(1)
            ),
        )));
    }
    let mut broken = Vec::new();
    let mut notes = Vec::new();
    if thin {
        notes.push(Finding::warning(
            "thin-window",
            format!(
                "only {} candidate requests in {} ms after {attempt} attempts (need {}): the window was too thin to judge{}",
                c.requests,
                w.duration_ms,
                limits.min_requests.max(1),
                if c.requests == 0 { "; no traffic reached the candidate" } else { " latency" }
            ),
        ));
    }
    if c.requests > 0 {
        errors(limits, c, base, &mut broken, &mut notes);
    }
    // Percentiles over a thin window are noise; its errors are not.
    if !thin {
        latency(limits, c, base, &mut broken, &mut notes);
    }
    if broken.is_empty() {
        let mut outcome = Outcome::proceed();
        outcome.findings = notes;
        return Ok(outcome);
    }
    let reason: Vec<&str> = broken.iter().map(|b| b.message.as_str()).collect();
    let mut outcome = Outcome::block(reason.join("; "));
    outcome.findings = broken.into_iter().map(|b| Finding::error(b.rule, b.message)).collect();
    outcome.findings.extend(notes);
    Ok(outcome)
}

/// The candidate's 5xx share against the baseline's plus the limit.
fn errors(
    limits: &Limits,
    c: &Metrics,
    base: Option<&Metrics>,
    broken: &mut Vec<Broken>,
    notes: &mut Vec<Finding>,
) {
    let rate = |m: &Metrics| m.error_rate().unwrap_or(0.0);
    let candidate = format!("candidate 5xx {} ({}/{})", pct(rate(c)), c.status_5xx, c.requests);
    let (message, over) = match base {
        Some(b) => (
            format!(
                "{candidate} vs baseline {} ({}/{}); limit +{}",
                pct(rate(b)),
                b.status_5xx,
                b.requests,
                pct(limits.max_error_rate)
            ),
            rate(c) - rate(b) > limits.max_error_rate + 1e-12,
        ),
        None => (
            format!("{candidate}, no baseline to compare; limit {}", pct(limits.max_error_rate)),
            rate(c) > limits.max_error_rate + 1e-12,
        ),
    };
    if over {
        broken.push(Broken { rule: "error-rate", message });
    } else {
        notes.push(Finding::info("error-rate", message));
    }
    if let Some(b) = base
        && rate(b) > limits.max_error_rate
    {
        notes.push(Finding::warning(
            "baseline-errors",
            format!(
                "the baseline fails too: 5xx {} ({}/{}); a failure both colors share is not the release's, so it does not block it",
                pct(rate(b)),
                b.status_5xx,
                b.requests
            ),
        ));
    }
}

/// The candidate's p99 against the absolute SLO and the baseline's p99.
fn latency(
    limits: &Limits,
    c: &Metrics,
    base: Option<&Metrics>,
    broken: &mut Vec<Broken>,
    notes: &mut Vec<Finding>,
) {
    if let Some(slo) = limits.max_p99_ms {
        let message = format!("candidate p99 {} against the SLO of {}", ms(c.p99_ms), ms(slo));
        if c.p99_ms > slo {
            broken.push(Broken { rule: "p99-slo", message });
        } else {
            notes.push(Finding::info("p99-slo", message));
        }
    }
    let Some(b) = base.filter(|b| b.p99_ms > 0.0) else {
        notes.push(Finding::info(
            "p99-ratio",
            format!("candidate p99 {}; no baseline p99 to compare", ms(c.p99_ms)),
        ));
        return;
    };
    let ratio = c.p99_ms / b.p99_ms;
    if c.p99_ms < limits.p99_floor_ms {
        notes.push(Finding::info(
            "p99-ratio",
            format!(
                "candidate p99 {} vs baseline {} ({ratio:.1}x): under the {} floor, the ratio is not checked",
                ms(c.p99_ms),
                ms(b.p99_ms),
                ms(limits.p99_floor_ms)
            ),
        ));
        return;
    }
    let message = format!(
        "candidate p99 {} is {ratio:.1}x the baseline's {}; limit {:.1}x",
        ms(c.p99_ms),
        ms(b.p99_ms),
        limits.max_p99_ratio
    );
    if ratio > limits.max_p99_ratio {
        broken.push(Broken { rule: "p99-ratio", message });
    } else {
        notes.push(Finding::info("p99-ratio", message));
    }
}

/// Numbers no router produces would make every comparison false (NaN) or
/// every share wrong: that is the host's malfunction, not a verdict.
fn check_numbers(w: &Window) -> Result<(), String> {
    let sides = std::iter::once(("candidate", &w.candidate))
        .chain(w.baseline.as_ref().map(|b| ("baseline", b)));
    for (side, m) in sides {
        for (name, v) in [("p50", m.p50_ms), ("p90", m.p90_ms), ("p99", m.p99_ms)] {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("the window's {side} {name} is {v} ms, not a latency"));
            }
        }
        if m.status_5xx > m.requests {
            return Err(format!(
                "the window's {side} has {} 5xx answers out of {} requests",
                m.status_5xx, m.requests
            ));
        }
    }
    Ok(())
}

/// A share as a percentage: one decimal, two when one would show 0.0 for a
/// share that is not zero.
fn pct(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 0.05 { format!("{p:.2}%") } else { format!("{p:.1}%") }
}

fn ms(v: f64) -> String {
    if v >= 10.0 { format!("{v:.0} ms") } else { format!("{v:.1} ms") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bluegreen_plugin::analyze::{Severity, Verdict};

    fn m(requests: u64, status_5xx: u64, p99_ms: f64) -> Metrics {
        Metrics {
            requests,
            status_2xx: requests - status_5xx,
            status_3xx: 0,
            status_4xx: 0,
            status_5xx,
            p50_ms: p99_ms / 4.0,
            p90_ms: p99_ms / 2.0,
            p99_ms,
        }
    }

    fn window(candidate: Metrics, baseline: Option<Metrics>) -> Window {
        Window {
            duration_ms: 10_000,
            weight_percent: 50,
            source: "router".into(),
            candidate,
            baseline,
        }
    }

    fn run(w: Window, attempt: u32) -> Outcome {
        judge(&Limits::default(), &w, attempt).unwrap()
    }

    fn rules(o: &Outcome, severity: Severity) -> Vec<&str> {
        o.findings.iter().filter(|f| f.severity == severity).map(|f| f.rule.as_str()).collect()
    }

    #[test]
    fn a_good_window_proceeds_with_the_numbers() {
        let o = run(window(m(500, 1, 80.0), Some(m(480, 0, 70.0))), 1);
        assert_eq!(o.verdict, Verdict::Proceed);
        assert_eq!(rules(&o, Severity::Info), ["error-rate", "p99-ratio"]);
        assert_eq!(
            o.findings[0].message,
            "candidate 5xx 0.2% (1/500) vs baseline 0.0% (0/480); limit +1.0%"
        );
        assert_eq!(
            o.findings[1].message,
            "candidate p99 80 ms is 1.1x the baseline's 70 ms; limit 2.0x"
        );
    }

    #[test]
    fn a_failing_candidate_blocks_with_the_numbers() {
        let o = run(window(m(500, 26, 80.0), Some(m(480, 0, 70.0))), 1);
        assert_eq!(
            o.verdict,
            Verdict::Block(
                "candidate 5xx 5.2% (26/500) vs baseline 0.0% (0/480); limit +1.0%".into()
            )
        );
        assert_eq!(rules(&o, Severity::Error), ["error-rate"]);
    }

    #[test]
    fn the_error_limit_is_relative_to_the_baseline_and_inclusive() {
        // Both fail alike: not the release's fault, but said.
        let o = run(window(m(500, 25, 80.0), Some(m(500, 25, 80.0))), 1);
        assert_eq!(o.verdict, Verdict::Proceed);
        assert_eq!(rules(&o, Severity::Warning), ["baseline-errors"]);
        // Exactly at baseline + limit passes; one more error does not.
        assert_eq!(
            run(window(m(100, 6, 80.0), Some(m(100, 5, 80.0))), 1).verdict,
            Verdict::Proceed
        );
        let o = run(window(m(100, 7, 80.0), Some(m(100, 5, 80.0))), 1);
        assert!(matches!(o.verdict, Verdict::Block(_)), "{o:?}");
        // No baseline: the limit is absolute.
        let o = run(window(m(100, 2, 80.0), None), 1);
        assert_eq!(
            o.verdict,
            Verdict::Block("candidate 5xx 2.0% (2/100), no baseline to compare; limit 1.0%".into())
        );
        // A baseline that served nothing counts as none.
        let o = run(window(m(100, 2, 80.0), Some(m(0, 0, 0.0))), 1);
        assert!(matches!(&o.verdict, Verdict::Block(r) if r.contains("no baseline")), "{o:?}");
    }

    #[test]
    fn a_slow_candidate_blocks_above_the_floor_only() {
        let o = run(window(m(500, 0, 300.0), Some(m(480, 0, 100.0))), 1);
        assert_eq!(
            o.verdict,
            Verdict::Block("candidate p99 300 ms is 3.0x the baseline's 100 ms; limit 2.0x".into())
        );
        assert_eq!(rules(&o, Severity::Error), ["p99-ratio"]);
        // 15 ms against 3 ms is 5x, but under the 20 ms floor.
        let o = run(window(m(500, 0, 15.0), Some(m(480, 0, 3.0))), 1);
        assert_eq!(o.verdict, Verdict::Proceed);
        assert!(o.findings[1].message.contains("not checked"), "{o:?}");
    }

    #[test]
    fn the_absolute_slo_and_every_broken_limit_are_named() {
        let limits = Limits { max_p99_ms: Some(250.0), ..Limits::default() };
        let o = judge(&limits, &window(m(500, 30, 400.0), Some(m(480, 0, 100.0))), 1).unwrap();
        assert_eq!(rules(&o, Severity::Error), ["error-rate", "p99-slo", "p99-ratio"]);
        let Verdict::Block(reason) = &o.verdict else { panic!("{o:?}") };
        assert!(reason.contains("candidate p99 400 ms against the SLO of 250 ms"), "{reason}");
        let ok = judge(&limits, &window(m(500, 0, 200.0), Some(m(480, 0, 150.0))), 1).unwrap();
        assert_eq!(ok.verdict, Verdict::Proceed);
    }

    #[test]
    fn a_thin_window_retries_then_proceeds_with_a_warning() {
        let thin = window(m(12, 0, 80.0), Some(m(400, 0, 70.0)));
        for attempt in 1..THIN_MAX_ATTEMPTS {
            let o = run(thin.clone(), attempt);
            assert_eq!(o.verdict, Verdict::RetryAfterMs(THIN_RETRY_MS), "attempt {attempt}");
        }
        let o = run(thin, THIN_MAX_ATTEMPTS);
        assert_eq!(o.verdict, Verdict::Proceed);
        assert_eq!(rules(&o, Severity::Warning), ["thin-window"]);
        assert!(o.findings[0].message.contains("too thin to judge"), "{o:?}");
        // Its errors still count when the waiting is over.
        let o = run(window(m(12, 3, 80.0), Some(m(400, 0, 70.0))), THIN_MAX_ATTEMPTS);
        assert!(matches!(&o.verdict, Verdict::Block(r) if r.contains("(3/12)")), "{o:?}");
    }

    #[test]
    fn no_requests_is_never_zero_errors() {
        let empty = window(m(0, 0, 0.0), Some(m(400, 0, 70.0)));
        assert_eq!(run(empty.clone(), 1).verdict, Verdict::RetryAfterMs(THIN_RETRY_MS));
        // Even with min_requests 0.
        let limits = Limits { min_requests: 0, ..Limits::default() };
        assert_eq!(
            judge(&limits, &empty, 1).unwrap().verdict,
            Verdict::RetryAfterMs(THIN_RETRY_MS)
        );
        let o = run(empty, THIN_MAX_ATTEMPTS);
        assert_eq!(o.verdict, Verdict::Proceed);
        assert_eq!(rules(&o, Severity::Warning), ["thin-window"]);
        assert_eq!(rules(&o, Severity::Info), Vec::<&str>::new(), "no error-rate claim: {o:?}");
        assert!(o.findings[0].message.contains("no traffic reached the candidate"), "{o:?}");
    }

    #[test]
    fn impossible_numbers_are_a_malfunction() {
        let mut nan = m(100, 0, 80.0);
        nan.p99_ms = f64::NAN;
        assert!(
            judge(&Limits::default(), &window(nan, None), 1).unwrap_err().contains("p99 is NaN")
        );
        let mut over = m(100, 0, 80.0);
        over.status_5xx = 101;
        let err = judge(&Limits::default(), &window(m(100, 0, 80.0), Some(over)), 1).unwrap_err();
        assert!(err.contains("baseline has 101 5xx answers out of 100"), "{err}");
    }

    #[test]
    fn shares_and_latencies_print_readably() {
        assert_eq!(
            (pct(0.052), pct(0.0), pct(0.0004), pct(1.0)),
            ("5.2%".into(), "0.0%".into(), "0.04%".into(), "100.0%".into())
        );
        assert_eq!((ms(312.4), ms(4.25)), ("312 ms".into(), "4.2 ms".into()));
    }
}
