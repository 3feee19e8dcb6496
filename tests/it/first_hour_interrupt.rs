//! «19 · The first hour», Ctrl-C during a deploy: the runner used to die
//! silently, leaving a canary split in place (19 of 20 requests still went
//! to the old release) and the lock and journal for `recover`. Now the
//! first Ctrl-C rolls the color in flight back and releases the lock (exit
//! 130); a second one during that rollback exits at once and leaves the
//! journal for `recover`. Real deploys, real signals, requests through the
//! real router.

use crate::deploy::{Fixture, get, json_lines, text, write_file};
use crate::first_hour_child::{Output, exit_code, sigint};
use crate::util::py_app_with;
use serde_json::Value;
use std::process::Child;
use std::time::{Duration, Instant};

/// How many of `n` requests through the route each release and color
/// answered (`release v1 blue`, ...).
fn answers(f: &Fixture, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..n {
        let (status, body) = get(f.router_port, "shop", "/").unwrap();
        assert_eq!(status, 200, "{body}");
        *seen.entry(body.trim().to_string()).or_insert(0) += 1;
    }
    seen
}

/// A canary whose first window waits out its 30 s (there is no traffic):
/// a deploy of `release` started with `--json`, held in that window.
pub fn in_a_canary_window(f: &Fixture, release: &str) -> (Child, Output) {
    let canary = "strategy: canary\nsteps: [10, 50, 100]\n\
                  analysis: { duration: 30s, min_requests: 60, p99_floor: 30s }\n";
    write_file(f, "", canary);
    let mut child = f.spawn(&["deploy", "--release", release, "--json"]);
    let out = Output::of(&mut child);
    out.wait_for(
        &mut child,
        r#""status":"started","step":"analyze""#,
        Duration::from_secs(60),
    );
    (child, out)
}

#[test]
fn ctrl_c_in_a_canary_window_rolls_back_and_releases_the_lock() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let (mut child, out) = in_a_canary_window(&f, "v2");
    let split = answers(&f, 40);
    assert!(
        split.contains_key("release v2 blue"),
        "the canary is on: {split:?}"
    );
    let t = Instant::now();
    sigint(&child);
    let code = exit_code(&mut child, Duration::from_secs(60));
    let took = t.elapsed();
    let (stdout, stderr) = out.ended();
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    let ev = json_lines(stdout.as_bytes());
    let said = ev.iter().find(|e| e["event"] == "interrupted");
    assert_eq!(
        said.map(|e| (&e["signal"], &e["doing"])),
        Some((&"Ctrl-C".into(), &"rolling back blue".into())),
        "{stdout}"
    );
    let last = ev.last().unwrap();
    assert_eq!(
        (&last["status"], &last["exit_code"]),
        (&"interrupted".into(), &130.into())
    );
    assert!(
        stderr.contains("deploy interrupted (Ctrl-C) at `analyze blue's live traffic at 10%"),
        "{stderr}"
    );
    assert!(stderr.contains("rolled blue back to v1"), "{stderr}");

    // The split is gone: every request gets v1, evenly from both colors.
    let seen = answers(&f, 40);
    let even: std::collections::BTreeMap<String, usize> = [
        ("release v1 blue".into(), 20),
        ("release v1 green".into(), 20),
    ]
    .into();
    assert_eq!(seen, even);
    let s = f.status();
    assert!(s["lock"].is_null() && s["interrupted"].is_null(), "{s}");
    assert_eq!(f.last_history()["result"], "interrupted");
    let recover = f.run(&["recover"]);
    assert_eq!(recover.status.code(), Some(0), "{}", text(&recover));
    assert!(
        String::from_utf8_lossy(&recover.stdout).contains("Nothing to recover"),
        "{}",
        text(&recover)
    );
    // The lock is free: the next deploy runs (without the canary's windows).
    write_file(&f, "", "");
    let next = f.deploy("v3");
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    assert!(
        !text(&next).contains("recovering it first"),
        "{}",
        text(&next)
    );
    f.assert_serving("v3");
    eprintln!("Ctrl-C in a canary window: rolled back and exited in {took:?}");
}

/// An app whose boot takes `$BOOT_S` seconds and whose `/health` fails
/// while its bits hold `UNHEALTHY`.
fn slow_boot_app() -> String {
    py_app_with(
        r#"time.sleep(float(os.environ.get("BOOT_S", "0")))"#,
        "pass",
        r#"500 if self.path == "/health" and os.path.exists("UNHEALTHY") else 200"#,
        r#""release %s %s\n" % (os.environ.get("BLUEGREEN_RELEASE"), os.environ.get("BLUEGREEN_COLOR"))"#,
    )
}

#[test]
fn a_second_ctrl_c_during_the_rollback_leaves_the_journal_for_recover() {
    let f = Fixture::new("");
    let app = f.root.path().join("app");
    std::fs::write(app.join("app.py"), slow_boot_app()).unwrap();
    // v1 boots in 2 s, so putting blue back on it takes that long.
    write_file(&f, ", BOOT_S: \"2\"", "");
    crate::util::succeeded(f.deploy("v1"));
    std::fs::write(app.join("UNHEALTHY"), "").unwrap();
    write_file(&f, "", "");
    let yaml = std::fs::read_to_string(&f.file)
        .unwrap()
        .replace("50ms, timeout: 10s", "50ms, timeout: 60s");
    std::fs::write(&f.file, yaml).unwrap();
    let plan: Value =
        serde_json::from_slice(&f.run(&["plan", "--json", "--release", "v2"]).stdout).unwrap();
    let health = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .position(|s| s["step"] == "health")
        .unwrap();

    let mut child = f.spawn(&["deploy", "--release", "v2"]);
    let out = Output::of(&mut child);
    let marker = format!("{{\"event\":\"start\",\"step\":{health}}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(f.journal())
        .unwrap_or_default()
        .contains(&marker)
    {
        assert!(
            Instant::now() < deadline,
            "no health step:\n{}",
            out.stdout()
        );
        assert!(child.try_wait().unwrap().is_none(), "{}", out.stderr());
        std::thread::sleep(Duration::from_millis(10));
    }
    sigint(&child);
    out.wait_for(
        &mut child,
        "Interrupted (Ctrl-C): rolling back blue; press Ctrl-C again to leave it for \
         `bluegreen recover`",
        Duration::from_secs(10),
    );
    let t = Instant::now();
    sigint(&child);
    let code = exit_code(&mut child, Duration::from_secs(10));
    let took = t.elapsed();
    let (_, err) = out.ended();
    assert_eq!(code, Some(130), "{}\n{err}", out.stdout());
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(
        err.contains("interrupted again (Ctrl-C): stopped at once; deploy ")
            && err.contains("is left unfinished for `bluegreen recover`"),
        "{err}"
    );
    assert!(!err.contains("rolled blue back"), "{err}");
    assert!(f.journal().exists(), "the journal is left for recover");
    // Green never left the route.
    let (status, body) = get(f.router_port, "shop", "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "release v1 green\n"));

    let recovered = f.run(&["recover"]);
    assert_eq!(recovered.status.code(), Some(0), "{}", text(&recovered));
    assert!(!f.journal().exists());
    f.assert_serving("v1");
    let last = f.last_history();
    assert_eq!(
        (&last["release"], &last["recovered"]),
        (&"v2".into(), &true.into())
    );
}

/// Ctrl-C while a second deploy waits for the lock (`--wait`): it ends at
/// once, changing nothing, and the deploy holding the lock goes on.
#[test]
fn ctrl_c_while_waiting_for_the_lock_ends_the_command_and_changes_nothing() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let (mut first, first_out) = in_a_canary_window(&f, "v2");
    let mut second = f.spawn(&["deploy", "--release", "v3", "--wait", "60s", "--json"]);
    let out = Output::of(&mut second);
    out.wait_for(
        &mut second,
        r#""status":"started","step":"acquire-lock""#,
        Duration::from_secs(30),
    );
    let t = Instant::now();
    sigint(&second);
    assert_eq!(exit_code(&mut second, Duration::from_secs(10)), Some(130));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(
        out.stderr().contains(
            "interrupted (Ctrl-C): stopped before the deploy lock was held; nothing changed"
        ),
        "{}",
        out.stderr()
    );
    let last = json_lines(out.stdout().as_bytes()).pop().unwrap();
    assert_eq!(
        (&last["status"], &last["exit_code"]),
        (&"interrupted".into(), &130.into())
    );
    // The first deploy still holds its lock and its window.
    assert!(
        first.try_wait().unwrap().is_none(),
        "{}",
        first_out.stderr()
    );
    assert_eq!(f.status()["deploy"]["state"], "running");
    sigint(&first);
    assert_eq!(exit_code(&mut first, Duration::from_secs(60)), Some(130));
    f.assert_serving("v1");
}
