//! «19 · The first hour», failures that show their cause: an app that
//! crashes on boot fails at once with its output, a health check that fails
//! says the likely cause and the fix, `logs` finds a deploy's app, and the
//! undo summary says whether the other color really serves.

use crate::deploy::{Fixture, get, text};
use crate::util::*;
use std::io::Read;
use std::time::{Duration, Instant};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The fixture's deploy file with `health.timeout` (10 s) replaced.
fn health_timeout(f: &Fixture, timeout: &str) {
    let yaml = std::fs::read_to_string(&f.file).unwrap();
    assert!(yaml.contains("50ms, timeout: 10s"), "{yaml}");
    let yaml = yaml.replace("50ms, timeout: 10s", &format!("50ms, timeout: {timeout}"));
    std::fs::write(&f.file, yaml).unwrap();
}

fn write_app(f: &Fixture, code: &str) {
    std::fs::write(f.root.path().join("app/app.py"), code).unwrap();
}

/// An app that prints a line (with an escape sequence in it) and exits 1
/// at once, every time it starts.
const CRASHING: &str = "import sys\n\
print('v2 cannot start: \\x1b[31mDATABASE_URL is not set', flush=True)\n\
sys.exit(1)\n";

/// Every duration in `text` after `within ` is rounded for people (`3s`,
/// `9.6s`, `1m 12s`, `350ms`), never humantime's `3s 41ms 5us 2ns`.
fn assert_rounded_durations(text: &str) {
    for (i, _) in text.match_indices("within ") {
        let words: Vec<&str> = text[i + 7..].split_whitespace().take(3).collect();
        let full = words.iter().any(|w| w.ends_with("us") || w.ends_with("ns"))
            || (words.len() > 1 && words[0].ends_with('s') && words[1].ends_with("ms"));
        assert!(!full, "a duration at full precision: {words:?} in {text}");
    }
}

/// Item 1: an app that crashes on boot used to fail after the whole
/// health timeout (60 s) with `has no running instance (states: CRASHED)`
/// and no line of its output.
#[test]
fn an_app_that_crashes_on_boot_fails_at_once_with_its_last_output() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    write_app(&f, CRASHING);
    // Far above what three crashes and their backoff take (about 5 s here,
    // up to 30 s on a loaded machine), so failing within 40 s is not the
    // timeout.
    health_timeout(&f, "120s");
    let load = f.load();
    let t = Instant::now();
    let out = f.deploy("v2");
    let took = t.elapsed();
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        took < Duration::from_secs(40),
        "{took:?} with a 120 s health timeout: {err}"
    );
    assert!(
        err.contains("shop-blue crashes as it starts: its `web` instance 0 crashed"),
        "{err}"
    );
    assert!(err.contains("v2 cannot start: "), "the app's line: {err}");
    assert!(
        err.contains("\\u{1b}[31mDATABASE_URL is not set") && !err.contains('\x1b'),
        "the app's text is shown escaped: {err}"
    );
    assert!(err.contains("bluegreen logs --color blue"), "{err}");
    assert!(
        err.contains("rolled blue back to v1: healthy and on the route again"),
        "{err}"
    );
    assert_rounded_durations(&err);
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed: {failures:?}",
        failures.len()
    );
    assert_eq!(seen, ["v1"]);
    f.assert_serving("v1");
    eprintln!("a crashing app failed its deploy in {took:?} (health timeout 60 s):\n{err}");
}

/// The same as `platform: cf` (the local platform serving as Cloud
/// Foundry): as fast, and the error names `cf logs` for the output, which
/// bluegreen does not read from Cloud Foundry.
#[test]
fn as_cf_an_app_that_crashes_on_boot_fails_at_once_and_names_cf_logs() {
    let f = Fixture::new_cf("");
    crate::util::succeeded(f.deploy("v1"));
    write_app(&f, CRASHING);
    health_timeout(&f, "120s");
    let t = Instant::now();
    let out = f.deploy("v2");
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(took < Duration::from_secs(40), "{took:?}: {err}");
    assert!(err.contains("shop-blue crashes as it starts"), "{err}");
    assert!(
        err.contains("Its output: `cf logs shop-blue --recent`"),
        "{err}"
    );
    assert!(err.contains("rolled blue back to v1"), "{err}");
    f.assert_serving("v1");
    eprintln!("as cf, a crashing app failed its deploy in {took:?}");
}

/// Item 2: a health check that fails says the likely cause and the fix,
/// not a client's error chain or a dangling colon.
#[test]
fn health_failures_say_the_likely_cause_and_the_fix() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    health_timeout(&f, "5s");
    let fails = |release: &str| {
        let out = f.deploy(release);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = stderr(&out);
        assert!(err.contains("rolled blue back to v1"), "{err}");
        assert_rounded_durations(&err);
        err
    };

    // An app that listens on a port of its own choosing, not `$PORT`.
    let fixed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = py_app("pass", "200", r#""ok\n""#)
        .replace(r#"int(os.environ["PORT"])"#, &fixed.to_string());
    write_app(&f, &app);
    let err = fails("ignores-port");
    assert!(
        err.contains("connection refused: nothing listens on port")
            && err.contains("The app must listen on the port in `$PORT`"),
        "{err}"
    );
    assert!(!err.contains("os error 111"), "{err}");

    // A /health that redirects (to a login page, say).
    let redirect = r#"
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(302 if self.path == "/health" else 200)
        if self.path == "/health":
            self.send_header("location", "/login?next=/health")
        self.send_header("content-length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;
    write_app(&f, redirect);
    let err = fails("redirects");
    assert!(
        err.contains("HTTP 302 (expected 200), a redirect to /login?next=/health"),
        "{err}"
    );
    assert!(
        err.contains("`health.path` must name a path that answers 200 itself")
            && err.contains("`health.status: 302`"),
        "{err}"
    );
    assert!(!err.contains("(expected 200):"), "no dangling colon: {err}");

    // A 500 with an empty body: no colon after the status.
    write_app(&f, &py_app("pass", "500", r#""""#));
    let err = fails("empty-500");
    assert!(err.contains("HTTP 500 (expected 200)"), "{err}");
    assert!(!err.contains("(expected 200):"), "no dangling colon: {err}");

    // A /health slower than `health.request_timeout`.
    let yaml = std::fs::read_to_string(&f.file)
        .unwrap()
        .replace("interval: 50ms", "interval: 50ms, request_timeout: 300ms");
    std::fs::write(&f.file, yaml).unwrap();
    write_app(&f, &py_app("time.sleep(1)", "200", r#""ok\n""#));
    let err = fails("slow");
    assert!(
        err.contains("no answer within 300ms (`health.request_timeout`)")
            && err.contains("raise `health.request_timeout`"),
        "{err}"
    );
    f.assert_serving("v1");
}

/// A Python app that prints `hello from COLOR RELEASE` as it starts.
fn greeting_app() -> String {
    py_app_with(
        r#"print("hello from", os.environ.get("BLUEGREEN_COLOR"), os.environ.get("BLUEGREEN_RELEASE"), flush=True)"#,
        "pass",
        "200",
        r#""release %s %s\n" % (os.environ.get("BLUEGREEN_RELEASE"), os.environ.get("BLUEGREEN_COLOR"))"#,
    )
}

/// Item 3: `platform logs APP` takes a deploy's app name (its apps are
/// `APP-blue` and `APP-green`), and `bluegreen logs` reads the deploy
/// file's.
#[test]
fn logs_take_the_deploys_app_name_and_show_both_colors() {
    let f = Fixture::new("");
    write_app(&f, &greeting_app());
    crate::util::succeeded(f.deploy("v1"));

    let both = |out: &std::process::Output, what: &str| {
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(out));
        let shown = stdout(out);
        assert!(
            shown.contains("blue  | hello from blue v1\n"),
            "{what}: {shown}"
        );
        assert!(
            shown.contains("green | hello from green v1\n"),
            "{what}: {shown}"
        );
        assert!(
            shown
                .lines()
                .all(|l| l.starts_with("blue  | ") || l.starts_with("green | ")),
            "{what}: every line after its color: {shown}"
        );
    };
    both(&f.run(&["platform", "logs", "shop"]), "platform logs shop");
    both(&f.run(&["logs"]), "bluegreen logs");

    let out = f.run(&["platform", "logs", "shop", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines = crate::deploy::json_lines(&out.stdout);
    assert_eq!(
        lines.len(),
        stdout(&out).lines().count(),
        "every line is JSON"
    );
    assert!(
        lines.iter().any(|l| l["app"] == "shop-green"
            && l["color"] == "green"
            && l["line"] == "hello from green v1"),
        "{lines:?}"
    );

    // One color: its lines as they are.
    let out = f.run(&["logs", "--color", "green"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = stdout(&out);
    assert!(shown.contains("\nhello from green v1\n"), "{shown}");
    assert!(!shown.contains("hello from blue"), "{shown}");

    // --follow keeps reading: a line of the next deploy shows up.
    let mut follow = f.spawn(&["logs", "--follow", "--color", "blue"]);
    crate::util::succeeded(f.deploy("v2"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut pipe = follow.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut all = Vec::new();
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&all).contains("hello from blue v2") {
                break;
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(follow.try_wait().unwrap().is_none(), "--follow keeps going");
    follow.kill().unwrap();
    follow.wait().unwrap();
    let seen = reader.join().unwrap();
    assert!(seen.contains("hello from blue v1"), "{seen}");
    assert!(seen.contains("hello from blue v2"), "{seen}");

    // Not a deploy's app either: the names it tried.
    let out = f.run(&["platform", "logs", "nosuch"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stderr(&out).contains("nor `nosuch-blue` or `nosuch-green`"),
        "{}",
        text(&out)
    );

    // On Cloud Foundry: where to look instead.
    let cf = f.root.path().join("cf.yaml");
    std::fs::write(&cf, "platform: cf\napp: shop\npath: app\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(["logs", "-f"])
        .arg(&cf)
        .env("BLUEGREEN_HOME", f.home())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("`cf logs shop-blue --recent` and `cf logs shop-green --recent`"),
        "{err}"
    );
}

/// Item 5: the undo summary said a color "stays off the route while green
/// serves" when green served nothing (never deployed: the first deploy of
/// an app that crashes on boot failed, and so did the next).
#[test]
fn the_undo_summary_says_when_no_color_serves() {
    let f = Fixture::new("");
    write_app(&f, CRASHING);
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("blue had no earlier release: stopped and left off the route"),
        "{}",
        text(&out)
    );
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(!err.contains("while green serves"), "{err}");
    assert!(
        err.contains(
            "it stays off the route, and green is not on the route: the route has no healthy \
             color to serve it"
        ),
        "{err}"
    );
    assert!(err.contains("`bluegreen logs`"), "{err}");
    let (status, _) = get(f.router_port, "shop", "/").unwrap();
    assert_ne!(status, 200, "nothing serves the route");
}
