//! The traffic charts' numbers: each color's requests per second, share of
//! 5xx answers and p99 latency, one point per look. They come from the
//! log-cache the API links, as a deploy's analysis reads them on Cloud
//! Foundry; the local platform serves one too, so both platforms go the
//! same way. Where none is linked, the local router's own counters.
//! Counters only grow, so a point is the difference of two snapshots (the
//! last few seconds, `SPAN`) and the dashboard disturbs no deploy's
//! numbers.

use crate::config::PlatformKind;
use crate::deploy::site::Site;
use crate::platform::log_cache::{Follow, LogCache};
use crate::platform::traffic::Snapshot;
use crate::plugin::context::Color;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Points kept per color: ten minutes at one look a second.
const KEEP: usize = 600;
/// How long to wait before looking for log-cache again after it failed.
const RETRY: Duration = Duration::from_secs(30);
/// The span each point covers: log-cache answers once a second at most
/// and counts a request only once the timers around it settled, so a
/// one-look span would swing between nothing and twice the traffic.
const SPAN: Duration = Duration::from_secs(5);

/// One color over the span since the look before.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    /// When the span ended, Unix ms.
    pub t: u64,
    pub requests: u64,
    pub rps: f64,
    /// 5xx answers over all answers; none without answers.
    pub errors: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Point {
    /// The span from `before` to `now`, `secs` long, ending at `t`.
    pub fn between(before: &Snapshot, now: &Snapshot, secs: f64, t: u64) -> Point {
        let m = now.sample(before).metrics;
        let answered = m.requests > 0;
        Point {
            t,
            requests: m.requests,
            rps: if secs > 0.0 {
                m.requests as f64 / secs
            } else {
                0.0
            },
            errors: answered.then(|| m.status_5xx as f64 / m.requests as f64),
            p99_ms: answered.then_some(m.p99_ms),
        }
    }
}

enum Source {
    LogCache(LogCache, BTreeMap<Color, Follow>),
    /// The local router's counters (`GET /bluegreen/v1/apps/:guid/traffic`).
    Router,
}

/// Each color's points, and where they come from.
#[derive(Default)]
pub struct Feed {
    source: Option<Source>,
    /// The apps followed, per color: a new app (a first deploy) is followed
    /// afresh.
    guids: BTreeMap<Color, String>,
    /// Each color's recent reads, the oldest about `SPAN` ago.
    last: BTreeMap<Color, VecDeque<(Instant, Snapshot)>>,
    series: BTreeMap<Color, VecDeque<Point>>,
    /// Why there are no numbers, or what went wrong last.
    note: Option<String>,
    retry_at: Option<Instant>,
}

impl Feed {
    /// Reads each color's counters and adds a point per color.
    pub async fn look(&mut self, site: &Site) {
        let guids: BTreeMap<Color, String> = site
            .apps
            .iter()
            .map(|(c, a)| (*c, a.guid.clone()))
            .collect();
        if guids != self.guids {
            self.source = None;
            self.retry_at = None;
            self.last.clear();
            self.guids = guids.clone();
        }
        if self.source.is_none() && self.retry_at.is_none_or(|t| Instant::now() >= t) {
            self.source = self.connect(site).await;
        }
        let Some(source) = self.source.as_mut() else {
            return;
        };
        for (color, guid) in &guids {
            let read = match source {
                Source::LogCache(lc, follows) => match follows.get_mut(color) {
                    Some(f) => lc.read(f).await,
                    None => continue,
                },
                Source::Router => site.client.traffic(guid).await,
            };
            let now = match read {
                Ok(s) => s,
                Err(e) => {
                    self.note = Some(format!("reading {color}'s requests: {e}"));
                    continue;
                }
            };
            let at = Instant::now();
            let reads = self.last.entry(*color).or_default();
            reads.push_back((at, now));
            while reads.len() > 2 && at.duration_since(reads[1].0) >= SPAN {
                reads.pop_front();
            }
            let ((then, before), (_, now)) = match (reads.front(), reads.back()) {
                (Some(first), Some(last)) if reads.len() >= 2 => (first, last),
                _ => continue,
            };
            let secs = at.duration_since(*then).as_secs_f64();
            let point = Point::between(before, now, secs, unix_ms());
            let series = self.series.entry(*color).or_default();
            if series.len() >= KEEP {
                series.pop_front();
            }
            series.push_back(point);
        }
    }

    /// log-cache, following every color from now; the router's counters
    /// on the local platform where none is linked.
    async fn connect(&mut self, site: &Site) -> Option<Source> {
        let found = async {
            let lc = LogCache::discover(&site.client).await?;
            let mut follows = BTreeMap::new();
            for (c, guid) in &self.guids {
                follows.insert(*c, lc.follow(guid).await?);
            }
            Ok::<_, crate::platform::log_cache::Unavailable>(Source::LogCache(lc, follows))
        };
        match found.await {
            Ok(source) => {
                self.note = None;
                Some(source)
            }
            Err(_) if site.kind == PlatformKind::Local => Some(Source::Router),
            Err(e) => {
                self.note = Some(format!("no request numbers: {e}"));
                self.retry_at = Some(Instant::now() + RETRY);
                None
            }
        }
    }

    /// `{"source", "note", "colors": {"blue": [points], ...}}`.
    pub fn json(&self) -> Value {
        let source = match &self.source {
            Some(Source::LogCache(lc, _)) => json!(format!("log-cache ({})", lc.url())),
            Some(Source::Router) => json!("router"),
            None => Value::Null,
        };
        json!({"source": source, "note": self.note, "colors": self.series})
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::traffic::Traffic;

    #[test]
    fn a_point_is_the_span_between_two_snapshots() {
        let t = Traffic::default();
        t.record(200, Duration::from_millis(5));
        let before = t.snapshot();
        for _ in 0..18 {
            t.record(200, Duration::from_millis(10));
        }
        t.record(503, Duration::from_millis(900));
        t.record(502, Duration::from_millis(900));
        let p = Point::between(&before, &t.snapshot(), 2.0, 7);
        assert_eq!((p.t, p.requests), (7, 20));
        assert_eq!(p.rps, 10.0);
        assert_eq!(p.errors, Some(0.1));
        let p99 = p.p99_ms.unwrap();
        assert!((800.0..1000.0).contains(&p99), "{p99}");
        // No answers: no error share nor latency, not zeros.
        let idle = Point::between(&t.snapshot(), &t.snapshot(), 1.0, 8);
        assert_eq!((idle.rps, idle.errors, idle.p99_ms), (0.0, None, None));
    }
}
