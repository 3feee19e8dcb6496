//! Weighted destinations (canary steps): which destination the `n`th
//! request of a route goes to.

/// Weights of a route's destinations, as a deterministic schedule: request
/// `n` lands on position `n * stride mod total` of the cumulative weights.
/// A stride coprime to the total visits every position once per `total`
/// requests, so the split is exact over each cycle and interleaved within
/// it (a 10% canary gets every tenth-ish request, not ten in a row).
pub(super) struct Weights {
    cumulative: Vec<u64>,
    stride: u64,
}

impl Weights {
    pub(super) fn new(weights: &[u32]) -> Option<Weights> {
        let cumulative: Vec<u64> = weights
            .iter()
            .scan(0u64, |sum, &w| {
                *sum += u64::from(w);
                Some(*sum)
            })
            .collect();
        let total = *cumulative.last()?;
        if total == 0 {
            return None;
        }
        let mut stride = (total * 618 / 1000).max(1);
        while gcd(stride, total) != 1 {
            stride += 1;
        }
        Some(Weights { cumulative, stride })
    }

    pub(super) fn pick(&self, n: usize) -> usize {
        let total = *self.cumulative.last().expect("non-empty");
        let pos = (n as u64 % total) * self.stride % total;
        self.cumulative
            .iter()
            .position(|&c| pos < c)
            .expect("pos < total")
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cycle_of_the_total_splits_exactly_and_interleaved() {
        let w = Weights::new(&[10, 90]).unwrap();
        let picks: Vec<usize> = (0..100).map(|n| w.pick(n)).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 10);
        // Never two canary requests in a row within the cycle.
        assert!(picks.windows(2).all(|p| p != [0, 0]), "{picks:?}");
        let w = Weights::new(&[3, 0, 1]).unwrap();
        let picks: Vec<usize> = (0..400).map(|n| w.pick(n)).collect();
        assert_eq!(picks.iter().filter(|&&i| i == 0).count(), 300);
        assert!(!picks.contains(&1), "a zero weight gets nothing");
        assert!(Weights::new(&[0, 0]).is_none());
        assert!(Weights::new(&[]).is_none());
    }
}
