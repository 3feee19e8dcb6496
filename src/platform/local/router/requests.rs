//! The router's record of each request an app answered, newest last: what
//! log-cache's read serves (`log_cache_api.rs`), so a CF client judges a
//! local deploy from the same per-request timers it reads on CF. Bounded:
//! the newest [`KEPT`] per app, each URI cut at [`URI_MAX`] bytes and
//! without its query (which may carry secrets), about 5 MiB per app at most.
//!
//! Timestamps are the wall clock in nanoseconds, as gorouter's. Within one
//! app they only grow (a record is stamped under the ring's lock, one
//! nanosecond past the last if the clock stepped back or stood still), so
//! a reader paging with `start_time = last + 1` never skips one, and a
//! window is two binary searches.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Records kept per app.
pub const KEPT: usize = 10_000;
/// A longer URI is cut (at a character boundary).
pub const URI_MAX: usize = 512;

/// One request as the router saw it, answered by one instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// When the request came in (ns since the Unix epoch).
    pub start: i64,
    /// When the app's answer head came back: the time the router's traffic
    /// counters judge too, so both views of a window agree.
    pub stop: i64,
    pub method: http::Method,
    /// `http://<host><path>`, as gorouter writes it.
    pub uri: Box<str>,
    pub status: u16,
    /// The instance that answered: its index and port.
    pub index: u32,
    pub port: u16,
    /// Its generation (`supervisor::process_guid` names its process).
    pub generation: std::sync::Arc<str>,
}

/// What the router knows of a request when it is answered.
pub struct Seen<'a> {
    pub method: &'a http::Method,
    pub host: &'a str,
    /// The request target; its query is dropped.
    pub target: &'a str,
}

/// Which records a read wants: stops in `[start, end)`, at most `limit`,
/// the oldest first or (`descending`) the newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub start: i64,
    pub end: Option<i64>,
    pub limit: usize,
    pub descending: bool,
}

#[derive(Default)]
pub struct Requests {
    ring: Mutex<VecDeque<Record>>,
}

fn unix_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn uri(seen: &Seen) -> Box<str> {
    let path = seen.target.split('?').next().unwrap_or_default();
    let mut uri = format!("http://{}{path}", seen.host);
    if uri.len() > URI_MAX {
        let mut cut = URI_MAX;
        while !uri.is_char_boundary(cut) {
            cut -= 1;
        }
        uri.truncate(cut);
    }
    uri.into_boxed_str()
}

impl Requests {
    /// Keeps one answered request that took `took` to its answer's head.
    pub fn push(
        &self,
        seen: &Seen,
        status: u16,
        took: Duration,
        index: u32,
        port: u16,
        generation: &std::sync::Arc<str>,
    ) {
        let uri = uri(seen);
        let took = i64::try_from(took.as_nanos()).unwrap_or(i64::MAX);
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let now = unix_ns();
        let stop = ring.back().map_or(now, |last| now.max(last.stop + 1));
        if ring.len() >= KEPT {
            ring.pop_front();
        }
        ring.push_back(Record {
            start: stop.saturating_sub(took),
            stop,
            method: seen.method.clone(),
            uri,
            status,
            index,
            port,
            generation: generation.clone(),
        });
    }

    /// The records in `w`.
    pub fn read(&self, w: &Window) -> Vec<Record> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let from = ring.partition_point(|r| r.stop < w.start);
        let to = w
            .end
            .map_or(ring.len(), |end| ring.partition_point(|r| r.stop < end));
        let n = to.saturating_sub(from).min(w.limit);
        if w.descending {
            ring.range(to - n..to).rev().cloned().collect()
        } else {
            ring.range(from..from + n).cloned().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(target: &str) -> Seen<'_> {
        Seen {
            method: &http::Method::GET,
            host: "shop.apps.localhost",
            target,
        }
    }

    fn window(start: i64, end: Option<i64>, limit: usize, descending: bool) -> Window {
        Window {
            start,
            end,
            limit,
            descending,
        }
    }

    #[test]
    fn stamps_grow_windows_bound_and_the_ring_keeps_the_newest() {
        let r = Requests::default();
        for i in 0..(KEPT + 5) {
            let status = 200 + (i % 3) as u16;
            r.push(
                &seen("/a?token=x"),
                status,
                Duration::from_millis(2),
                0,
                9,
                &"".into(),
            );
        }
        let all = r.read(&window(0, None, usize::MAX, false));
        assert_eq!(all.len(), KEPT, "bounded");
        assert!(
            all.windows(2).all(|w| w[0].stop < w[1].stop),
            "strictly growing"
        );
        // The 5 oldest were dropped: the first kept is the 6th pushed.
        assert_eq!(all[0].status, 200 + (5 % 3) as u16);
        assert_eq!(&*all[0].uri, "http://shop.apps.localhost/a", "no query");
        assert_eq!(all[0].stop - all[0].start, 2_000_000);

        // [start, end): the bounds as log-cache takes them.
        let (s, e) = (all[10].stop, all[20].stop);
        let mid = r.read(&window(s, Some(e), usize::MAX, false));
        assert_eq!(mid.len(), 10);
        assert_eq!(mid[0], all[10]);
        let newest = r.read(&window(s, Some(e), 3, true));
        assert_eq!(newest, [all[19].clone(), all[18].clone(), all[17].clone()]);
        let oldest = r.read(&window(s, Some(e), 3, false));
        assert_eq!(oldest, all[10..13]);
        assert!(r.read(&window(e, Some(s), 3, false)).is_empty());
        assert!(r.read(&window(i64::MAX, None, 3, true)).is_empty());
    }

    #[test]
    fn a_long_uri_is_cut_at_a_character_boundary() {
        let long = format!("/{}", "é".repeat(URI_MAX));
        let r = Requests::default();
        r.push(&seen(&long), 200, Duration::ZERO, 0, 1, &"".into());
        let uri = r.read(&window(0, None, 1, false))[0].uri.clone();
        assert!(
            uri.len() <= URI_MAX && uri.len() > URI_MAX - 2,
            "{}",
            uri.len()
        );
    }
}
