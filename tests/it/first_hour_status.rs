//! «19 · The first hour», `status` during a live deploy: it said `deploy …
//! was interrupted: run bluegreen recover` for any journal, without asking
//! whether the lock's holder was alive, and showed no step or weights. Now
//! a deploy at work is shown running (its step, its runner, the canary's
//! weights), only a journal nobody works on is "interrupted", and the exit
//! code says whether the route serves (0) or not (5), with `--wait`.

use crate::deploy::{Fixture, text};
use crate::first_hour_interrupt::in_a_canary_window;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn status(f: &Fixture, args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    let out = f.run(&all);
    assert!(out.stderr.is_empty(), "{}", text(&out));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn status_json(f: &Fixture) -> (Option<i32>, Value) {
    let (code, out) = status(f, &["--json"]);
    (code, serde_json::from_str(&out).unwrap())
}

#[test]
fn status_shows_a_live_deploy_running_and_a_dead_ones_journal_interrupted() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let (mut child, out) = in_a_canary_window(&f, "v2");
    let id = crate::deploy::json_lines(out.stdout().as_bytes())[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let (code, s) = status_json(&f);
    assert_eq!(code, Some(0), "the route serves: {s}");
    let d = &s["deploy"];
    assert_eq!(
        (&d["id"], &d["state"], &d["release"]),
        (&json!(id), &json!("running"), &json!("v2")),
        "{s}"
    );
    assert_eq!(d["step"]["step"], "analyze", "{s}");
    assert_eq!(d["step"]["color"], "blue", "{s}");
    assert_eq!(d["weights"], json!({"blue": 10, "green": 90}), "{s}");
    assert_eq!(d["runner"]["pid"], child.id(), "{s}");
    assert_eq!(s["interrupted"], Value::Null, "{s}");

    let (code, shown) = status(&f, &[]);
    assert_eq!(code, Some(0), "{shown}");
    let step = d["step"]["index"].as_u64().unwrap();
    let total = d["step"]["total"].as_u64().unwrap();
    assert!(
        shown.contains(&format!(
            "deploy {id} of release v2 is running (from v1), step {step}/{total}: analyze blue's"
        )),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("pid {} on ", child.id())),
        "{shown}"
    );
    assert!(
        shown.contains("route weights: blue 10%, green 90%"),
        "{shown}"
    );
    assert!(!shown.contains("interrupted"), "{shown}");
    assert!(!shown.contains("is locked by"), "{shown}");
    eprintln!("`status` during the deploy:\n{shown}");

    // Killed (no Ctrl-C): its journal is left, and nobody works on it.
    child.kill().unwrap();
    child.wait().unwrap();
    let (code, s) = status_json(&f);
    assert_eq!(code, Some(0), "green still serves: {s}");
    assert_eq!(s["deploy"]["state"], "interrupted", "{s}");
    assert_eq!(s["interrupted"], json!(id), "{s}");
    let (_, shown) = status(&f, &[]);
    assert!(
        shown.contains(&format!(
            "deploy {id} was interrupted: run `bluegreen recover`"
        )),
        "{shown}"
    );
    assert!(!shown.contains("is running"), "{shown}");
    let out = f.run(&["recover"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (code, s) = status_json(&f);
    assert_eq!((code, &s["deploy"]), (Some(0), &Value::Null), "{s}");
}

#[test]
fn status_exits_5_while_the_route_does_not_serve_and_waits_with_wait() {
    let f = Fixture::new("");
    // Nothing deployed: nothing serves.
    let (code, s) = status_json(&f);
    assert_eq!((code, &s["serving"]), (Some(5), &json!(false)), "{s}");
    crate::util::succeeded(f.deploy("v1"));
    assert_eq!(status_json(&f).0, Some(0));

    let scale = |n: &str| {
        for app in ["shop-blue", "shop-green"] {
            let out = f.run(&["platform", "scale", app, "--instances", n]);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        }
    };
    scale("0");
    let (code, shown) = status(&f, &[]);
    assert_eq!(code, Some(5), "{shown}");
    assert!(
        shown.contains("the route does not serve: no color on it answers healthy"),
        "{shown}"
    );
    // --wait gives up after its time, still 5.
    let t = Instant::now();
    let (code, _) = status(&f, &["--wait", "1s"]);
    assert_eq!(code, Some(5));
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    // ... and returns as soon as the route serves again.
    let mut waiting = f.spawn(&["status", "--wait", "60s", "--json"]);
    scale("1");
    let deadline = Instant::now() + Duration::from_secs(60);
    let code = loop {
        if let Some(s) = waiting.try_wait().unwrap() {
            break s.code();
        }
        assert!(Instant::now() < deadline, "status --wait did not return");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = waiting.wait_with_output().unwrap();
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((code, &s["serving"]), (Some(0), &json!(true)), "{s}");
}
