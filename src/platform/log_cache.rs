//! Per-app HTTP numbers from Cloud Foundry's log-cache, for a deploy's
//! traffic analysis. The API's root document (`GET /`) links log-cache,
//! which gets the API's token, so only over https or at the API's own
//! origin; `GET <log_cache>/api/v1/read/<app-guid>?envelope_types=TIMER`
//! answers with the router's timer of each request to the app. They go into the
//! counters the local router keeps ([`Traffic`]), so a window is the
//! difference of two snapshots whichever platform counted.
//!
//! Timestamps are the platform's: following an app starts past the newest
//! timer log-cache holds for it, not at our clock. A read counts only timers
//! [`SETTLE`] older than the newest it has seen and reads the rest again
//! next time: several routers' envelopes reach log-cache out of order, and a
//! cursor moved past a late one would never count it.
//!
//! Shapes, from the published sources: the read API and its `{"envelopes":
//! {"batch": [...]}}` answer (cloudfoundry/log-cache-release `src/README.md`);
//! its gateway marshals with proto names, so fields are snake_case and int64s
//! JSON strings (`src/internal/gateway/gateway.go`); the envelope
//! (cloudfoundry/loggregator-api `v2/envelope.proto`); a router timer's tags,
//! in `tags` or as `{"text": ..}` values in `deprecated_tags`
//! (cloudfoundry/go-loggregator `conversion/http_test.go`). The router times
//! a request from both sides; like cloudfoundry/app-autoscaler, only the
//! `peer_type` `Client` one (or one without a peer type) is counted.

use super::PlatformError;
use super::client::CfClient;
use super::traffic::{Snapshot, Traffic};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// log-cache's largest page.
const LIMIT: usize = 1000;
/// Pages one read follows; the rest waits for the next read.
const MAX_PAGES: usize = 10;
/// How much older than the newest timer seen a timer must be to count.
pub const SETTLE: Duration = Duration::from_secs(2);
/// Reads closer together than this answer from the counters.
pub const READ_EVERY: Duration = Duration::from_secs(1);
/// Bounds one read, all its pages and retries, so a hung log-cache cannot
/// stretch an analysis window.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Why there are no log-cache numbers.
#[derive(Debug, thiserror::Error)]
pub enum Unavailable {
    #[error("the API's root document links no log_cache")]
    NoLink,
    #[error("{url} answered a TIMER read with {kind} envelopes: a stub without router metrics")]
    Stub { url: String, kind: &'static str },
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// The log-cache one API links, read with that API's token.
pub struct LogCache {
    client: CfClient,
    url: String,
}

/// One app followed: where the next read starts, and its counters.
pub struct Follow {
    guid: String,
    /// Nanoseconds on the platform's clock.
    from: i64,
    newest: i64,
    traffic: Traffic,
    /// A process's requests counted apart (`split`): a CF deployment's new
    /// instances, by the `process_id` tag.
    split: Option<(String, Traffic)>,
    read_at: Option<Instant>,
}

impl LogCache {
    /// The log-cache the API's root document links.
    pub async fn discover(client: &CfClient) -> Result<LogCache, Unavailable> {
        let root: Value = bounded("reading the API's root document", client.get("/")).await?;
        let url = root
            .pointer("/links/log_cache/href")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .ok_or(Unavailable::NoLink)?;
        // Refused here, before any read, so the analysis says why at once.
        client.check_link(url)?;
        Ok(LogCache {
            client: client.clone(),
            url: url.trim_end_matches('/').to_string(),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Follows an app's requests from now on: past the newest timer held.
    pub async fn follow(&self, app_guid: &str) -> Result<Follow, Unavailable> {
        let newest = bounded(
            "reading log-cache",
            self.page(app_guid, "descending=true&limit=1"),
        )
        .await?;
        // Korifi's log-cache keeps app logs only and answers any read with
        // them.
        if let Some(e) = newest.first().filter(|e| e.timer.is_none()) {
            return Err(Unavailable::Stub {
                url: self.url.clone(),
                kind: e.kind(),
            });
        }
        let newest = newest.first().map_or(0, |e| e.timestamp);
        Ok(Follow {
            guid: app_guid.to_string(),
            from: if newest > 0 {
                newest.saturating_add(1)
            } else {
                0
            },
            newest,
            traffic: Traffic::default(),
            split: None,
            read_at: None,
        })
    }

    /// The app's counters with what arrived since the last read.
    pub async fn read(&self, f: &mut Follow) -> Result<Snapshot, PlatformError> {
        if f.read_at.is_some_and(|t| t.elapsed() < READ_EVERY) {
            return Ok(f.snapshot());
        }
        // A failed read waits its turn like any other.
        f.read_at = Some(Instant::now());
        let (envelopes, behind) = bounded("reading log-cache", self.pages(&f.guid, f.from)).await?;
        f.take(&envelopes, behind);
        Ok(f.snapshot())
    }

    /// Timers from `start` on, page after page; true when more wait.
    async fn pages(
        &self,
        guid: &str,
        mut start: i64,
    ) -> Result<(Vec<Envelope>, bool), PlatformError> {
        let mut all = Vec::new();
        for _ in 0..MAX_PAGES {
            let batch = self
                .page(guid, &format!("start_time={start}&limit={LIMIT}"))
                .await?;
            let full = batch.len() >= LIMIT;
            if let Some(last) = batch.iter().map(|e| e.timestamp).max() {
                start = last.saturating_add(1);
            }
            all.extend(batch);
            if !full {
                return Ok((all, false));
            }
        }
        Ok((all, true))
    }

    async fn page(&self, guid: &str, query: &str) -> Result<Vec<Envelope>, PlatformError> {
        let url = format!(
            "{}/api/v1/read/{guid}?envelope_types=TIMER&{query}",
            self.url
        );
        let read: ReadResponse = self.client.get_linked(&url).await?;
        Ok(read.envelopes.batch)
    }
}

async fn bounded<T>(
    what: &str,
    call: impl Future<Output = Result<T, PlatformError>>,
) -> Result<T, PlatformError> {
    tokio::time::timeout(READ_TIMEOUT, call)
        .await
        .unwrap_or_else(|_| {
            Err(PlatformError::Timeout {
                what: what.to_string(),
                after: READ_TIMEOUT,
            })
        })
}

impl Follow {
    pub fn snapshot(&self) -> Snapshot {
        self.traffic.snapshot()
    }

    /// From now on counts the requests `process_guid`'s instances served
    /// apart (`split_snapshot`), the rest as before.
    pub fn split(&mut self, process_guid: &str) {
        if self.split.as_ref().is_none_or(|(g, _)| g != process_guid) {
            self.split = Some((process_guid.to_string(), Traffic::default()));
        }
    }

    /// The split-off process's counters (see `split`).
    pub fn split_snapshot(&self) -> Option<Snapshot> {
        self.split.as_ref().map(|(_, t)| t.snapshot())
    }

    /// Counts the settled part of what a read brought.
    fn take(&mut self, envelopes: &[Envelope], behind: bool) {
        let Some(last) = envelopes.iter().map(|e| e.timestamp).max() else {
            return;
        };
        self.newest = self.newest.max(last);
        // A read that stopped at its page bound is behind: everything it
        // brought is older than what still waits, so settled.
        let frontier = if behind {
            last.saturating_add(1)
        } else {
            self.newest.saturating_sub(SETTLE.as_nanos() as i64)
        };
        for e in envelopes {
            if (self.from..frontier).contains(&e.timestamp)
                && let Some((status, latency)) = e.request()
            {
                let counters = match &self.split {
                    Some((guid, t)) if e.tag("process_id").as_deref() == Some(guid) => t,
                    _ => &self.traffic,
                };
                counters.record(status, latency);
            }
        }
        self.from = self.from.max(frontier);
    }
}

#[derive(Deserialize)]
struct ReadResponse {
    #[serde(default)]
    envelopes: Batch,
}

#[derive(Default, Deserialize)]
struct Batch {
    #[serde(default)]
    batch: Vec<Envelope>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "int64")]
    timestamp: i64,
    #[serde(default)]
    tags: HashMap<String, String>,
    /// `{"text": ..}`, `{"integer": ..}` or `{"decimal": ..}` values.
    #[serde(default)]
    deprecated_tags: HashMap<String, Value>,
    timer: Option<Timer>,
    log: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Timer {
    #[serde(default)]
    name: String,
    #[serde(default, deserialize_with = "int64")]
    start: i64,
    #[serde(default, deserialize_with = "int64")]
    stop: i64,
}

impl Envelope {
    fn kind(&self) -> &'static str {
        match (&self.timer, &self.log) {
            (Some(_), _) => "TIMER",
            (None, Some(_)) => "LOG",
            (None, None) => "other",
        }
    }

    fn tag(&self, name: &str) -> Option<String> {
        if let Some(v) = self.tags.get(name) {
            return Some(v.clone());
        }
        let v = self.deprecated_tags.get(name)?;
        ["text", "integer", "decimal"]
            .iter()
            .find_map(|k| match v.get(k)? {
                Value::String(s) => Some(s.clone()),
                n @ Value::Number(_) => Some(n.to_string()),
                _ => None,
            })
    }

    /// One request as the router saw it: its status and latency.
    fn request(&self) -> Option<(u16, Duration)> {
        let t = self.timer.as_ref().filter(|t| t.name == "http")?;
        if !matches!(self.tag("peer_type").as_deref(), None | Some("" | "Client")) {
            return None;
        }
        // Without a status there is no class to count it in.
        let status = self
            .tag("status_code")?
            .trim()
            .parse::<u16>()
            .ok()
            .filter(|s| (100..600).contains(s))?;
        let nanos = u64::try_from(t.stop.saturating_sub(t.start)).unwrap_or(0);
        Some((status, Duration::from_nanos(nanos)))
    }
}

/// Proto3 JSON writes int64 as a string; a number is taken too.
fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Int {
        Text(String),
        Number(i64),
    }
    match Int::deserialize(d)? {
        Int::Number(n) => Ok(n),
        Int::Text(s) => s.trim().parse().map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIMER read in the documented shape (sources in the module doc and
    /// tests/fixtures/cf/README.md).
    const FIXTURE: &str = include_str!("../../tests/fixtures/cf/log_cache_read_timers.json");

    fn timer(ts: i64, status: &str, ms: i64) -> Envelope {
        serde_json::from_value(serde_json::json!({
            "timestamp": ts.to_string(), "source_id": "app", "instance_id": "0",
            "deprecated_tags": {}, "tags": {"peer_type": "Client", "status_code": status},
            "timer": {"name": "http", "start": (ts - ms * 1_000_000).to_string(), "stop": ts.to_string()}
        }))
        .unwrap()
    }

    #[test]
    fn router_timers_become_requests_and_the_rest_is_left_out() {
        let read: ReadResponse = serde_json::from_str(FIXTURE).unwrap();
        let seen: Vec<_> = read.envelopes.batch.iter().map(Envelope::request).collect();
        let ms = Duration::from_millis;
        assert_eq!(
            seen,
            [
                Some((200, ms(2))),
                None, // the router's other side of the same request
                Some((503, ms(40))),
                Some((404, ms(5))), // tags in `deprecated_tags`
                None,               // not an HTTP timer
            ]
        );
        assert_eq!(read.envelopes.batch[0].timestamp, 1_700_000_000_002_000_000);
        // An int64 written as a number, and an empty answer.
        assert_eq!(timer(5, "200", 0).timestamp, 5);
        let empty: ReadResponse = serde_json::from_str(r#"{"envelopes":{}}"#).unwrap();
        assert!(empty.envelopes.batch.is_empty());
    }

    #[test]
    fn the_newest_seconds_wait_for_late_envelopes_and_nothing_counts_twice() {
        let s = 1_000_000_000i64;
        let mut f = Follow {
            guid: "app".into(),
            from: 100 * s,
            newest: 100 * s,
            traffic: Traffic::default(),
            split: None,
            read_at: None,
        };
        let first = [timer(101 * s, "200", 1), timer(104 * s, "503", 1)];
        f.take(&first, false);
        // 104 s is the newest: only what is 2 s older counts yet.
        assert_eq!(f.snapshot().status, [0, 1, 0, 0, 0]);
        assert_eq!(f.from, 102 * s);
        // The next read starts at 102 s: a late timer from 103 s arrives.
        let second = [
            timer(103 * s, "200", 1),
            timer(104 * s, "503", 1),
            timer(107 * s, "200", 1),
        ];
        f.take(&second, false);
        assert_eq!(f.snapshot().status, [0, 2, 0, 0, 1]);
        // A read behind by its page bound counts all it brought.
        f.take(&[timer(107 * s, "200", 1)], true);
        assert_eq!(f.snapshot().requests(), 4);
        assert_eq!(f.from, 107 * s + 1);
    }

    #[test]
    fn a_deployments_new_process_is_counted_apart_by_its_process_id() {
        let s = 1_000_000_000i64;
        let tagged = |ts: i64, status: &str, process: &str| {
            let mut e = timer(ts, status, 1);
            e.tags.insert("process_id".into(), process.into());
            e
        };
        let mut f = Follow {
            guid: "app".into(),
            from: 0,
            newest: 0,
            traffic: Traffic::default(),
            split: None,
            read_at: None,
        };
        f.split("new");
        // The fooling input: a `process_id` only like the new one's, and
        // an envelope with none, both count as the old instances'.
        let batch = [
            tagged(s, "500", "new"),
            tagged(s + 1, "200", "new"),
            tagged(s + 2, "200", "old"),
            tagged(s + 3, "200", "new-x"),
            timer(s + 4, "200", 1),
            timer(10 * s, "200", 1),
        ];
        f.take(&batch, false);
        assert_eq!(f.split_snapshot().unwrap().status, [0, 1, 0, 0, 1]);
        assert_eq!(f.snapshot().status, [0, 3, 0, 0, 0]);
    }
}
