//! The judge's edges, on samples recorded as the router records them; each
//! written first as the input that would fool a judge only relative to the
//! other color.

use super::*;
use crate::platform::traffic::Traffic;

/// `n` requests, `errors` of them 5xx (spread through), each taking `ms`.
fn sample(n: u64, errors: u64, ms: u64) -> Sample {
    let t = Traffic::default();
    let before = t.snapshot();
    for i in 0..n {
        let failed = errors > 0 && i % (n / errors).max(1) == 0 && i / (n / errors).max(1) < errors;
        t.record(if failed { 503 } else { 200 }, Duration::from_millis(ms));
    }
    t.snapshot().sample(&before)
}

fn look<'a>(
    judged: &'a Sample,
    other: Option<&'a Sample>,
    before: Option<&'a Sample>,
    closing: bool,
) -> Evidence<'a> {
    Evidence {
        judged_name: "blue",
        other_name: "green",
        judged,
        other,
        before,
        elapsed: Duration::from_secs(10),
        closing,
        latency_look: true,
        last_step: false,
    }
}

fn failed(j: &Judgement) -> &str {
    match &j.verdict {
        Verdict::Fail(why) => why,
        v => panic!("not failed: {v:?}\n{:#?}", j.tests),
    }
}

#[test]
fn a_migration_that_breaks_both_colors_fails_against_the_route_before_the_deploy() {
    // The fooling input: both colors fail alike, so against each other
    // nothing rose.
    let before = sample(400, 0, 3);
    let (blue, green) = (sample(203, 203, 3), sample(194, 194, 3));
    let j = judge(
        &look(&blue, Some(&green), Some(&before), false),
        &Analysis::default(),
    );
    let why = failed(&j);
    assert!(why.contains("100.0%") && why.contains("ceiling"), "{why}");
    // Without the absolute ceiling, the pre-deploy route still catches it,
    // and it names the comparison.
    let lax = Analysis {
        max_error_rate_abs: 0.99,
        ..Analysis::default()
    };
    let j = judge(&look(&blue, Some(&green), Some(&before), false), &lax);
    assert!(failed(&j).contains("before the deploy"), "{}", failed(&j));
}

#[test]
fn the_old_color_failing_alone_fails_the_step_whichever_color_shows_it() {
    let before = sample(400, 0, 3);
    let (candidate, old) = (sample(300, 0, 3), sample(300, 150, 3));
    let j = judge(
        &look(&candidate, Some(&old), Some(&before), false),
        &Analysis::default(),
    );
    let why = failed(&j);
    assert!(why.starts_with("green answered 50.0%"), "{why}");
}

#[test]
fn a_release_answering_only_5xx_never_passes_with_any_settings() {
    let all_bad = sample(50, 50, 3);
    let also_bad = sample(50, 50, 3);
    for a in [
        Analysis::default(),
        Analysis {
            max_error_rate: 1.0,
            max_error_rate_abs: 0.99,
            confidence: 0.5,
            min_requests: Some(1),
            ..Analysis::default()
        },
        Analysis {
            confidence: 0.9999,
            on_inconclusive: Some(Inconclusive::Warn),
            ..Analysis::default()
        },
    ] {
        for (other, before) in [
            (None, None),
            (Some(&also_bad), None),
            (Some(&also_bad), Some(&also_bad)),
        ] {
            // Never a pass at any look, and a failure by the window's end.
            let j = judge(&look(&all_bad, other, before, false), &a);
            assert!(
                matches!(j.verdict, Verdict::Fail(_) | Verdict::Continue),
                "{a:?} {other:?}: {:?}",
                j.verdict
            );
            let j = judge(&look(&all_bad, other, before, true), &a);
            assert!(
                matches!(j.verdict, Verdict::Fail(_)),
                "{a:?} {other:?}: {:?}",
                j.verdict
            );
        }
    }
}

#[test]
fn a_clear_failure_is_decided_in_a_handful_of_requests() {
    let before = sample(1000, 1, 3);
    let bad = sample(10, 5, 3);
    let j = judge(
        &look(&bad, None, Some(&before), false),
        &Analysis::default(),
    );
    assert!(failed(&j).contains("5/10"), "{}", failed(&j));
    let t = j.tests.iter().find(|t| t.test == "sprt-5xx").unwrap();
    assert_eq!(t.decision, "worse");
}

#[test]
fn a_good_release_passes_as_soon_as_the_evidence_suffices_and_not_before() {
    let before = sample(2000, 4, 3);
    let early = sample(20, 0, 3);
    let j = judge(
        &look(&early, None, Some(&before), false),
        &Analysis::default(),
    );
    assert_eq!(j.verdict, Verdict::Continue, "{:?}", j.tests);
    let enough = sample(600, 1, 3);
    let j = judge(
        &look(&enough, None, Some(&before), false),
        &Analysis::default(),
    );
    assert!(matches!(j.verdict, Verdict::Pass(_)), "{:?}", j.verdict);
    // With min_requests set, not before it.
    let a = Analysis {
        min_requests: Some(1000),
        ..Analysis::default()
    };
    let j = judge(&look(&enough, None, Some(&before), false), &a);
    assert_eq!(j.verdict, Verdict::Continue);
}

#[test]
fn a_failure_the_route_already_had_is_not_the_releases() {
    let before = sample(1000, 50, 3);
    let (blue, green) = (sample(800, 40, 3), sample(800, 41, 3));
    // At 5% already, 800 requests cannot show the absence of a one-point
    // rise: not a failure, and not a pass either.
    let j = judge(
        &look(&blue, Some(&green), Some(&before), true),
        &Analysis::default(),
    );
    assert!(
        matches!(j.verdict, Verdict::Inconclusive(..)),
        "{:?}",
        j.verdict
    );
    let enough = Analysis {
        min_requests: Some(500),
        ..Analysis::default()
    };
    let j = judge(&look(&blue, Some(&green), Some(&before), true), &enough);
    assert!(matches!(j.verdict, Verdict::Pass(_)), "{:?}", j.verdict);
}

#[test]
fn no_evidence_is_inconclusive_and_fails_at_the_last_step_by_default() {
    let before = sample(500, 0, 3);
    let none = sample(0, 0, 0);
    let mut e = look(&none, None, Some(&before), true);
    let j = judge(&e, &Analysis::default());
    assert!(
        matches!(&j.verdict, Verdict::Inconclusive(why, Inconclusive::Warn) if why.contains("no requests reached blue")),
        "{:?}",
        j.verdict
    );
    e.last_step = true;
    let j = judge(&e, &Analysis::default());
    assert!(matches!(
        j.verdict,
        Verdict::Inconclusive(_, Inconclusive::Fail)
    ));
    let warn = Analysis {
        on_inconclusive: Some(Inconclusive::Warn),
        ..Analysis::default()
    };
    assert!(matches!(
        judge(&e, &warn).verdict,
        Verdict::Inconclusive(_, Inconclusive::Warn)
    ));
    // A thin window is not a pass either.
    let thin = sample(12, 0, 3);
    let j = judge(
        &look(&thin, None, Some(&before), true),
        &Analysis::default(),
    );
    assert!(
        matches!(j.verdict, Verdict::Inconclusive(..)),
        "{:?}",
        j.verdict
    );
}

#[test]
fn slow_releases_and_hangs_fail_on_latency_above_the_floor_only() {
    let before = sample(800, 0, 30);
    let slow = sample(300, 0, 90);
    let j = judge(
        &look(&slow, None, Some(&before), false),
        &Analysis::default(),
    );
    assert!(failed(&j).contains("Mann–Whitney"), "{}", failed(&j));
    // Not a latency look: not tested yet.
    let mut e = look(&slow, None, Some(&before), false);
    e.latency_look = false;
    assert!(!matches!(
        judge(&e, &Analysis::default()).verdict,
        Verdict::Fail(_)
    ));
    // 3x of a tiny number is noise: under the 20 ms floor it passes.
    let (tiny_before, tiny) = (sample(800, 0, 3), sample(800, 0, 9));
    let j = judge(
        &look(&tiny, None, Some(&tiny_before), true),
        &Analysis::default(),
    );
    assert!(matches!(j.verdict, Verdict::Pass(_)), "{:?}", j.verdict);
    // Requests that never answered count at their age.
    let answered = sample(100, 0, 30);
    let hung = answered.with_pending(&[Duration::from_secs(8); 40]);
    let j = judge(
        &look(&hung, None, Some(&before), false),
        &Analysis::default(),
    );
    assert!(failed(&j).contains("p99"), "{}", failed(&j));
}

#[test]
fn an_slo_ceiling_fails_a_release_slower_than_it_whatever_the_baseline() {
    let slow = sample(500, 0, 400);
    let a = Analysis {
        max_p99: Some(Duration::from_millis(250)),
        ..Analysis::default()
    };
    let j = judge(&look(&slow, Some(&slow.clone()), None, false), &a);
    assert!(failed(&j).contains("analysis.max_p99"), "{}", failed(&j));
}

#[test]
fn the_method_is_named_for_plan() {
    assert!(method(&Analysis::default()).contains("≤ 1.0%"));
}
