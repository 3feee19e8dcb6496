//! The built-in judgement of one analysis window: the candidate's 5xx
//! share against the baseline's plus `max_error_rate`, and its p99 against
//! `max_p99_ratio` times the baseline's. Pure, so every threshold's edge is
//! tested without traffic; the executor gathers the window and acts on the
//! verdict, and `analyze` plugins judge the same window after it.

use crate::config::Analysis;
use crate::plugin::context::{AnalysisWindow, Color, Metrics};

/// What the numbers say, with the lines that show them.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    /// Why the candidate is rolled back; none when it may stay.
    pub fail: Option<String>,
    /// A window too thin to judge (no requests reached the candidate).
    pub inconclusive: Option<String>,
    /// One line per color: requests, 5xx, latency.
    pub lines: Vec<String>,
}

pub fn judge(w: &AnalysisWindow, a: &Analysis, candidate: Color) -> Judgement {
    let baseline = candidate.other();
    let mut lines = vec![describe(candidate, &w.candidate)];
    match &w.baseline {
        Some(b) => lines.push(describe(baseline, b)),
        None => lines.push(format!("{baseline}: no requests in the window")),
    }
    let c = &w.candidate;
    if c.requests == 0 {
        return Judgement {
            fail: None,
            inconclusive: Some(format!(
                "no requests reached {candidate} in {:.1}s: nothing to judge it on",
                w.duration_ms as f64 / 1000.0
            )),
            lines,
        };
    }
    let base_rate = w.baseline.as_ref().map_or(0.0, Metrics::error_rate);
    let over = c.error_rate() - base_rate;
    let mut fail = None;
    if over > a.max_error_rate {
        let against = match &w.baseline {
            Some(_) => format!("{baseline}'s {}", pct(base_rate)),
            None => "none (no baseline traffic)".into(),
        };
        fail = Some(format!(
            "{candidate} answered {} of its requests with 5xx ({}/{}) against {against}: \
             {:.1} points over, the limit is {:.1} (analysis.max_error_rate)",
            pct(c.error_rate()),
            c.status_5xx,
            c.requests,
            over * 100.0,
            a.max_error_rate * 100.0
        ));
    }
    if fail.is_none()
        && let Some(b) = &w.baseline
        && b.requests > 0
        && c.p99_ms > a.p99_floor.as_secs_f64() * 1000.0
        && c.p99_ms > b.p99_ms * a.max_p99_ratio
    {
        fail = Some(format!(
            "{candidate}'s p99 is {:.1} ms against {baseline}'s {:.1} ms: {:.1}x, the limit is \
             {}x (analysis.max_p99_ratio)",
            c.p99_ms,
            b.p99_ms,
            c.p99_ms / b.p99_ms.max(0.001),
            a.max_p99_ratio
        ));
    }
    Judgement {
        fail,
        inconclusive: None,
        lines,
    }
}

fn describe(color: Color, m: &Metrics) -> String {
    format!(
        "{color}: {} requests, 5xx {} ({}), p50 {:.1} ms, p99 {:.1} ms",
        m.requests,
        pct(m.error_rate()),
        m.status_5xx,
        m.p50_ms,
        m.p99_ms
    )
}

fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Color::{Blue, Green};

    fn m(requests: u64, errors: u64, p99: f64) -> Metrics {
        Metrics {
            requests,
            status_2xx: requests - errors,
            status_5xx: errors,
            p50_ms: p99 / 3.0,
            p90_ms: p99 / 2.0,
            p99_ms: p99,
            ..Metrics::default()
        }
    }

    fn window(c: Metrics, b: Option<Metrics>) -> AnalysisWindow {
        AnalysisWindow {
            duration_ms: 10_000,
            weight_percent: 10,
            source: "router".into(),
            candidate: c,
            baseline: b,
        }
    }

    #[test]
    fn a_release_failing_five_percent_is_rolled_back_with_the_numbers() {
        let j = judge(
            &window(m(400, 20, 3.0), Some(m(3600, 0, 3.0))),
            &Analysis::default(),
            Blue,
        );
        let why = j.fail.expect("rolled back");
        assert!(why.contains("5.0%") && why.contains("20/400"), "{why}");
        assert!(why.contains("5.0 points over, the limit is 1.0"), "{why}");
        assert!(j.lines[0].starts_with("blue: 400 requests, 5xx 5.0% (20)"));
        assert!(j.lines[1].starts_with("green: 3600 requests"));
    }

    #[test]
    fn the_limits_edges() {
        let a = Analysis::default();
        // Under one point over the baseline passes; over it fails.
        let at = judge(&window(m(1000, 14, 3.0), Some(m(1000, 5, 3.0))), &a, Green);
        assert_eq!(at.fail, None);
        let above = judge(&window(m(1000, 16, 3.0), Some(m(1000, 5, 3.0))), &a, Green);
        assert!(above.fail.is_some());
        // A failure both colors share is not the candidate's fault.
        let shared = judge(&window(m(500, 25, 3.0), Some(m(500, 25, 3.0))), &a, Blue);
        assert_eq!(shared.fail, None);
        // Without a baseline the candidate's own share is judged.
        let alone = judge(&window(m(500, 25, 3.0), None), &a, Blue);
        assert!(alone.fail.unwrap().contains("none (no baseline traffic)"));
    }

    #[test]
    fn slow_releases_fail_on_p99_only_above_the_floor() {
        let a = Analysis::default();
        let slow = judge(&window(m(500, 0, 90.0), Some(m(500, 0, 30.0))), &a, Blue);
        assert!(slow.fail.unwrap().contains("3.0x, the limit is 2x"));
        // 3x of a tiny number is noise: under the 20 ms floor it passes.
        let tiny = judge(&window(m(500, 0, 9.0), Some(m(500, 0, 3.0))), &a, Blue);
        assert_eq!(tiny.fail, None);
        let within = judge(&window(m(500, 0, 59.0), Some(m(500, 0, 30.0))), &a, Blue);
        assert_eq!(within.fail, None);
    }

    #[test]
    fn no_traffic_is_inconclusive_never_a_silent_pass() {
        let j = judge(
            &window(m(0, 0, 0.0), Some(m(900, 0, 2.0))),
            &Analysis::default(),
            Blue,
        );
        assert_eq!(j.fail, None);
        assert!(j.inconclusive.unwrap().contains("no requests reached blue"));
    }
}
