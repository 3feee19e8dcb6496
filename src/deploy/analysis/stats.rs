//! The tests a verdict rests on, each with an error rate it states: Wald's
//! sequential probability ratio test on 5xx counts (valid at every look,
//! so a window may stop the moment the evidence suffices), an exact
//! binomial tail for absolute ceilings, and Mann–Whitney's rank test on
//! latency histograms (as Kayenta's judge does on samples; the router's
//! buckets are its ties). Pure numbers, no I/O.

/// What a sequential test concludes so far.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// The candidate's share is above the reference's by the limit or more.
    Worse,
    /// Evidence enough that it is not.
    Fine,
    /// Not yet either.
    Undecided,
}

/// Wald's SPRT of a 5xx share: H0, the share is `p0`; H1, it is
/// `p0 + delta`. `alpha` is the chance of deciding `Worse` under H0 (a
/// false rollback), `beta` of deciding `Fine` under H1. Returns the
/// decision and the log-likelihood ratio it rests on.
pub fn sprt(errors: u64, n: u64, p0: f64, delta: f64, alpha: f64, beta: f64) -> (Decision, f64) {
    let p0 = p0.clamp(1e-6, 1.0 - 1e-6);
    let p1 = (p0 + delta).clamp(p0 + 1e-6, 1.0 - 1e-9);
    let ok = n - errors.min(n);
    let llr = errors as f64 * (p1 / p0).ln() + ok as f64 * ((1.0 - p1) / (1.0 - p0)).ln();
    let decision = if llr >= ((1.0 - beta) / alpha).ln() {
        Decision::Worse
    } else if llr <= (beta / (1.0 - alpha)).ln() {
        Decision::Fine
    } else {
        Decision::Undecided
    };
    (decision, llr)
}

/// A share estimated from `k` of `n`, pulled toward the middle (Laplace):
/// a reference with no errors in 50 requests is not taken to never fail.
pub fn smoothed_share(k: u64, n: u64) -> f64 {
    (k as f64 + 1.0) / (n as f64 + 2.0)
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7): what binomial coefficients of
/// large counts need without overflow.
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

fn ln_pmf(k: u64, n: u64, p: f64) -> f64 {
    let (k, n) = (k as f64, n as f64);
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
        + k * p.ln()
        + (n - k) * (1.0 - p).ln()
}

/// P(X ≥ k) for X ~ Binomial(n, p): how likely `k` or more 5xx in `n`
/// requests are if the true share were `p`.
pub fn binomial_tail(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if k > n {
        return 0.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // Sum from the far end inward, where the terms are smallest first;
    // the side past the mode is summed directly, the other as a complement.
    let sum =
        |from: u64, to: u64| -> f64 { (from..=to).map(|i| ln_pmf(i, n, p).exp()).sum::<f64>() };
    if (k as f64) > n as f64 * p {
        sum(k, n).min(1.0)
    } else {
        (1.0 - sum(0, k - 1)).clamp(0.0, 1.0)
    }
}

/// The standard normal's upper tail, P(Z > z) (Abramowitz–Stegun 7.1.26,
/// error under 1.5e-7).
pub fn normal_upper(z: f64) -> f64 {
    let x = z.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erfc = poly * (-x * x).exp();
    if z >= 0.0 {
        erfc / 2.0
    } else {
        1.0 - erfc / 2.0
    }
}

/// Mann–Whitney U on two histograms over the same buckets (counts per
/// bucket, in latency order): the one-sided p-value that `x` tends to be
/// slower than `y` (normal approximation with the tie correction), and the
/// effect, P(a request of `x` is slower than one of `y`) with ties halved.
pub fn mann_whitney(x: &[u64], y: &[u64]) -> (f64, f64) {
    let (nx, ny): (u64, u64) = (x.iter().sum(), y.iter().sum());
    if nx == 0 || ny == 0 {
        return (1.0, 0.5);
    }
    let (nx, ny) = (nx as f64, ny as f64);
    let n = nx + ny;
    let mut below = 0.0;
    let mut u = 0.0;
    let mut ties = 0.0;
    for i in 0..x.len().max(y.len()) {
        let a = *x.get(i).unwrap_or(&0) as f64;
        let b = *y.get(i).unwrap_or(&0) as f64;
        // Each request of x beats every request of y in lower buckets and
        // half of those in its own.
        u += a * (below + b / 2.0);
        below += b;
        let t = a + b;
        ties += t * t * t - t;
    }
    let mean = nx * ny / 2.0;
    let var = nx * ny / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)).max(1.0));
    let effect = u / (nx * ny);
    if var <= 0.0 {
        return (if u > mean { 0.0 } else { 1.0 }, effect);
    }
    // Continuity correction, one-sided.
    let z = (u - mean - 0.5) / var.sqrt();
    (normal_upper(z), effect)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binomial_tail_matches_small_cases_worked_by_hand() {
        // P(X >= 1 | 3, 0.5) = 7/8; P(X >= 3 | 3, 0.1) = 0.001.
        assert!((binomial_tail(1, 3, 0.5) - 0.875).abs() < 1e-9);
        assert!((binomial_tail(3, 3, 0.1) - 0.001).abs() < 1e-9);
        assert!((binomial_tail(0, 10, 0.3) - 1.0).abs() < 1e-12);
        // Large counts stay finite and ordered.
        let a = binomial_tail(1_100, 100_000, 0.01);
        let b = binomial_tail(1_300, 100_000, 0.01);
        assert!(a > b && b > 0.0 && a < 0.01, "{a} {b}");
        assert!((ln_gamma(10.0) - (362_880f64).ln()).abs() < 1e-9);
    }

    #[test]
    fn the_sprt_fails_a_clear_rise_fast_and_passes_a_clean_run() {
        // Half the requests failing against a 0.1% reference: a handful do it.
        let (d, _) = sprt(3, 5, 0.001, 0.01, 0.01, 0.1);
        assert_eq!(d, Decision::Worse);
        // No errors in 500 requests against the same: fine.
        assert_eq!(sprt(0, 500, 0.001, 0.01, 0.01, 0.1).0, Decision::Fine);
        // Ten requests, none failing: not yet enough either way.
        assert_eq!(sprt(0, 10, 0.001, 0.01, 0.01, 0.1).0, Decision::Undecided);
    }

    #[test]
    fn mann_whitney_sees_a_shift_and_not_noise() {
        let fast = [0, 100, 300, 100, 0, 0];
        let same = [0, 95, 310, 95, 0, 0];
        let slow = [0, 0, 100, 300, 100, 0];
        let (p, effect) = mann_whitney(&slow, &fast);
        assert!(p < 1e-6 && effect > 0.8, "{p} {effect}");
        let (p, effect) = mann_whitney(&same, &fast);
        assert!(p > 0.1 && (effect - 0.5).abs() < 0.05, "{p} {effect}");
        assert_eq!(mann_whitney(&[], &fast).0, 1.0);
        assert!((normal_upper(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_upper(1.959_964) - 0.025).abs() < 1e-6);
    }
}
