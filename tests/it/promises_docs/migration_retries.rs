//! `databases.md`: "A migration that gave up on a lock is tried again with
//! backoff (1 s, 2 s, 4 s, ...; `migrate.retries`, default 3); each attempt
//! shows under the step and as an `attempt` event."

use crate::deploy::{Fixture, events, text};
use crate::util::exits;
use std::time::Duration;

/// A migration that gives up on a lock every time (PostgreSQL's message,
/// exit 1) runs 4 times: 3 `attempt` events say it goes again in 1, 2 and
/// 4 s, the runs are that far apart, and the deploy then fails saying so.
#[test]
fn a_migration_that_gives_up_on_a_lock_is_retried_3_times_after_1_2_and_4_s() {
    let f = Fixture::new("");
    std::fs::write(
        f.root.path().join("app/migrate.py"),
        "import os, sys, time\n\
         open(os.environ['MIGRATION_LOG'], 'a').write('%f\\n' % time.time())\n\
         print('ERROR:  canceling statement due to lock timeout', file=sys.stderr)\n\
         sys.exit(1)\n",
    )
    .unwrap();
    let out = exits(f.run(&["deploy", "--release", "v1", "--json"]), 1);
    let attempts: Vec<serde_json::Value> = events(&out)
        .into_iter()
        .filter(|e| e["event"] == "attempt")
        .collect();
    let seen: Vec<(u64, u64, f64)> = attempts
        .iter()
        .map(|a| {
            assert_eq!(a["step"], "migrate", "{a}");
            (
                a["attempt"].as_u64().unwrap(),
                a["attempts"].as_u64().unwrap(),
                a["retry_in_ms"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [(1, 4, 1000.0), (2, 4, 2000.0), (3, 4, 4000.0)],
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("gave up waiting for a lock"),
        "{}",
        text(&out)
    );

    // The runs themselves, as the migration logged them.
    let runs: Vec<f64> = std::fs::read_to_string(f.migration_log())
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(runs.len(), 4, "{runs:?}");
    for (i, wait) in [1.0, 2.0, 4.0].into_iter().enumerate() {
        let gap = Duration::from_secs_f64(runs[i + 1] - runs[i]);
        // At least the wait; at most the wait and a loaded machine's task
        // start.
        assert!(
            gap >= Duration::from_secs_f64(wait) && gap < Duration::from_secs_f64(wait + 5.0),
            "run {} came {gap:?} after run {}",
            i + 2,
            i + 1
        );
    }
}
