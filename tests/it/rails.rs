//! The Rails story end to end: the real Rails app in `examples/rails-app`
//! (Debian's Rails 6.1, puma, ruby-pg) on a real PostgreSQL the local
//! platform runs as a bound service, deployed release by release while a
//! client writes and reads the database through the route the whole time.

use crate::deploy::{Fixture, request, text};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// One request of the load: when it started, how long it took, and the
/// release that answered (or why it failed).
#[derive(Debug)]
pub struct Sample {
    pub at: Instant,
    pub took: Duration,
    pub answer: Result<String, String>,
}

/// `POST /products` through the route, back to back (bounded to three
/// minutes): each request inserts a row and counts the table.
pub struct DbLoad {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Sample>>>,
}

impl DbLoad {
    /// Starts the load and returns once its first request was answered (a
    /// deploy started after it is surely under load), within 30 s.
    pub fn start(port: u16) -> DbLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (first, answered) = mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let mut samples = Vec::new();
            let until = Instant::now() + Duration::from_secs(180);
            while !flag.load(Ordering::SeqCst) && Instant::now() < until {
                let at = Instant::now();
                let answer = match request(port, "rails-app", "POST", "/products") {
                    // Puma may answer chunked: find the line, not the first word.
                    Ok((201, body)) if body.contains("\nproducts ") => Ok(body
                        .split("release ")
                        .nth(1)
                        .and_then(|r| r.split_whitespace().next())
                        .unwrap_or("")
                        .to_string()),
                    Ok((status, body)) => Err(format!("HTTP {status}: {body}")),
                    Err(e) => Err(e),
                };
                samples.push(Sample {
                    at,
                    took: at.elapsed(),
                    answer,
                });
                let _ = first.send(());
                std::thread::sleep(Duration::from_millis(10));
            }
            samples
        });
        answered
            .recv_timeout(Duration::from_secs(30))
            .expect("the load's first request was answered");
        DbLoad {
            stop,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

pub fn failures(samples: &[Sample]) -> Vec<&String> {
    samples
        .iter()
        .filter_map(|s| s.answer.as_ref().err())
        .collect()
}

/// A deploy's exit code, its `--json` events with the moment each arrived,
/// and its stderr. `on_event` sees each event as it arrives.
pub fn deploy_live(f: &Fixture, args: &[&str], on_event: impl Fn(&Value)) -> Live {
    let mut child = f.spawn(args);
    let stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let mut events = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let Ok(line) = line else { break };
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            on_event(&v);
            events.push((Instant::now(), v));
        }
    }
    let status = child.wait().unwrap();
    (status.code(), events, err.join().unwrap())
}

/// A deploy's exit code, its events as they arrived, and its stderr.
type Live = (Option<i32>, Vec<(Instant, Value)>, String);

/// The destructive release `d1` forced past the guard (`--allow
/// remove-column` with `reason`) under the write load: the deploy's exit
/// code, events and stderr, and the load's samples.
fn forced_destructive(f: &Fixture, reason: &str) -> (Live, Vec<Sample>) {
    let load = DbLoad::start(f.router_port);
    let args = [
        "deploy",
        "--release",
        "d1",
        "--json",
        "--allow",
        "remove-column",
        "--reason",
        reason,
    ];
    let live = deploy_live(f, &args, |_| {});
    (live, load.finish())
}

/// When the step whose text contains `text` reached `status`.
pub fn step_at(events: &[(Instant, Value)], status: &str, text: &str) -> Instant {
    events
        .iter()
        .find(|(_, e)| {
            e["event"] == "step"
                && e["status"] == status
                && e["text"].as_str().is_some_and(|t| t.contains(text))
        })
        .unwrap_or_else(|| panic!("no `{text}` step {status} in {events:?}"))
        .0
}

/// The example with the migration guard in its plugin directory, on a fresh
/// platform home; `edit` changes its deploy file.
pub fn rails(edit: impl Fn(String) -> String) -> Fixture {
    let f = Fixture::example("rails-app", edit);
    f.plugins(&["migration-guard"]);
    f
}

/// Copies `releases/NAME` over the app, as the example's README says.
pub fn overlay(f: &Fixture, name: &str) {
    let src = f.root.path().join("releases").join(name);
    let status = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.display()))
        .arg(f.root.path())
        .status()
        .unwrap();
    assert!(status.success());
}

/// The service's connection URL, from `platform service list --json`.
pub fn database_url(f: &Fixture, service: &str) -> String {
    let out = f.run(&["platform", "service", "list", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == service)
        .unwrap_or_else(|| panic!("no service {service}: {all}"))["credentials"]["uri"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Runs SQL with psql (the real client) and returns its unaligned output.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .expect("psql (Debian's postgresql-client) runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn columns(url: &str) -> String {
    psql(
        url,
        "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns \
         WHERE table_name = 'products'",
    )
}

#[test]
fn rails_walks_v1_v2_v3_on_a_real_database_with_zero_failed_requests() {
    let f = rails(|y| y);
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving_on("rails-app", "v1");
    let url = database_url(&f, "rails-db");
    assert_eq!(columns(&url), "created_at,id,legacy_code,name,updated_at");

    // v2 expands: old v1 code keeps writing while the column is added.
    overlay(&f, "v2");
    let load = DbLoad::start(f.router_port);
    let (code, events, err) = deploy_live(&f, &["deploy", "--release", "v2", "--json"], |_| {});
    let samples = load.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(failures(&samples).is_empty(), "{:?}", failures(&samples));
    // The host passed `migrate.lock_timeout` to the guard, which says the
    // added column's brief exclusive lock is safe because of it.
    let lock_note = events.iter().find_map(|(_, e)| {
        e["findings"]
            .as_array()?
            .iter()
            .find(|f| f["rule"] == "lock-timeout")
            .cloned()
    });
    let lock_note = lock_note.unwrap_or_else(|| panic!("no lock-timeout finding: {events:?}"));
    assert_eq!(lock_note["severity"], "info", "{lock_note}");
    assert!(
        lock_note["message"]
            .as_str()
            .unwrap()
            .contains("migrate.lock_timeout (5s)"),
        "{lock_note}"
    );
    let migrated = step_at(&events, "done", "migrate once");
    let old_after = samples
        .iter()
        .filter(|s| s.at > migrated && s.answer.as_deref() == Ok("v1"))
        .count();
    let timeline: Vec<String> = samples
        .iter()
        .map(|s| {
            let ms = if s.at > migrated {
                (s.at - migrated).as_millis() as i64
            } else {
                -((migrated - s.at).as_millis() as i64)
            };
            format!("{ms}:{:?}", s.answer)
        })
        .collect();
    assert!(
        old_after > 0,
        "v1 answered after v2's migration: {timeline:?} {events:?}"
    );
    assert_eq!(
        columns(&url),
        "created_at,description,id,legacy_code,name,updated_at"
    );
    f.assert_serving_on("rails-app", "v2");

    // v3 contracts: the column goes only once both colors run v3.
    overlay(&f, "v3");
    let load = DbLoad::start(f.router_port);
    let (code, events, err) = deploy_live(&f, &["deploy", "--release", "v3", "--json"], |_| {});
    let samples = load.finish();
    assert_eq!(code, Some(0), "{err}");
    assert!(failures(&samples).is_empty(), "{:?}", failures(&samples));
    let contract = step_at(&events, "started", "contract phase");
    for color in ["blue", "green"] {
        assert!(
            step_at(&events, "done", &format!("map the route to {color}")) < contract,
            "{color} serves v3 before the contract migration"
        );
    }
    let during: Vec<&Sample> = samples.iter().filter(|s| s.at > contract).collect();
    assert!(!during.is_empty(), "requests ran during the contract phase");
    assert!(
        during.iter().all(|s| s.answer.as_deref() == Ok("v3")),
        "only v3 answers once the contract phase starts"
    );
    assert_eq!(columns(&url), "created_at,description,id,name,updated_at");
    let rows: usize = psql(&url, "SELECT count(*) FROM products").parse().unwrap();
    assert!(rows >= samples.len(), "{rows} rows");
    f.assert_serving_on("rails-app", "v3");
}

#[test]
fn the_guard_blocks_the_destructive_release_and_forcing_it_breaks_the_old_one() {
    let f = rails(|y| y);
    crate::util::succeeded(f.deploy("v1"));
    let url = database_url(&f, "rails-db");
    overlay(&f, "destructive");
    let before = f.colors();
    let history = f.last_history();

    let out = f.run(&["deploy", "--release", "d1", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let events = String::from_utf8_lossy(&out.stdout);
    assert!(events.contains("remove-column"), "{events}");
    assert!(!events.contains("\"step\":\"unmap\""), "no route changed");
    // Blocked, nothing changed: the column, each color's release, route
    // and health, what the route serves, the last deploy on record.
    assert!(columns(&url).contains("legacy_code"), "nothing migrated");
    let v1 = (Value::from("v1"), Value::Bool(true), Value::Bool(true));
    assert_eq!(
        before
            .iter()
            .map(|(c, r, m, h, _)| (c.as_str(), (r.clone(), m.clone(), h.clone())))
            .collect::<Vec<_>>(),
        [("blue", v1.clone()), ("green", v1)],
        "v1 on both colors, mapped and healthy, before"
    );
    assert_eq!(f.colors(), before, "after the blocked deploy");
    f.assert_route_serves("rails-app", "v1");
    let last = f.last_history();
    assert_eq!(
        (&last["release"], &last["result"]),
        (&"d1".into(), &"blocked".into()),
        "{last}"
    );
    assert_eq!(last["releases"], history["releases"], "{last}");

    // Forced through: the old release fails its writes until it leaves the
    // route. This is what the guard prevents.
    let ((code, _, err), samples) = forced_destructive(&f, "showing what the guard prevents");
    assert_eq!(code, Some(0), "{err}");
    let failed = failures(&samples);
    eprintln!(
        "forced destructive deploy: {} of {} requests failed",
        failed.len(),
        samples.len()
    );
    assert!(!failed.is_empty(), "the old release broke");
    assert!(
        failed.iter().all(|e| e.starts_with("HTTP 500")),
        "{failed:?}"
    );
    assert!(!columns(&url).contains("legacy_code"));
    f.assert_serving_on("rails-app", "d1");
}

#[test]
fn a_migration_stuck_behind_a_lock_gives_up_within_the_timeout_then_retries() {
    stuck_migration(rails(|y| y.replace("lock_timeout: 5s", "lock_timeout: 1s")));
}

/// The same as `platform: cf`: the migration is a CF task on the new
/// droplet, its exit 75 (the lock timeout) retried as a new task.
#[test]
fn as_cf_a_migration_stuck_behind_a_lock_gives_up_within_the_timeout_then_retries() {
    let f = Fixture::example_cf("rails-app", |y| {
        y.replace("lock_timeout: 5s", "lock_timeout: 1s")
    });
    f.plugins(&["migration-guard"]);
    // Cloud Foundry makes no service on a deploy's behalf.
    let out = f.run(&[
        "platform", "service", "create", "rails-db", "--type", "postgres",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    stuck_migration(f);
}

fn stuck_migration(f: Fixture) {
    crate::util::succeeded(f.deploy("v1"));
    let url = database_url(&f, "rails-db");

    // A session holds a lock on the table in an open transaction, as a long
    // report query would.
    let mut holder = Command::new("psql")
        .args([&url, "-v", "ON_ERROR_STOP=1", "-At"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    writeln!(
        stdin,
        "BEGIN; LOCK TABLE products IN ACCESS SHARE MODE; SELECT 'locked';"
    )
    .unwrap();
    // psql echoes command tags (BEGIN, LOCK TABLE) before the row.
    let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
    assert!(
        lines.by_ref().take(5).any(|l| l.unwrap() == "locked"),
        "the lock is held"
    );

    overlay(&f, "v2");
    let load = DbLoad::start(f.router_port);
    let (tx, rx) = mpsc::channel();
    let releaser = std::thread::spawn(move || {
        // Release the lock after the first attempt gave up (bounded wait).
        let got = rx.recv_timeout(Duration::from_secs(120)).is_ok();
        writeln!(stdin, "COMMIT;").unwrap();
        drop(stdin);
        got
    });
    let (code, events, err) = deploy_live(&f, &["deploy", "--release", "v2", "--json"], |e| {
        if e["event"] == "attempt" {
            let _ = tx.send(());
        }
    });
    let samples = load.finish();
    assert!(releaser.join().unwrap(), "an attempt gave up on the lock");
    holder.wait().unwrap();
    assert_eq!(code, Some(0), "{err}");

    let attempts: Vec<&Value> = events
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["event"] == "attempt")
        .collect();
    assert_eq!(attempts[0]["step"], "migrate");
    assert_eq!(attempts[0]["attempt"], 1);
    assert_eq!(attempts[0]["attempts"], 4, "retries: 3 by default");
    assert!(
        attempts[0]["error"]
            .as_str()
            .unwrap()
            .contains("lock_timeout 1s"),
        "{attempts:?}"
    );
    assert!(failures(&samples).is_empty(), "{:?}", failures(&samples));
    let slowest = samples.iter().map(|s| s.took).max().unwrap();
    // How long a request takes on this machine right now without the lock
    // queue: the load before the migration began (the first color booting
    // beside it, as during the migration).
    let migrating = step_at(&events, "started", "migrate once");
    let usual = samples
        .iter()
        .filter(|s| s.at + s.took < migrating)
        .map(|s| s.took)
        .max()
        .unwrap_or_else(|| panic!("no request ended before the migration: {events:?}"));
    eprintln!(
        "lock test: {} requests, slowest {slowest:?} (before the migration {usual:?}), \
         {} attempt(s) gave up",
        samples.len(),
        attempts.len()
    );
    // Requests queue behind the waiting ALTER TABLE, but only for about
    // the lock timeout (1 s): never for as long as the lock is held (then
    // they would time out). An idle machine shows about 1.04 s, with 30 ms
    // before the migration; the bound is the lock timeout, two seconds,
    // and three times the slowest request before the migration: a loaded
    // machine's slower requests move it up.
    let bound = Duration::from_secs(1) + Duration::from_secs(2) + usual * 3;
    assert!(
        slowest >= Duration::from_millis(500),
        "the load met the lock queue: {slowest:?}"
    );
    assert!(
        slowest < bound,
        "no request waits much longer than lock_timeout: {slowest:?} (bound {bound:?})"
    );
    assert!(columns(&url).contains("description"), "the retry migrated");
    f.assert_serving_on("rails-app", "v2");
}

#[test]
fn defect_13_a_migration_that_breaks_the_old_color_stops_before_the_new_release_is_mapped() {
    let f = rails(|y| y);
    crate::util::succeeded(f.deploy("v1"));
    // Judged from here on: the route before the deploy, then the old color
    // after the migration.
    let mut yaml = std::fs::read_to_string(&f.file).unwrap();
    yaml.push_str("analysis: { duration: 20s }\n");
    std::fs::write(&f.file, yaml).unwrap();
    overlay(&f, "destructive");
    let url = database_url(&f, "rails-db");

    let ((code, events, err), samples) = forced_destructive(
        &f,
        "the judge must catch what the guard was told to let through",
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("the migration (`bin/rails db:migrate`")
            && err.contains("which still serves the old release"),
        "{err}"
    );
    let json: Vec<&Value> = events.iter().map(|(_, e)| e).collect();
    let watched = json
        .iter()
        .find(|e| e["event"] == "watch")
        .unwrap_or_else(|| panic!("no watch window: {json:?}"));
    assert!(watched["failed"].is_string(), "{watched}");
    // Decided on a handful of the old color's requests (15 when measured),
    // not a whole window of failing writes.
    let judged = watched["window"]["candidate"]["requests"].as_u64().unwrap();
    assert!((1..=100).contains(&judged), "{watched}");
    let baseline = json
        .iter()
        .find(|e| e["event"] == "baseline")
        .expect("a pre-deploy reference");
    assert!(
        baseline["route"]["requests"].as_u64().unwrap() > 0,
        "{baseline}"
    );
    // Stopped before the new release served a request, and before the
    // contract phase.
    let first = watched["color"].as_str().unwrap() == "blue";
    let new_color = if first { "green" } else { "blue" };
    for e in &json {
        let text = e["text"].as_str().unwrap_or_default();
        assert!(
            !(e["event"] == "step"
                && e["status"] == "done"
                && text == format!("map the route to {new_color}")),
            "the new release was mapped: {e}"
        );
        assert!(!text.contains("contract"), "{e}");
    }
    let history = f.run(&["history", "--json"]);
    let last: Value = String::from_utf8_lossy(&history.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .expect("a history entry");
    assert_eq!(last["result"], "failed", "{last}");
    assert!(
        last["message"]
            .as_str()
            .is_some_and(|m| m.contains("migration")),
        "{last}"
    );
    let failed = failures(&samples);
    eprintln!(
        "a migration breaking the old color: stopped by the watch window; {} of {} writes \
         failed meanwhile; {}",
        failed.len(),
        samples.len(),
        watched["failed"]
    );
    assert!(!columns(&url).contains("legacy_code"), "the migration ran");
    // The color pushed before the watch went back to the old droplet: the
    // new release is left on no color, and the route serves v1 from both.
    f.assert_serving_on("rails-app", "v1");
}
