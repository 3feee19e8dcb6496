//! Per-app request counters the local router keeps, and the window
//! arithmetic a deploy's traffic analysis does on them. Counters only grow:
//! a window is the difference of two snapshots, so any number of watchers
//! can read them without resetting anyone's numbers.
//!
//! Latencies go into a log-linear histogram (8 buckets per power of two,
//! exact below 16 µs): recording is one atomic add, a percentile is off by
//! at most half a bucket (about 6%), and a snapshot is a few hundred
//! integers whatever the traffic.

use crate::plugin::context::Metrics;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets for 0 µs to 2^41 µs (25 days): past that, the last bucket.
const BUCKETS: usize = 312;

/// Seconds of start time the requests awaiting an answer are kept by: a
/// request older than this (past any first-byte timeout) is counted as if
/// younger by a multiple of it.
const AWAIT_RING: usize = 64;

/// One app's counters, shared by every request the router sends it.
pub struct Traffic {
    /// By status class: 1xx .. 5xx.
    status: [AtomicU64; 5],
    buckets: Box<[AtomicU64]>,
    /// Requests sent and not answered yet, by the second they were sent
    /// (a ring): how a window sees a hang before any timeout ends it.
    awaiting: [AtomicU64; AWAIT_RING],
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            status: Default::default(),
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            awaiting: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Whole seconds on a clock shared by every counter in this process.
fn clock_secs() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs()
}

/// One request awaiting its answer's head; no longer when dropped.
pub struct Awaiting<'a> {
    traffic: &'a Traffic,
    slot: usize,
}

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        self.traffic.awaiting[self.slot].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Traffic {
    /// One answered request: its status and the time to its headers.
    pub fn record(&self, status: u16, latency: Duration) {
        let class = (status / 100).clamp(1, 5) as usize - 1;
        self.status[class].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket(us)].fetch_add(1, Ordering::Relaxed);
    }

    /// A request was sent to the app: it awaits an answer until the guard
    /// drops (answered, failed, or given up).
    pub fn awaiting(&self) -> Awaiting<'_> {
        let slot = (clock_secs() % AWAIT_RING as u64) as usize;
        self.awaiting[slot].fetch_add(1, Ordering::Relaxed);
        Awaiting {
            traffic: self,
            slot,
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = clock_secs();
        Snapshot {
            pending: self
                .awaiting
                .iter()
                .enumerate()
                .filter_map(|(slot, n)| {
                    let n = n.load(Ordering::Relaxed);
                    let age = (now + AWAIT_RING as u64 - slot as u64) % AWAIT_RING as u64;
                    (n > 0).then_some((age as u32, n))
                })
                .collect(),
            status: std::array::from_fn(|i| self.status[i].load(Ordering::Relaxed)),
            buckets: self
                .buckets
                .iter()
                .enumerate()
                .filter_map(|(i, b)| {
                    let n = b.load(Ordering::Relaxed);
                    (n > 0).then_some((i as u16, n))
                })
                .collect(),
        }
    }
}

/// The counters at one moment, as the daemon serves them
/// (`GET /v3/apps/:guid/traffic`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Requests by status class, 1xx to 5xx.
    pub status: [u64; 5],
    /// Non-empty latency buckets: (index, count).
    pub buckets: Vec<(u16, u64)>,
    /// Requests awaiting their answer now: (age in whole seconds, count).
    #[serde(default)]
    pub pending: Vec<(u32, u64)>,
}

impl Snapshot {
    /// The ages of the requests awaiting an answer now (each counted at
    /// the middle of its second).
    pub fn pending_ages(&self) -> Vec<Duration> {
        self.pending
            .iter()
            .flat_map(|&(age, n)| {
                std::iter::repeat_n(
                    Duration::from_millis(u64::from(age) * 1000 + 500),
                    n as usize,
                )
            })
            .collect()
    }

    pub fn requests(&self) -> u64 {
        self.status.iter().sum()
    }

    /// What happened between `before` and `self`.
    pub fn since(&self, before: &Snapshot) -> Metrics {
        self.sample(before).metrics
    }

    /// What happened between `before` and `self`, with its latencies.
    pub fn sample(&self, before: &Snapshot) -> Sample {
        let status: [u64; 5] =
            std::array::from_fn(|i| self.status[i].saturating_sub(before.status[i]));
        let mut counts = vec![0u64; BUCKETS];
        for &(i, n) in &self.buckets {
            if let Some(c) = counts.get_mut(i as usize) {
                *c += n;
            }
        }
        for &(i, n) in &before.buckets {
            if let Some(c) = counts.get_mut(i as usize) {
                *c = c.saturating_sub(n);
            }
        }
        Sample::new(status, counts)
    }
}

/// One color's (or the route's) requests over a span: counts by status
/// class and the latency histogram, what the judgement's tests read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub metrics: Metrics,
    /// Latency buckets (dense, `BUCKETS` long; empty when nothing came).
    #[serde(default)]
    pub latency: Vec<u64>,
}

impl Sample {
    fn new(status: [u64; 5], counts: Vec<u64>) -> Sample {
        let total: u64 = counts.iter().sum();
        let quantile = |q: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let rank = ((q * total as f64).ceil() as u64).max(1);
            let mut seen = 0;
            for (i, &n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return midpoint_us(i) / 1000.0;
                }
            }
            midpoint_us(BUCKETS - 1) / 1000.0
        };
        let metrics = Metrics {
            requests: status.iter().sum(),
            status_2xx: status[1],
            status_3xx: status[2],
            status_4xx: status[3],
            status_5xx: status[4],
            p50_ms: quantile(0.50),
            p90_ms: quantile(0.90),
            p99_ms: quantile(0.99),
        };
        let latency = if total == 0 { Vec::new() } else { counts };
        Sample { metrics, latency }
    }

    /// Two spans as one (both colors of a route), latencies merged.
    pub fn plus(&self, other: &Sample) -> Sample {
        let (a, b) = (
            status_classes(&self.metrics),
            status_classes(&other.metrics),
        );
        let counts = (0..BUCKETS)
            .map(|i| self.latency.get(i).unwrap_or(&0) + other.latency.get(i).unwrap_or(&0))
            .collect();
        Sample::new(std::array::from_fn(|i| a[i] + b[i]), counts)
    }

    /// Requests still waiting for their answer's head when the span closed,
    /// each counted in the latencies at its age (not in the status counts:
    /// they have none yet): a hang shows in the p99 before any timeout
    /// turns it into an error.
    pub fn with_pending(mut self, ages: &[Duration]) -> Sample {
        if ages.is_empty() {
            return self;
        }
        self.latency.resize(BUCKETS, 0);
        for age in ages {
            let us = u64::try_from(age.as_micros()).unwrap_or(u64::MAX);
            self.latency[bucket(us)] += 1;
        }
        let latency = std::mem::take(&mut self.latency);
        Sample::new(status_classes(&self.metrics), latency)
    }

    /// How many requests took longer than `limit`, counting a whole bucket
    /// once its middle is past it.
    pub fn slower_than(&self, limit: Duration) -> u64 {
        let us = limit.as_micros() as f64;
        self.latency
            .iter()
            .enumerate()
            .filter(|&(i, _)| midpoint_us(i) > us)
            .map(|(_, n)| n)
            .sum()
    }
}

/// `m`'s counts by status class, 1xx to 5xx.
fn status_classes(m: &Metrics) -> [u64; 5] {
    let known = m.status_2xx + m.status_3xx + m.status_4xx + m.status_5xx;
    [
        m.requests.saturating_sub(known),
        m.status_2xx,
        m.status_3xx,
        m.status_4xx,
        m.status_5xx,
    ]
}

fn bucket(us: u64) -> usize {
    if us < 8 {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros() as usize;
    let sub = ((us >> (msb - 3)) & 7) as usize;
    ((msb - 2) * 8 + sub).min(BUCKETS - 1)
}

/// The middle of bucket `i`, in microseconds.
fn midpoint_us(i: usize) -> f64 {
    if i < 8 {
        return i as f64;
    }
    let msb = i / 8 + 2;
    let sub = (i % 8) as u64;
    let low = (8 + sub) << (msb - 3);
    let width = 1u64 << (msb - 3);
    low as f64 + width as f64 / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket(us);
            assert!(b == last || b == last + 1, "{us}: {b} after {last}");
            last = b;
            // The midpoint is within 6.25% of every value in the bucket.
            let m = midpoint_us(b);
            assert!(
                (m - us as f64).abs() <= (us as f64 * 0.0625).max(0.5),
                "{us} vs {m}"
            );
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn a_window_is_the_difference_of_two_snapshots() {
        let t = Traffic::default();
        for _ in 0..100 {
            t.record(200, Duration::from_millis(2));
        }
        let before = t.snapshot();
        for i in 0..1000u64 {
            let status = if i % 20 == 0 { 503 } else { 200 };
            // 1% of requests take 40 ms, the rest 1 ms.
            let ms = if i % 100 == 99 { 40 } else { 1 };
            t.record(status, Duration::from_millis(ms));
        }
        t.record(404, Duration::from_millis(1));
        let m = t.snapshot().since(&before);
        assert_eq!(m.requests, 1001);
        assert_eq!(m.status_5xx, 50);
        assert_eq!(m.status_4xx, 1);
        assert_eq!(m.status_2xx, 950);
        assert!((m.error_rate() - 50.0 / 1001.0).abs() < 1e-9);
        assert!((m.p50_ms - 1.0).abs() < 0.07, "{}", m.p50_ms);
        // The 99th percentile falls on the slow tenth of a percent's edge:
        // rank 991 of 1001 is still a 1 ms request; 1% at 40 ms is above it.
        assert!(m.p99_ms < 1.1, "{}", m.p99_ms);
        assert!(t.snapshot().since(&before).p90_ms < 1.1);
    }

    #[test]
    fn slow_tails_show_in_p99_and_an_empty_window_is_zero() {
        let t = Traffic::default();
        let before = t.snapshot();
        assert_eq!(t.snapshot().since(&before), Metrics::default());
        for i in 0..1000u64 {
            let ms = if i % 50 == 0 { 30 } else { 1 };
            t.record(200, Duration::from_millis(ms));
        }
        let m = t.snapshot().since(&before);
        assert!((m.p99_ms - 30.0).abs() < 2.0, "{}", m.p99_ms);
        // Serialized and read back, as the daemon serves it.
        let json = serde_json::to_string(&t.snapshot()).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        assert_eq!(back.since(&before), m);
    }
}
