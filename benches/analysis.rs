//! The verdict's cost in requests: simulated releases under the same load,
//! judged by the fixed-threshold judge bluegreen had (one look when the
//! window ends or `min_requests` is reached: the candidate's 5xx share
//! against the other color's plus one point, p99 against 2x) and by the
//! sequential judge (`deploy::analysis::judge`, every 250 ms, against the
//! route before the deploy and the other color). Reported per release:
//! requests the candidate served before the verdict (what users were
//! exposed to), seconds until it, and how often it rolled back; then false
//! rollbacks over 200 good releases with heavy-tailed latency. Exits
//! non-zero if the sequential judge exposes more requests than the fixed
//! one where both roll back, or rolls back good releases more often than
//! its configured rate. `cargo bench --bench analysis`; seeded, so runs
//! repeat.

use bluegreen::config::Analysis;
use bluegreen::deploy::analysis::{Evidence, Verdict, judge};
use bluegreen::platform::traffic::{Sample, Snapshot, Traffic};
use std::time::Duration;

/// The route's load: the candidate (a 10% canary step) gets 20 requests a
/// second, the other color 180.
const CANDIDATE_RPS: f64 = 20.0;
const OTHER_RPS: f64 = 180.0;
const TICK: f64 = 0.25;
/// The fixed judge's window: one look at 100 requests or 60 s.
const FIXED_MIN: u64 = 100;
const WINDOW_S: f64 = 60.0;
/// A healthy app's own 5xx share.
const BACKGROUND: f64 = 0.002;
const RUNS: u32 = 60;
const GOOD_RUNS: u32 = 200;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit().max(1e-12), self.unit());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    /// Arrivals in one tick at `rps` (Poisson by inversion).
    fn arrivals(&mut self, rps: f64) -> u32 {
        let l = (-rps * TICK).exp();
        let (mut k, mut p) = (0, 1.0);
        loop {
            p *= self.unit();
            if p <= l {
                return k;
            }
            k += 1;
        }
    }
}

/// A release: its 5xx share and how much slower than the old one.
#[derive(Clone, Copy)]
struct Release {
    name: &'static str,
    errors: f64,
    slower: f64,
}

/// One request's latency: lognormal around 20 ms with a heavy tail (1% of
/// requests 5-20x slower), times `slower`.
fn latency(rng: &mut Rng, slower: f64) -> Duration {
    let mut ms = 20.0 * (0.6 * rng.normal()).exp();
    if rng.unit() < 0.01 {
        ms *= 5.0 + 15.0 * rng.unit();
    }
    Duration::from_secs_f64(ms * slower / 1000.0)
}

fn serve(rng: &mut Rng, t: &Traffic, n: u32, r: Release) {
    for _ in 0..n {
        let status = if rng.unit() < r.errors { 503 } else { 200 };
        t.record(status, latency(rng, r.slower));
    }
}

/// The route before the deploy: 60 s of both colors on the old release.
fn before(rng: &mut Rng, old: Release) -> Sample {
    let t = Traffic::default();
    let n = ((CANDIDATE_RPS + OTHER_RPS) * 60.0) as u32;
    serve(rng, &t, n, old);
    t.snapshot().sample(&Snapshot::default())
}

/// What a judge decided, after how many candidate requests and seconds.
struct Outcome {
    rolled_back: bool,
    /// Why, for a rollback.
    why: String,
    exposed: u64,
    seconds: f64,
}

fn fixed(rng: &mut Rng, r: Release) -> Outcome {
    let old = Release {
        errors: BACKGROUND,
        slower: 1.0,
        ..r
    };
    let (cand, other) = (Traffic::default(), Traffic::default());
    let mut t = 0.0;
    loop {
        t += TICK;
        let (nc, no) = (rng.arrivals(CANDIDATE_RPS), rng.arrivals(OTHER_RPS));
        serve(rng, &cand, nc, r);
        serve(rng, &other, no, old);
        let c = cand.snapshot().since(&Snapshot::default());
        if c.requests >= FIXED_MIN || t >= WINDOW_S {
            let o = other.snapshot().since(&Snapshot::default());
            let over = c.error_rate() - o.error_rate() > 0.01;
            let slow = c.p99_ms > 20.0 && c.p99_ms > 2.0 * o.p99_ms;
            return Outcome {
                rolled_back: over || slow,
                why: if slow { "p99".into() } else { "5xx".into() },
                exposed: c.requests,
                seconds: t,
            };
        }
    }
}

fn sequential(rng: &mut Rng, r: Release, a: &Analysis) -> Outcome {
    let old = Release {
        errors: BACKGROUND,
        slower: 1.0,
        ..r
    };
    let reference = before(rng, old);
    let (cand, other) = (Traffic::default(), Traffic::default());
    let mut t = 0.0;
    let mut next_look = 32;
    loop {
        t += TICK;
        let (nc, no) = (rng.arrivals(CANDIDATE_RPS), rng.arrivals(OTHER_RPS));
        serve(rng, &cand, nc, r);
        serve(rng, &other, no, old);
        let c = cand.snapshot().sample(&Snapshot::default());
        let o = other.snapshot().sample(&Snapshot::default());
        let closing = t >= WINDOW_S;
        let latency_look = closing || c.metrics.requests >= next_look;
        if latency_look {
            next_look *= 2;
        }
        let e = Evidence {
            judged_name: "blue",
            other_name: "green",
            judged: &c,
            other: Some(&o),
            before: Some(&reference),
            elapsed: Duration::from_secs_f64(t),
            closing,
            latency_look,
            last_step: false,
        };
        match judge(&e, a).verdict {
            Verdict::Continue => continue,
            v => {
                return Outcome {
                    why: match &v {
                        Verdict::Fail(why) => why.clone(),
                        _ => String::new(),
                    },
                    rolled_back: matches!(v, Verdict::Fail(_)),
                    exposed: c.metrics.requests,
                    seconds: t,
                };
            }
        }
    }
}

fn main() {
    let a = Analysis::default();
    let releases = [
        ("0.5% failing", 0.005, 1.0),
        ("1% failing", 0.01, 1.0),
        ("5% failing", 0.05, 1.0),
        ("50% failing", 0.5, 1.0),
        ("100% failing", 1.0, 1.0),
        ("2x slower", BACKGROUND, 2.0),
    ]
    .map(|(name, errors, slower)| Release {
        name,
        errors,
        slower,
    });
    println!(
        "analysis benchmark: candidate {CANDIDATE_RPS} req/s beside {OTHER_RPS} req/s, {RUNS} \
         runs each, background 5xx {:.1}%; fixed: one look at {FIXED_MIN} requests or \
         {WINDOW_S} s; sequential: {}",
        BACKGROUND * 100.0,
        bluegreen::deploy::analysis::method(&a)
    );
    println!(
        "{:<14} {:>26} {:>30}",
        "release", "fixed: rolled back / req / s", "sequential: rolled back / req / s"
    );
    let mut wrong = Vec::new();
    for (i, r) in releases.iter().enumerate() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1));
        let (mut f, mut s) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            f.push(fixed(&mut rng, *r));
            s.push(sequential(&mut rng, *r, &a));
        }
        let summary = |o: &[Outcome]| {
            let n = o.len() as f64;
            (
                o.iter().filter(|x| x.rolled_back).count() as f64 / n,
                o.iter().map(|x| x.exposed as f64).sum::<f64>() / n,
                o.iter().map(|x| x.seconds).sum::<f64>() / n,
            )
        };
        let (fr, fe, fs) = summary(&f);
        let (sr, se, ss) = summary(&s);
        println!(
            "{:<14} {:>9.0}% {:>7.0} {:>6.1}s {:>13.0}% {:>7.0} {:>6.1}s",
            r.name,
            fr * 100.0,
            fe,
            fs,
            sr * 100.0,
            se,
            ss
        );
        // Where the release is bad enough that both roll it back, the
        // sequential judge must have exposed fewer requests.
        if fr > 0.9 && sr > 0.9 && se >= fe {
            wrong.push(format!(
                "{}: sequential exposed {se:.0} ≥ fixed {fe:.0}",
                r.name
            ));
        }
    }
    let good = Release {
        name: "good",
        errors: BACKGROUND,
        slower: 1.0,
    };
    let mut rng = Rng(0x5151_5151);
    let (mut fixed_false, mut seq_false) = (0, 0);
    let mut reasons = Vec::new();
    for _ in 0..GOOD_RUNS {
        fixed_false += u32::from(fixed(&mut rng, good).rolled_back);
        let s = sequential(&mut rng, good, &a);
        if s.rolled_back {
            seq_false += 1;
            reasons.push(s.why);
        }
    }
    for why in &reasons {
        println!("  false rollback: {why}");
    }
    let allowed = ((1.0 - a.confidence) * f64::from(GOOD_RUNS)).ceil() as u32;
    println!(
        "false rollbacks over {GOOD_RUNS} good releases (heavy-tailed latency): fixed \
         {fixed_false}, sequential {seq_false} (configured rate {:.0}%: at most {allowed})",
        (1.0 - a.confidence) * 100.0
    );
    if seq_false > allowed {
        wrong.push(format!(
            "{seq_false} false rollbacks in {GOOD_RUNS} > {allowed}"
        ));
    }
    if !wrong.is_empty() {
        eprintln!("analysis benchmark: {}", wrong.join("; "));
        std::process::exit(1);
    }
}
