//! «19 · The first hour», following a deploy from a second terminal and
//! stopping it the way a CI runner does. `status --watch` shows each look
//! of a live canary: its step, its weights and the numbers of the window
//! the judge is looking at, as the runner last judged them. SIGTERM (a
//! cancelled CI job, `kill`, systemd) rolls the color in flight back like
//! Ctrl-C and exits 143. Real deploys, real signals, the real router.

use crate::deploy::{Fixture, json_lines, text, write_file};
use crate::first_hour_child::{Output, exit_code, signal};
use crate::first_hour_interrupt::in_a_canary_window;
use serde_json::Value;
use std::time::{Duration, Instant};

#[test]
fn status_watch_follows_a_canary_window_and_sigterm_rolls_it_back() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let (mut deploy, out) = in_a_canary_window(&f, "v2");

    let mut watching = f.spawn(&["status", "--watch", "200ms", "--json"]);
    let watched = Output::of(&mut watching);
    // Looks until the window shows under way and then moved on (the runner
    // writes it at its first look, a quarter second in, and at each look
    // after: two looks of the watch may fall between two of the runner's
    // on a busy machine, and show the same numbers).
    let deadline = Instant::now() + Duration::from_secs(30);
    let windows = loop {
        let looks = json_lines(watched.stdout().as_bytes());
        let windows: Vec<Value> = looks
            .iter()
            .map(|s| s["deploy"]["window"].clone())
            .filter(|w| !w.is_null())
            .collect();
        let moved = |w: &Value| w["elapsed_ms"].as_u64() > windows[0]["elapsed_ms"].as_u64();
        if windows.len() >= 2 && moved(windows.last().unwrap()) {
            assert!(looks.iter().all(|s| s["deploy"]["state"] == "running"));
            break windows;
        }
        assert!(Instant::now() < deadline, "{}", watched.stdout());
        assert!(
            watching.try_wait().unwrap().is_none(),
            "{}",
            watched.stdout()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let (first, last) = (&windows[0], windows.last().unwrap());
    assert_eq!(
        (&first["color"], &first["percent"]),
        (&"blue".into(), &10.into())
    );
    // The window moved on between looks (the wait above); what is left shrank.
    assert!(
        last["left_ms"].as_u64() < first["left_ms"].as_u64(),
        "{first} {last}"
    );
    let lines: Vec<&str> = last["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        lines[0].starts_with("blue: ") && lines[0].contains(" requests, 5xx "),
        "{lines:?}"
    );
    // Ctrl-C ends the watch with status's own exit code: the route serves.
    crate::first_hour_child::sigint(&watching);
    assert_eq!(exit_code(&mut watching, Duration::from_secs(10)), Some(0));

    // The same look for people, once.
    let shown = f.run(&["status"]);
    let shown = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(shown.contains("    window on blue at 10%: "), "{shown}");
    assert!(shown.contains("      blue: "), "{shown}");

    // SIGTERM: what a cancelled CI job sends. The canary is rolled back.
    signal(&deploy, libc::SIGTERM);
    let code = exit_code(&mut deploy, Duration::from_secs(60));
    let (stdout, stderr) = out.ended();
    assert_eq!(code, Some(143), "{stdout}\n{stderr}");
    let ev = json_lines(stdout.as_bytes());
    let said = ev.iter().find(|e| e["event"] == "interrupted");
    assert_eq!(
        said.map(|e| (&e["signal"], &e["doing"])),
        Some((&"SIGTERM".into(), &"rolling back blue".into())),
        "{stdout}"
    );
    assert!(stderr.contains("rolled blue back to v1"), "{stderr}");
    let s = f.status();
    assert!(s["lock"].is_null() && s["interrupted"].is_null(), "{s}");
    assert!(s["deploy"].is_null(), "{s}");
    f.assert_serving("v1");
    // The window's view went with the deploy.
    let view = f.journal().with_file_name("window.json");
    assert!(!view.exists(), "{}", view.display());
    write_file(&f, "", "");
    let next = f.deploy("v3");
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
}
