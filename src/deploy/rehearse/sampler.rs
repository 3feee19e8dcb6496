//! The second connection: while the rehearsal's migration runs, every few
//! milliseconds, which sessions on the scratch database hold or wait for
//! which relation locks (`pg_locks` joined to `pg_stat_activity` and
//! `pg_class`), and what each is running.
//!
//! Sampling sees what lasts; a lock held for less than one interval may be
//! missed, which is the harmless case. Holds are measured from the first to
//! the last sample that saw them (PostgreSQL keeps a lock to the end of its
//! transaction, so this is how long the old release would queue). A
//! statement's time is exact once its session is seen idle after it
//! (`state_change - query_start`), else a lower bound.

use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::Client;

const QUERY: &str = "
SELECT a.pid, extract(epoch FROM clock_timestamp())::float8 * 1000,
       a.state, a.query,
       extract(epoch FROM a.query_start)::float8 * 1000,
       extract(epoch FROM a.state_change)::float8 * 1000,
       extract(epoch FROM a.xact_start)::float8 * 1000,
       l.mode, l.granted, l.relation::int8
FROM pg_stat_activity a
LEFT JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation'
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
  AND a.backend_type = 'client backend'";

/// One row of a sample: a session, and one relation lock it holds or waits
/// for (none if it holds none).
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub pid: i32,
    pub now_ms: f64,
    pub state: Option<String>,
    pub query: Option<String>,
    pub query_start_ms: Option<f64>,
    pub state_change_ms: Option<f64>,
    pub xact_start_ms: Option<f64>,
    pub lock: Option<(String, bool, i64)>,
}

/// A lock as held over consecutive samples of one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Hold {
    pub relation: i64,
    pub mode: String,
    pub granted: bool,
    pub first_ms: f64,
    pub last_ms: f64,
    pub samples: u32,
    /// The statement running when it was first seen.
    pub statement: String,
}

/// A statement seen running.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub text: String,
    pub start_ms: f64,
    pub last_seen_ms: f64,
    /// When its session went idle after it: its time is then exact.
    pub end_ms: Option<f64>,
}

impl Statement {
    pub fn took(&self) -> (Duration, bool) {
        let end = self.end_ms.unwrap_or(self.last_seen_ms);
        let ms = (end - self.start_ms).max(0.0);
        (Duration::from_secs_f64(ms / 1e3), self.end_ms.is_some())
    }
}

/// Everything the samples saw, folded as they come (bounded by the number
/// of distinct locks and statements, not by the number of samples).
#[derive(Clone, Debug, Default)]
pub struct Watch {
    /// By (pid, transaction start, relation, mode, granted).
    pub holds: BTreeMap<(i32, i64, i64, String, bool), Hold>,
    /// By (pid, statement start).
    pub statements: BTreeMap<(i32, i64), Statement>,
    pub samples: u32,
    pub first_ms: f64,
    pub last_ms: f64,
    pub max_gap_ms: f64,
    pub sessions: std::collections::BTreeSet<i32>,
}

impl Watch {
    /// Folds in one sample (its rows share one `now_ms`).
    pub fn see(&mut self, now_ms: f64, rows: &[Seen]) {
        if self.samples == 0 {
            self.first_ms = now_ms;
        } else {
            self.max_gap_ms = self.max_gap_ms.max(now_ms - self.last_ms);
        }
        self.samples += 1;
        self.last_ms = now_ms;
        for r in rows {
            self.sessions.insert(r.pid);
            let active = r.state.as_deref() == Some("active");
            let text = r.query.clone().unwrap_or_default();
            if let Some(start) = r.query_start_ms
                && !text.trim().is_empty()
            {
                let s = self
                    .statements
                    .entry((r.pid, start as i64))
                    .or_insert_with(|| Statement {
                        text: text.clone(),
                        start_ms: start,
                        last_seen_ms: now_ms,
                        end_ms: None,
                    });
                s.last_seen_ms = now_ms;
                if !active {
                    s.end_ms = r.state_change_ms.or(Some(now_ms));
                }
            }
            if let Some((mode, granted, relation)) = &r.lock {
                let xact = r.xact_start_ms.unwrap_or(0.0) as i64;
                let key = (r.pid, xact, *relation, mode.clone(), *granted);
                let h = self.holds.entry(key).or_insert_with(|| Hold {
                    relation: *relation,
                    mode: mode.clone(),
                    granted: *granted,
                    first_ms: now_ms,
                    last_ms: now_ms,
                    samples: 0,
                    statement: text.clone(),
                });
                h.last_ms = now_ms;
                h.samples += 1;
            }
        }
    }

    /// The mean time between samples.
    pub fn interval(&self) -> Duration {
        let n = f64::from(self.samples.max(2) - 1);
        Duration::from_secs_f64(((self.last_ms - self.first_ms) / n).max(0.0) / 1e3)
    }
}

/// Samples `client`'s database every `every` until `stop` fires.
pub async fn run(
    client: &Client,
    every: Duration,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<Watch, tokio_postgres::Error> {
    let query = client.prepare(QUERY).await?;
    let mut watch = Watch::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let rows = client.query(&query, &[]).await?;
        let seen: Vec<Seen> = rows
            .iter()
            .map(|r| Seen {
                pid: r.get(0),
                now_ms: r.get(1),
                state: r.get(2),
                query: r.get(3),
                query_start_ms: r.get(4),
                state_change_ms: r.get(5),
                xact_start_ms: r.get(6),
                lock: match (r.get::<_, Option<String>>(7), r.get(8), r.get(9)) {
                    (Some(m), Some(g), Some(rel)) => Some((m, g, rel)),
                    _ => None,
                },
            })
            .collect();
        let now = match seen.first() {
            Some(s) => s.now_ms,
            None => client
                .query_one(
                    "SELECT extract(epoch FROM clock_timestamp())::float8 * 1000",
                    &[],
                )
                .await?
                .get(0),
        };
        watch.see(now, &seen);
    }
    Ok(watch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(pid: i32, now: f64, state: &str, q: &str, start: f64, lock: Option<&str>) -> Seen {
        Seen {
            pid,
            now_ms: now,
            state: Some(state.into()),
            query: Some(q.into()),
            query_start_ms: Some(start),
            state_change_ms: Some(if state == "active" {
                start
            } else {
                start + 7.0
            }),
            xact_start_ms: Some(1.0),
            lock: lock.map(|m| (m.to_string(), true, 42)),
        }
    }

    #[test]
    fn folds_samples_into_holds_and_timed_statements() {
        let mut w = Watch::default();
        let alter = "ALTER TABLE t ADD x int";
        w.see(
            100.0,
            &[seen(
                7,
                100.0,
                "active",
                alter,
                99.0,
                Some("AccessExclusiveLock"),
            )],
        );
        w.see(
            105.0,
            &[seen(
                7,
                105.0,
                "active",
                alter,
                99.0,
                Some("AccessExclusiveLock"),
            )],
        );
        w.see(
            112.0,
            &[seen(
                7,
                112.0,
                "idle in transaction",
                alter,
                99.0,
                Some("AccessExclusiveLock"),
            )],
        );
        w.see(117.0, &[seen(7, 117.0, "idle", "COMMIT", 113.0, None)]);
        assert_eq!(w.samples, 4);
        assert_eq!(w.max_gap_ms, 7.0);
        assert_eq!(w.interval(), Duration::from_secs_f64(17.0 / 3.0 / 1e3));
        let hold = w.holds.values().next().unwrap();
        assert_eq!(
            (hold.first_ms, hold.last_ms, hold.samples),
            (100.0, 112.0, 3)
        );
        assert_eq!(hold.statement, alter);
        let s = &w.statements[&(7, 99)];
        // Seen idle after it: exactly state_change - query_start.
        assert_eq!(s.took(), (Duration::from_millis(7), true));
        assert_eq!(w.statements.len(), 2);
    }
}
