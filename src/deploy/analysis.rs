//! The built-in judgement of live traffic, made at every look at a window.
//! A color is judged against what the route did *before the deploy*
//! touched it (so a migration that breaks both colors alike is seen), and
//! the new release also against the other color over the same window;
//! every color that serves is judged against the pre-deploy route, so a
//! rise fails the step whichever color shows it. Each comparison is a
//! test with a stated error rate (`stats`): a sequential test on 5xx
//! counts (a clear failure is rolled back after a few requests, a good
//! release passes as soon as the evidence suffices, and the chance of a
//! false rollback stays under `1 - confidence`), Mann–Whitney on the
//! latencies, and exact tests against absolute ceilings, so a release
//! answering only 5xx can never pass whatever the other color does. No
//! requests, or too few to decide, is inconclusive: never a silent pass.
//! Pure, so every edge is tested without traffic; the executor gathers
//! the samples and acts on the verdict.

mod stats;

use crate::config::{Analysis, Inconclusive};
use crate::platform::traffic::Sample;
use crate::plugin::context::Metrics;
use serde::Serialize;
pub use stats::Decision;
use std::time::Duration;

/// How sure a test must be that a power of the sequential test is this
/// much: the chance of passing a release whose 5xx share rose by the limit.
const MISS_RATE: f64 = 0.1;
/// Latency is tested at looks at doubling counts (at most this many per
/// window), each with its share of the false-rollback rate, so all the
/// looks together keep it.
pub const LATENCY_LOOKS: u32 = 10;
/// A color judged with nothing to compare to passes on its own only with
/// at least this many requests and none of its ceilings crossed.
const ALONE_MIN: u64 = 20;

/// What is known at one look.
pub struct Evidence<'a> {
    /// What is judged (the new release's color, or after a migration the
    /// old release's color still serving; in a Cloud Foundry deployment
    /// the new or old instances), and the other, as the output names them.
    pub judged_name: &'a str,
    pub other_name: &'a str,
    pub judged: &'a Sample,
    /// The other color over the same window, when it served (it is judged
    /// against `before` too).
    pub other: Option<&'a Sample>,
    /// The route before the deploy touched it.
    pub before: Option<&'a Sample>,
    pub elapsed: Duration,
    /// The window's time is up: this look decides.
    pub closing: bool,
    /// Latencies are tested at this look.
    pub latency_look: bool,
    /// The step gives the new release all the route's traffic.
    pub last_step: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Fail(String),
    Pass(String),
    /// Not enough to decide by the window's end; with what the deploy
    /// file says to do about it (`fail`: stop the deploy).
    Inconclusive(String, Inconclusive),
    /// Look again later.
    Continue,
}

/// One test as it stood at this look, for the output and the `analysis`
/// event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Test {
    pub test: &'static str,
    pub color: String,
    /// What it was compared to: `before the deploy`, the other color, or a
    /// ceiling.
    pub against: String,
    pub requests: u64,
    /// The judged share or latency, and the reference's.
    pub value: f64,
    pub reference: f64,
    /// The likelihood ratio (sequential test) or p-value it decided on.
    pub statistic: f64,
    pub decision: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// One line per color: requests, 5xx, latency.
    pub lines: Vec<String>,
    pub tests: Vec<Test>,
}

/// The test this judge runs, as `plan` names it.
pub fn method(a: &Analysis) -> String {
    format!(
        "sequential probability ratio test on 5xx (false rollbacks ≤ {:.1}%), Mann–Whitney on \
         latency, absolute ceilings (5xx {:.0}%{})",
        (1.0 - a.confidence) * 100.0,
        a.max_error_rate_abs * 100.0,
        a.max_p99
            .map(|d| format!(", p99 {}", crate::units::human_duration(d)))
            .unwrap_or_default()
    )
}

pub fn judge(e: &Evidence, a: &Analysis) -> Judgement {
    let (color, other) = (e.judged_name, e.other_name);
    let alpha = 1.0 - a.confidence;
    let mut lines = vec![describe(color, &e.judged.metrics)];
    if let Some(o) = e.other {
        lines.push(describe(other, &o.metrics));
    }
    if let Some(b) = e.before {
        lines.push(describe("before the deploy", &b.metrics));
    }
    let mut tests = Vec::new();
    let mut fail: Option<String> = None;
    let judged = &e.judged.metrics;

    // The absolute ceilings first: they need no reference.
    let (e5, n) = (judged.status_5xx, judged.requests);
    let p = stats::binomial_tail(e5, n, a.max_error_rate_abs);
    tests.push(Test {
        test: "binomial-5xx-ceiling",
        color: color.to_string(),
        against: format!("{:.0}% ceiling", a.max_error_rate_abs * 100.0),
        requests: n,
        value: judged.error_rate(),
        reference: a.max_error_rate_abs,
        statistic: p,
        decision: decided(p < alpha),
    });
    if n > 0 && judged.error_rate() > a.max_error_rate_abs && p < alpha {
        fail = Some(format!(
            "{color} answered {} of its requests with 5xx ({e5}/{n}): over the absolute \
             ceiling of {:.0}% (analysis.max_error_rate_abs; binomial p = {p:.1e})",
            pct(judged.error_rate()),
            a.max_error_rate_abs * 100.0
        ));
    }
    if let (None, Some(ceiling)) = (&fail, a.max_p99) {
        // An SLO: at most 1% of requests slower than the ceiling.
        let slow = e.judged.slower_than(ceiling);
        let total: u64 = e.judged.latency.iter().sum();
        let p = stats::binomial_tail(slow, total, 0.01);
        tests.push(Test {
            test: "binomial-p99-ceiling",
            color: color.to_string(),
            against: format!("{} ceiling", crate::units::human_duration(ceiling)),
            requests: total,
            value: judged.p99_ms,
            reference: ceiling.as_secs_f64() * 1000.0,
            statistic: p,
            decision: decided(p < alpha),
        });
        if judged.p99_ms > ceiling.as_secs_f64() * 1000.0 && p < alpha {
            fail = Some(format!(
                "{color}'s p99 is {:.1} ms: {slow} of {total} requests slower than the {} \
                 ceiling (analysis.max_p99; binomial p = {p:.1e})",
                judged.p99_ms,
                crate::units::human_duration(ceiling)
            ));
        }
    }

    // Then each serving color against each reference it has.
    let mut comparisons: Vec<(String, &Sample, String, &Sample)> = Vec::new();
    if let Some(b) = e.before {
        comparisons.push((color.to_string(), e.judged, "before the deploy".into(), b));
    }
    if let Some(o) = e.other {
        comparisons.push((color.to_string(), e.judged, format!("{other} meanwhile"), o));
        if let Some(b) = e.before {
            comparisons.push((other.to_string(), o, "before the deploy".into(), b));
        }
    }
    // The false-rollback rate is split (a union bound): half for the 5xx
    // tests, half for the latency tests, each half shared by the
    // comparisons (and the latency's by its looks too).
    let k = comparisons.len().max(1) as f64;
    let alpha_5xx = alpha / 2.0 / k;
    let alpha_latency = alpha / 2.0 / k / f64::from(LATENCY_LOOKS);
    let mut all_fine = !comparisons.is_empty();
    for (who, x, against, reference) in &comparisons {
        let (xm, rm) = (&x.metrics, &reference.metrics);
        if rm.requests == 0 {
            all_fine = false;
            continue;
        }
        let p0 = stats::smoothed_share(rm.status_5xx, rm.requests);
        let (decision, llr) = stats::sprt(
            xm.status_5xx,
            xm.requests,
            p0,
            a.max_error_rate,
            alpha_5xx,
            MISS_RATE,
        );
        tests.push(Test {
            test: "sprt-5xx",
            color: who.clone(),
            against: against.clone(),
            requests: xm.requests,
            value: xm.error_rate(),
            reference: rm.error_rate(),
            statistic: llr,
            decision: format!("{decision:?}").to_lowercase(),
        });
        all_fine &= decision == Decision::Fine;
        if fail.is_none() && decision == Decision::Worse {
            fail = Some(format!(
                "{who} answered {} of its requests with 5xx ({}/{}) against {} {against}: a \
                 rise of more than {:.1} points (analysis.max_error_rate; sequential test, \
                 likelihood ratio {:.0} past {:.0})",
                pct(xm.error_rate()),
                xm.status_5xx,
                xm.requests,
                pct(rm.error_rate()),
                a.max_error_rate * 100.0,
                llr.exp().min(1e12),
                ((1.0 - MISS_RATE) / alpha_5xx)
            ));
        }
        let slower = xm.p99_ms > a.p99_floor.as_secs_f64() * 1000.0
            && xm.p99_ms > rm.p99_ms * a.max_p99_ratio;
        if fail.is_none() && e.latency_look && slower {
            let (p, effect) = stats::mann_whitney(&x.latency, &reference.latency);
            tests.push(Test {
                test: "mann-whitney-latency",
                color: who.clone(),
                against: against.clone(),
                requests: xm.requests,
                value: xm.p99_ms,
                reference: rm.p99_ms,
                statistic: p,
                decision: decided(p < alpha_latency),
            });
            if p < alpha_latency {
                fail = Some(format!(
                    "{who}'s p99 is {:.1} ms against {:.1} ms {against}: {:.1}x, the limit is \
                     {}x (analysis.max_p99_ratio; Mann–Whitney p = {p:.1e}, {:.0}% of pairs \
                     slower)",
                    xm.p99_ms,
                    rm.p99_ms,
                    xm.p99_ms / rm.p99_ms.max(0.001),
                    a.max_p99_ratio,
                    effect * 100.0
                ));
            }
        }
    }

    let verdict = match fail {
        Some(why) => Verdict::Fail(why),
        None => settle(e, a, all_fine, comparisons.is_empty()),
    };
    Judgement {
        verdict,
        lines,
        tests,
    }
}

/// With nothing failed: pass, wait, or say the window could not decide.
fn settle(e: &Evidence, a: &Analysis, all_fine: bool, alone: bool) -> Verdict {
    let n = e.judged.metrics.requests;
    let share = e.judged.metrics.error_rate();
    if share > a.max_error_rate_abs {
        // Too few requests to be sure it is over the ceiling, but never
        // kept while it looks it: whatever the settings, a release that
        // answers mostly 5xx does not pass.
        if !e.closing {
            return Verdict::Continue;
        }
        return Verdict::Fail(format!(
            "{} answered {} of its requests with 5xx ({}/{n}): over the absolute ceiling of \
             {:.0}% (analysis.max_error_rate_abs), too few to be sure and never kept",
            e.judged_name,
            pct(share),
            e.judged.metrics.status_5xx,
            a.max_error_rate_abs * 100.0
        ));
    }
    let enough = a.min_requests.is_none_or(|m| n >= m);
    if all_fine && enough {
        return Verdict::Pass(format!(
            "{}: no rise shown in {n} requests (sequential test)",
            e.judged_name
        ));
    }
    if !e.closing {
        return Verdict::Continue;
    }
    if n > 0 && a.min_requests.is_some() && enough {
        return Verdict::Pass(format!(
            "{}: {n} requests (analysis.min_requests) and no rise shown",
            e.judged_name
        ));
    }
    if n >= ALONE_MIN && alone && enough {
        return Verdict::Pass(format!(
            "{}: {n} requests within the absolute ceilings (nothing to compare to)",
            e.judged_name
        ));
    }
    let why = if n == 0 {
        format!(
            "no requests reached {} in {:.1}s: nothing to judge it on",
            e.judged_name,
            e.elapsed.as_secs_f64()
        )
    } else {
        format!(
            "{} served {n} requests in {:.1}s: not enough to tell a rise from noise (raise \
             analysis.duration, set analysis.load, or analysis.min_requests)",
            e.judged_name,
            e.elapsed.as_secs_f64()
        )
    };
    let then = a.on_inconclusive.unwrap_or(if e.last_step {
        Inconclusive::Fail
    } else {
        Inconclusive::Warn
    });
    Verdict::Inconclusive(why, then)
}

/// The pre-deploy reference, as the baseline step prints it.
pub fn describe_route(m: &Metrics) -> String {
    describe("the route before the deploy", m)
}

fn decided(yes: bool) -> String {
    if yes { "worse" } else { "undecided" }.into()
}

fn describe(who: &str, m: &Metrics) -> String {
    format!(
        "{who}: {} requests, 5xx {} ({}), p50 {:.1} ms, p99 {:.1} ms",
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
mod tests;
