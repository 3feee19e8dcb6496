//! The operator in the loop: canary deploys that pause (`steps: [10,
//! pause, 100]`, `analysis.on_fail: pause`) and are promoted, resumed or
//! aborted by a second `bluegreen` process, as from another terminal or CI
//! job, through the platform (the local daemon, or the lock app's
//! annotations as `platform: cf`). Each waits on the deploy's `--json`
//! events, never on time alone.

use crate::deploy::{Fixture, events, text, write_file};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Short windows; a window with no traffic goes on (`warn`), so the pauses
/// and the commands decide, not the evidence.
const WINDOWS: &str = "analysis: { duration: 1s, on_inconclusive: warn, p99_floor: 30s }\n";

/// A deploy running in the background, its `--json` events read as they come.
struct Running {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    stdout: Option<JoinHandle<()>>,
    stderr: Option<JoinHandle<String>>,
}

impl Running {
    fn start(f: &Fixture, release: &str) -> Running {
        let mut child = f.spawn(&["deploy", "--release", release, "--json"]);
        let events: Arc<Mutex<Vec<Value>>> = Arc::default();
        let out = child.stdout.take().unwrap();
        let seen = events.clone();
        let stdout = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str(&line) {
                    seen.lock().unwrap().push(v);
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        Running {
            child,
            events,
            stdout: Some(stdout),
            stderr: Some(stderr),
        }
    }

    /// The first event `want` accepts, within `limit`.
    fn wait_for(&mut self, limit: Duration, want: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self.events.lock().unwrap().iter().find(|e| want(e)) {
                return e.clone();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                let (_, events, err) = self.finish_with(status);
                panic!("the deploy ended ({status}) first:\n{events:#?}\n{err}");
            }
            assert!(
                Instant::now() < deadline,
                "{:#?}",
                self.events.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (bounded) for the deploy to end: its exit, events and stderr.
    fn finish(mut self) -> (ExitStatus, Vec<Value>, String) {
        let deadline = Instant::now() + Duration::from_secs(120);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the deploy did not end: {:#?}", self.events.lock().unwrap());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        self.finish_with(status)
    }

    fn finish_with(&mut self, status: ExitStatus) -> (ExitStatus, Vec<Value>, String) {
        self.stdout.take().map(|t| t.join());
        let err = self
            .stderr
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        (status, self.events.lock().unwrap().clone(), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn paused(e: &Value) -> bool {
    e["event"] == "paused"
}

/// v1 on both colors, then a canary file with `steps` and `extra`.
fn serving_v1(f: &Fixture, steps: &str, extra: &str) {
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    write_file(
        f,
        "",
        &format!("strategy: canary\nsteps: {steps}\n{WINDOWS}{extra}"),
    );
}

fn controls(events: &[Value]) -> Vec<&Value> {
    events.iter().filter(|e| e["event"] == "control").collect()
}

/// Paused at 10%, promoted from a second process: the second pause and
/// the remaining windows are skipped and the new release serves.
fn a_paused_deploy_is_promoted_from_another_process(f: Fixture) {
    serving_v1(&f, "[10, pause, 50, pause, 100]", "");
    let mut deploy = Running::start(&f, "v2");
    let p = deploy.wait_for(Duration::from_secs(90), paused);
    assert_eq!(p["at"], "paused at 10%", "{p}");
    assert_eq!(p["timed"], false, "{p}");
    let out = f.run(&["promote", "--reason", "dashboards look fine"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("promote: deploy"), "{said}");
    assert!(said.contains("paused at 10%"), "{said}");
    let (status, events, err) = deploy.finish();
    assert_eq!(status.code(), Some(0), "{events:#?}\n{err}");
    let c = controls(&events);
    assert_eq!(c.len(), 1, "{events:#?}");
    assert_eq!(c[0]["verb"], "promote");
    assert_eq!(c[0]["reason"], "dashboards look fine");
    assert!(c[0]["by"].as_str().unwrap().contains('@'), "{}", c[0]);
    assert_eq!(
        events.iter().filter(|e| paused(e)).count(),
        1,
        "the pause at 50% is skipped"
    );
    // Promoted: no analysis window ran after the command.
    let after = events.iter().position(|e| e["event"] == "control").unwrap();
    assert!(
        !events[after..].iter().any(|e| e["event"] == "analysis"),
        "{events:#?}"
    );
    f.assert_serving("v2");
    // Nothing runs now: the command says so and exits 6.
    let out = f.run(&["promote"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no deploy runs"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_paused_deploy_is_promoted_from_another_process_local() {
    a_paused_deploy_is_promoted_from_another_process(Fixture::new(""));
}

#[test]
fn a_paused_deploy_is_promoted_from_another_process_as_cf() {
    a_paused_deploy_is_promoted_from_another_process(Fixture::new_cf(""));
}

#[test]
fn a_resumed_deploy_goes_on_and_an_aborted_one_rolls_back() {
    let f = Fixture::new("");
    serving_v1(&f, "[10, pause, 100]", "");
    let mut deploy = Running::start(&f, "v2");
    deploy.wait_for(Duration::from_secs(90), paused);
    let out = f.run(&["resume", "--reason", "canary looks fine"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (status, events, err) = deploy.finish();
    assert_eq!(status.code(), Some(0), "{events:#?}\n{err}");
    assert_eq!(controls(&events)[0]["verb"], "resume");
    f.assert_serving("v2");

    // Now the abort: v3 paused at 10%, aborted, v2 serves again.
    let mut deploy = Running::start(&f, "v3");
    deploy.wait_for(Duration::from_secs(90), paused);
    let out = f.run(&["abort", "--reason", "error budget"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (status, events, err) = deploy.finish();
    assert_eq!(status.code(), Some(1), "{events:#?}\n{err}");
    assert!(err.contains("aborted by"), "{err}");
    assert!(err.contains("error budget"), "{err}");
    let c = controls(&events);
    assert_eq!(c.len(), 1, "{events:#?}");
    assert_eq!(c[0]["verb"], "abort");
    f.assert_serving("v2");
}

#[test]
fn a_timed_pause_goes_on_by_itself() {
    let f = Fixture::new("");
    serving_v1(&f, "[10, {pause: 2s}, 100]", "");
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    let p = ev.iter().find(|e| paused(e)).expect("paused");
    assert_eq!(
        (p["timed"].as_bool(), p["up_to_ms"].as_u64()),
        (Some(true), Some(2000))
    );
    let r = ev
        .iter()
        .find(|e| e["event"] == "resumed")
        .expect("resumed");
    assert!(r["paused_ms"].as_f64().unwrap() >= 1900.0, "{r}");
    assert!(controls(&ev).is_empty());
    f.assert_serving("v2");
}

#[test]
fn on_fail_pause_holds_a_failing_release_until_abort_rolls_it_back() {
    let f = Fixture::new("");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    write_file(
        &f,
        ", FAIL_PERCENT: 20",
        "strategy: canary\nsteps: [10, 100]\n\
         analysis: { duration: 20s, min_requests: 60, p99_floor: 30s, on_fail: pause }\n",
    );
    let load = f.load();
    let mut deploy = Running::start(&f, "v2");
    let p = deploy.wait_for(Duration::from_secs(120), paused);
    assert_eq!(p["failure"], true, "{p}");
    assert_eq!(p["at"], "paused at 10% after a failed analysis", "{p}");
    let out = f.run(&["abort", "--reason", "5xx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (status, events, err) = deploy.finish();
    load.finish();
    assert_eq!(status.code(), Some(1), "{events:#?}\n{err}");
    assert!(
        err.contains("aborted by") && err.contains("traffic analysis"),
        "{err}"
    );
    f.assert_serving("v1");
}

#[test]
fn recover_resumes_a_paused_deploy_whose_runner_died() {
    let f = Fixture::new("");
    serving_v1(&f, "[10, pause, 100]", "");
    let mut deploy = Running::start(&f, "v2");
    deploy.wait_for(Duration::from_secs(90), paused);
    // The runner dies (SIGKILL: no undo); the paused deploy waits for recover.
    deploy.child.kill().unwrap();
    let _ = deploy.finish();
    let out = f.run(&["resume", "--reason", "go on"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bluegreen recover"),
        "{}",
        text(&out)
    );
    let out = f.run(&["recover"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("was paused at 10%"), "{said}");
    assert!(said.contains("resuming it"), "{said}");
    f.assert_serving("v2");
}
