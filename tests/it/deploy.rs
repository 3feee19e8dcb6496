//! End-to-end deploys on the local platform, driven through the `bluegreen`
//! binary as users run it: a real daemon, real Python app processes, real
//! HTTP through the router on 127.0.0.1, real plugins, and a bounded client
//! counting failed requests through the route the whole time.

use crate::util::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// `/health` fails while the bits contain `UNHEALTHY`; `/` names the
/// release and color; `/slow` does so after 250 ms (`/slow?ms=N`: N); a POST answers with the
/// length of the body it read; `migrate.py` logs each run to `$MIGRATION_LOG`.
/// A release with `FAIL_PERCENT=P` in its env answers every (100/P)th
/// request but `/health` with 500, and with `SLOW_MS=N` takes N ms longer;
/// with `MISBEHAVE=drop` it closes the connection on every GET but
/// `/health` without answering (the router retries those elsewhere, so
/// users see nothing), with `MISBEHAVE=hang` it never answers any request
/// but `/health`.
const APP: &str = r#"
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
RELEASE = os.environ.get("BLUEGREEN_RELEASE", "?")
COLOR = os.environ.get("BLUEGREEN_COLOR", "?")
SICK = os.path.exists("UNHEALTHY")
FAIL = float(os.environ.get("FAIL_PERCENT", "0"))
SLOW = int(os.environ.get("SLOW_MS", "0")) / 1000
MISBEHAVE = os.environ.get("MISBEHAVE", "")
import itertools, threading
SERVED = itertools.count(1)
LOCK = threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    def answer(self, status, body):
        body = body.encode()
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def bad(self):
        if self.path == "/health":
            return False
        if MISBEHAVE == "drop" and self.command == "GET":
            self.close_connection = True
            return True
        if MISBEHAVE == "hang":
            time.sleep(120)
            self.close_connection = True
            return True
        if SLOW:
            time.sleep(SLOW)
        with LOCK:
            n = next(SERVED)
        if FAIL and n % round(100 / FAIL) == 0:
            self.answer(500, "release %s %s failed request %d\n" % (RELEASE, COLOR, n))
            return True
        return False
    def do_GET(self):
        if self.bad():
            return
        if self.path.startswith("/slow"):
            time.sleep(int(self.path.partition("ms=")[2] or "250") / 1000)
        status = 500 if (SICK and self.path == "/health") else 200
        self.answer(status, "release %s %s\n" % (RELEASE, COLOR))
    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.bad():
            return
        self.answer(200, "release %s %s got %d\n" % (RELEASE, COLOR, len(data)))
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

const MIGRATE: &str = r#"
import json, os
with open(os.environ["MIGRATION_LOG"], "a") as f:
    f.write("migrated by %s on %s\n" % (os.environ.get("BLUEGREEN_RELEASE"), os.environ.get("BLUEGREEN_COLOR")))
if "DATABASE_URL" in os.environ:
    with open(os.environ["MIGRATION_LOG"] + ".env.json", "w") as f:
        json.dump({k: os.environ.get(k) for k in ["DATABASE_URL", "VCAP_SERVICES", "PGOPTIONS"]}, f)
"#;

pub struct Fixture {
    home: tempfile::TempDir,
    pub root: tempfile::TempDir,
    pub file: PathBuf,
    pub router_port: u16,
    /// Deploys as `platform: cf`, with these variables (from `platform
    /// cf-env`, evaluated by a shell as a user would): the local platform
    /// serving as Cloud Foundry over TLS.
    pub cf: Option<Vec<(String, String)>>,
    /// Commands `spawn` started: killed on drop if still running (a test
    /// that failed before it waited for one, a `status --watch`, would
    /// leave it running otherwise).
    spawned: std::sync::Mutex<Vec<u32>>,
}

impl Fixture {
    /// An app, a deploy file (with `extra` YAML appended) and a running platform.
    pub fn new(extra: &str) -> Fixture {
        Fixture::on(false, extra)
    }

    /// As `new`, deploying with `platform: cf` to the local platform serving
    /// as Cloud Foundry.
    pub fn new_cf(extra: &str) -> Fixture {
        Fixture::on(true, extra)
    }

    fn on(cf: bool, extra: &str) -> Fixture {
        let home = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let app = root.path().join("app");
        std::fs::create_dir_all(app.join("migrations")).unwrap();
        std::fs::write(app.join("app.py"), APP).unwrap();
        std::fs::write(app.join("migrate.py"), MIGRATE).unwrap();
        std::fs::write(app.join("Procfile"), "web: exec python3 app.py\n").unwrap();
        std::fs::write(
            app.join("migrations/0001_create_items.up.sql"),
            "CREATE TABLE items (id bigint primary key);\n",
        )
        .unwrap();
        let mut f = Fixture {
            file: root.path().join("bluegreen.yaml"),
            home,
            root,
            router_port: 0,
            cf: cf.then(Vec::new),
            spawned: Default::default(),
        };
        f.write_file(extra);
        f.start_platform();
        f
    }

    /// A copy of `examples/NAME` (its deploy file passed through `edit`) and
    /// a running platform.
    pub fn example(name: &str, edit: impl Fn(String) -> String) -> Fixture {
        Fixture::example_on(false, name, edit)
    }

    /// As `example`, deployed as `platform: cf`.
    pub fn example_cf(name: &str, edit: impl Fn(String) -> String) -> Fixture {
        Fixture::example_on(true, name, |y| format!("platform: cf\n{}", edit(y)))
    }

    fn example_on(cf: bool, name: &str, edit: impl Fn(String) -> String) -> Fixture {
        let home = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(name);
        copy_dir(&src, root.path());
        let file = root.path().join("bluegreen.yaml");
        let yaml = edit(std::fs::read_to_string(&file).unwrap());
        std::fs::write(&file, yaml).unwrap();
        let mut f = Fixture {
            file,
            home,
            root,
            router_port: 0,
            cf: cf.then(Vec::new),
            spawned: Default::default(),
        };
        f.start_platform();
        f
    }

    pub fn start_platform(&mut self) {
        let out = self.run(&["platform", "start", "--router-port", "0"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        self.read_endpoint();
    }

    fn read_endpoint(&mut self) {
        let endpoint: Value = serde_json::from_slice(
            &std::fs::read(self.home.path().join("platform/daemon.json")).unwrap(),
        )
        .unwrap();
        self.router_port = endpoint["router_port"].as_u64().unwrap() as u16;
        if self.cf.is_some() {
            self.cf = Some(self.cf_env());
        }
    }

    /// Stops the platform and starts it again with `env` set (fault
    /// injection, a token lifetime): new ports, a new token.
    pub fn restart_platform_with(&mut self, env: &[(&str, &str)]) {
        assert_eq!(self.run(&["platform", "stop"]).status.code(), Some(0));
        let out = self
            .cmd(&["platform", "start", "--router-port", "0"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        self.read_endpoint();
    }

    /// What `eval "$(bluegreen platform cf-env)"` sets in a shell.
    pub fn cf_env(&self) -> Vec<(String, String)> {
        let script = format!(
            "set -e; eval \"$('{}' platform cf-env)\"; env -0",
            env!("CARGO_BIN_EXE_bluegreen")
        );
        let out = Command::new("bash")
            .args(["-c", &script])
            .env("BLUEGREEN_HOME", self.home.path())
            .output()
            .expect("running bash");
        assert!(out.status.success(), "{}", text(&out));
        let vars: Vec<(String, String)> = out
            .stdout
            .split(|b| *b == 0)
            .filter_map(|kv| {
                String::from_utf8_lossy(kv)
                    .split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
            })
            .filter(|(k, _)| {
                k.starts_with("CF_")
                    || k.starts_with("BLUEGREEN_CA")
                    || k.starts_with("BLUEGREEN_CONNECT")
            })
            .collect();
        assert_eq!(vars.len(), 7, "{vars:?}");
        vars
    }

    /// The platform line of the deploy file.
    pub fn platform_line(&self) -> &'static str {
        if self.cf.is_some() {
            "platform: cf\n"
        } else {
            ""
        }
    }

    /// The deploy file's drain. Locally a drain ends once the router counts
    /// no request in flight, so a long one costs nothing and rides out a
    /// loaded machine; as CF it is a plain wait, kept short (the load's slow
    /// GETs take 100 ms, a third of it).
    pub fn drain(&self) -> &'static str {
        if self.cf.is_some() { "300ms" } else { "2s" }
    }

    pub fn write_file(&self, extra: &str) {
        let yaml = format!(
            "{}app: shop\npath: app\nhealth: {{ path: /health, interval: 50ms, timeout: 10s }}\n\
             drain: {}\nenv: {{ MIGRATION_LOG: {} }}\n\
             migrate: {{ command: python3 migrate.py, kind: sql }}\n{extra}",
            self.platform_line(),
            self.drain(),
            self.migration_log().display()
        );
        std::fs::write(&self.file, yaml).unwrap();
    }

    /// Puts the `gate` plugin in `plugins/` with these settings.
    pub fn gate(&self, settings: &str) {
        let dir = self.root.path().join("plugins");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(component("gate"), dir.join("gate.wasm")).unwrap();
        self.write_file(&format!(
            "plugins: {{ dir: plugins, config: {{ gate: {{ settings: {{ {settings} }}, timeout: 10s }} }} }}\n"
        ));
    }

    /// Copies built components into `plugins/`.
    pub fn plugins(&self, names: &[&str]) {
        let dir = self.root.path().join("plugins");
        std::fs::create_dir_all(&dir).unwrap();
        for n in names {
            std::fs::copy(component(n), dir.join(format!("{n}.wasm"))).unwrap();
        }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn migration_log(&self) -> PathBuf {
        self.root.path().join("migrations.log")
    }

    pub fn migrations(&self) -> usize {
        std::fs::read_to_string(self.migration_log())
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    pub fn journal(&self) -> PathBuf {
        self.home.path().join("deploys/shop/journal.jsonl")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
        c.args(args)
            .env("BLUEGREEN_HOME", self.home.path())
            .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        // `platform` takes no deploy file.
        if args[0] != "platform" {
            c.arg("-f").arg(&self.file);
            for (k, v) in self.cf.iter().flatten() {
                c.env(k, v);
            }
        }
        c
    }

    /// The command started, its output piped.
    fn piped(&self, args: &[&str]) -> Child {
        self.cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting bluegreen")
    }

    /// Runs a command to its end, killed (and its output shown by the
    /// caller's check) after 10 minutes: a command that never ends fails
    /// its test instead of holding the whole suite.
    pub fn run(&self, args: &[&str]) -> Output {
        let child = self.piped(args);
        let (done, watch) = std::sync::mpsc::channel::<()>();
        let pid = child.id() as i32;
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                watch.recv_timeout(Duration::from_secs(600))
            {
                // SAFETY: a plain syscall on the child, not yet waited for.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let out = child.wait_with_output().expect("running bluegreen");
        let _ = done.send(());
        out
    }

    pub fn spawn(&self, args: &[&str]) -> Child {
        let child = self.piped(args);
        self.spawned.lock().unwrap().push(child.id());
        child
    }

    pub fn deploy(&self, release: &str) -> Output {
        self.run(&["deploy", "--release", release])
    }

    /// `status --json`, whether the route serves (exit 0) or not (5).
    pub fn status(&self) -> Value {
        let out = self.run(&["status", "--json"]);
        assert!(matches!(out.status.code(), Some(0 | 5)), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Asserts the invariant's end state: both colors healthy, mapped and on
    /// `release`, and the route serving it from both.
    pub fn assert_serving(&self, release: &str) {
        self.assert_serving_on("shop", release);
    }

    /// `assert_serving` for the route `host` of an app whose answers start
    /// with a `release R COLOR` line (the test app, the Rails example).
    pub fn assert_serving_on(&self, host: &str, release: &str) {
        self.assert_colors(release);
        self.assert_route_serves(host, release);
    }

    /// What the route `host` serves, asked through the router as a user
    /// would: every answer a 200 from `release`, and both colors answering
    /// (the router takes turns, so a few requests reach each).
    pub fn assert_route_serves(&self, host: &str, release: &str) {
        let mut colors = std::collections::BTreeSet::new();
        for i in 0..40 {
            let (status, body) = get(self.router_port, host, "/")
                .unwrap_or_else(|e| panic!("request {i} through the route `{host}`: {e}"));
            assert_eq!(status, 200, "request {i}: {body}");
            let (r, color) = release_line(&body)
                .unwrap_or_else(|| panic!("request {i}: no `release R COLOR` line in {body:?}"));
            assert_eq!(r, release, "request {i}: {body}");
            colors.insert(color);
            if colors.len() == 2 && i >= 5 {
                break;
            }
        }
        assert_eq!(
            colors.iter().map(String::as_str).collect::<Vec<_>>(),
            ["blue", "green"],
            "the colors answering on the route `{host}`"
        );
    }

    /// Per color, what `status` says: (color, release, mapped, healthy,
    /// newest). Exactly blue then green.
    pub fn colors(&self) -> Vec<(String, Value, Value, Value, Value)> {
        let s = self.status();
        both_colors(&s)
            .into_iter()
            .map(|c| {
                (
                    c["color"].as_str().unwrap().to_string(),
                    c["release"].clone(),
                    c["mapped"].clone(),
                    c["healthy"].clone(),
                    c["newest"].clone(),
                )
            })
            .collect()
    }

    /// Requests in flight through the router to either color, as the
    /// daemon counts them (what a drain waits for).
    pub fn inflight(&self) -> u64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (_, client) =
                bluegreen::platform::local::connect(&self.home.path().join("platform"))
                    .await
                    .expect("the daemon answers");
            let apps = client
                .list::<bluegreen::platform::v3::App>("/v3/apps")
                .await
                .unwrap();
            let mut total = 0;
            for app in apps.iter().filter(|a| a.name.starts_with("shop-")) {
                total += client.inflight(&app.guid).await.unwrap();
            }
            total
        })
    }

    /// The newest entry of `history --json`.
    pub fn last_history(&self) -> Value {
        let out = self.run(&["history", "--json"]);
        events(&out).pop().expect("a history entry")
    }

    /// Both colors (exactly: an empty list is not "all on `release`")
    /// healthy, mapped and on `release`.
    pub fn assert_colors(&self, release: &str) {
        let s = self.status();
        for c in both_colors(&s) {
            assert_eq!(c["release"], release, "{s}");
            assert_eq!(
                (&c["mapped"], &c["healthy"]),
                (&Value::Bool(true), &Value::Bool(true)),
                "{s}"
            );
        }
    }

    pub fn load(&self) -> Load {
        Load::start(self.router_port)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Only a process that still names this fixture's deploy file: a
        // pid reused since is someone else's.
        let file = self.file.to_string_lossy().into_owned();
        for pid in self.spawned.lock().unwrap().drain(..) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&file) {
                // SAFETY: a plain syscall on a process this fixture started.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        // A daemon or app left running would outlive the test: that fails
        // it (or, if it is failing already, is printed loudly).
        stop_platform(self.home.path());
    }
}

/// The colors of a `status --json`: exactly blue and green, in that order.
/// A check over "every color" passes on an empty list; this fails on it.
pub fn both_colors(s: &Value) -> [&Value; 2] {
    let colors = s["colors"]
        .as_array()
        .unwrap_or_else(|| panic!("no colors in {s}"));
    let names: Vec<&str> = colors.iter().filter_map(|c| c["color"].as_str()).collect();
    assert_eq!(names, ["blue", "green"], "both colors exist: {s}");
    [&colors[0], &colors[1]]
}

/// The release and color an answer names on its `release R COLOR` line
/// (the first one: a chunked answer may have a chunk size before it).
pub fn release_line(body: &str) -> Option<(String, String)> {
    let at = body.find("release ")?;
    let mut words = body[at + "release ".len()..].split_whitespace();
    Some((words.next()?.to_string(), words.next()?.to_string()))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// One GET through the router with the route's Host header.
pub fn get(port: u16, host: &str, path: &str) -> Result<(u16, String), String> {
    request(port, host, "GET", path)
}

/// One bodyless request through the router with the route's Host header.
pub fn request(port: u16, host: &str, method: &str, path: &str) -> Result<(u16, String), String> {
    let body = if method == "GET" { None } else { Some("") };
    send(port, host, method, path, body)
}

/// One request through the router, with a body unless `None`.
pub fn send(
    port: u16,
    host: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    let length = body
        .map(|b| format!("content-length: {}\r\n", b.len()))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {host}.apps.localhost\r\n{length}connection: close\r\n\r\n{}",
        body.unwrap_or_default()
    )
    .map_err(|e| e.to_string())?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).map_err(|e| e.to_string())?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no status line in {buf:?}"))?;
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

/// Requests through the route until stopped (at most ten minutes), from
/// three clients at once: fast GETs, GETs the app holds 100 ms (in flight
/// across a step: an unmap without drain, or a restart of a mapped color,
/// cuts them), and POSTs with a body (the router cannot retry them on the
/// other color). How many, which failed, which releases answered.
pub struct Load {
    pub started: Instant,
    stop: Arc<AtomicBool>,
    /// Requests answered so far, per kind.
    answered: Vec<Arc<std::sync::atomic::AtomicUsize>>,
    threads: Vec<(&'static str, std::thread::JoinHandle<Tally>)>,
}

/// Requests made, failures, releases seen in order.
type Tally = (usize, Vec<String>, Vec<String>);

/// The kinds of request `Load` makes: name, method, path, body.
const KINDS: [(&str, &str, &str, Option<&str>); 3] = [
    ("fast GET", "GET", "/", None),
    ("slow GET", "GET", "/slow?ms=100", None),
    (
        "POST",
        "POST",
        "/orders",
        Some("{\"item\": 42, \"note\": \"a body to forward\"}"),
    ),
];

impl Load {
    fn start(port: u16) -> Load {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let answered: Vec<Arc<std::sync::atomic::AtomicUsize>> =
            KINDS.iter().map(|_| Arc::default()).collect();
        let threads = KINDS
            .into_iter()
            .zip(answered.clone())
            .map(|((name, method, path, body), count)| {
                let flag = stop.clone();
                let thread = std::thread::spawn(move || {
                    let (mut n, mut failures, mut seen) = (0, Vec::new(), Vec::<String>::new());
                    let until = Instant::now() + Duration::from_secs(600);
                    while !flag.load(Ordering::SeqCst) && Instant::now() < until {
                        n += 1;
                        let answer = send(port, "shop", method, path, body);
                        count.fetch_add(1, Ordering::SeqCst);
                        match answer {
                            Ok((200, text)) => {
                                let release =
                                    text.split_whitespace().nth(1).unwrap_or("").to_string();
                                if !seen.contains(&release) {
                                    seen.push(release);
                                }
                                if let Some(b) = body {
                                    let echoed = format!("got {}", b.len());
                                    if !text.contains(&echoed) {
                                        failures.push(format!(
                                            "{:.3}s {name}: body lost: {text}",
                                            started.elapsed().as_secs_f64()
                                        ));
                                    }
                                }
                            }
                            Ok((status, text)) => failures.push(format!(
                                "{:.3}s {name}: HTTP {status}: {text}",
                                started.elapsed().as_secs_f64()
                            )),
                            Err(e) => failures.push(format!(
                                "{:.3}s {name}: {e}",
                                started.elapsed().as_secs_f64()
                            )),
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    (n, failures, seen)
                });
                (name, thread)
            })
            .collect();
        Load {
            started,
            stop,
            answered,
            threads,
        }
    }

    /// Waits until each kind of request got `n` more answers (bounded far
    /// above the usual few milliseconds): the load surely runs across what
    /// comes next, or ran on after what came before.
    pub fn more(&self, n: usize) {
        let from: Vec<usize> = self
            .answered
            .iter()
            .map(|c| c.load(Ordering::SeqCst))
            .collect();
        wait_until(
            &format!("{n} more answers of each kind of request"),
            Duration::from_secs(60),
            || {
                self.answered
                    .iter()
                    .zip(&from)
                    .all(|(c, from)| c.load(Ordering::SeqCst) >= from + n)
            },
        );
    }

    /// Stops; returns (requests, failures, releases the fast GETs saw in
    /// order). Every kind of request must have been made.
    pub fn finish(self) -> Tally {
        // A short window still sees each kind a few times (bounded wait).
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until && self.answered.iter().any(|c| c.load(Ordering::SeqCst) < 3) {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::SeqCst);
        let (mut total, mut failures, mut seen) = (0, Vec::new(), Vec::new());
        for (name, thread) in self.threads {
            let (n, f, s) = thread.join().unwrap();
            assert!(n >= 3, "only {n} {name} requests: the load did not run");
            total += n;
            failures.extend(f);
            if name == "fast GET" {
                seen = s;
            }
        }
        (total, failures, seen)
    }
}

/// Writes the fixture's deploy file: its app, health check and drain, with
/// `env` added to the release's environment, then `extra`.
pub fn write_file(f: &Fixture, env: &str, extra: &str) {
    let yaml = format!(
        "{}app: shop\npath: app\nhealth: {{ path: /health, interval: 50ms, timeout: 10s }}\n\
         drain: {}\nenv: {{ MIGRATION_LOG: {}{env} }}\n{extra}",
        f.platform_line(),
        f.drain(),
        f.migration_log().display()
    );
    std::fs::write(&f.file, yaml).unwrap();
}

/// The JSON lines of `--json` output.
pub fn json_lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

pub fn events(out: &Output) -> Vec<Value> {
    json_lines(&out.stdout)
}

#[test]
fn two_deploys_in_a_row_swap_releases_with_zero_failed_requests() {
    let f = Fixture::new("");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("[27/28] record the release"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "serves http://shop.apps.localhost:{}",
            f.router_port
        )),
        "{stdout}"
    );
    f.assert_serving("v1");
    assert_eq!(
        f.migrations(),
        1,
        "the migration runs once, on the first color"
    );

    let load = f.load();
    load.more(3);
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    load.more(3);
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed: {failures:?}",
        failures.len()
    );
    assert_eq!(seen, ["v1", "v2"], "{n} requests");
    assert!(n > 50, "only {n} requests");
    f.assert_serving("v2");
    assert_eq!(f.migrations(), 2);
    let log = std::fs::read_to_string(f.migration_log()).unwrap();
    assert!(log.ends_with("migrated by v2 on blue\n"), "{log}");

    // --json: one event per step, in order, each started then done.
    let ev = events(&out);
    let done: Vec<u64> = ev
        .iter()
        .filter(|e| e["event"] == "step" && e["status"] == "done")
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(done, (1..=28).collect::<Vec<u64>>());
    assert_eq!(ev.last().unwrap()["status"], "done");

    let history = f.run(&["history", "--json"]);
    let entries: Vec<Value> = events(&history);
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (&entries[1]["release"], &entries[1]["previous_release"]),
        (&"v2".into(), &"v1".into())
    );
    assert!(
        !f.journal().exists(),
        "the journal is gone once the deploy ends"
    );
}

#[test]
fn a_candidate_that_never_gets_healthy_is_rolled_back_while_the_other_serves() {
    never_healthy_rolled_back(Fixture::new(""));
}

/// A candidate whose `/health` answers 500 (as `platform: cf`, probed over
/// https on its own route) is rolled back while the other color serves.
pub fn never_healthy_rolled_back(f: Fixture) {
    crate::util::succeeded(f.deploy("v1"));
    std::fs::write(f.root.path().join("app/UNHEALTHY"), "").unwrap();
    let file = std::fs::read_to_string(&f.file)
        .unwrap()
        .replace("50ms, timeout: 10s", "50ms, timeout: 3s");
    std::fs::write(&f.file, file).unwrap();

    let load = f.load();
    let out = f.deploy("v2");
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("deploy failed at `probe blue's own URL /health"),
        "{err}"
    );
    assert!(err.contains("HTTP 500 (expected 200)"), "{err}");
    assert!(
        err.contains("rolled blue back to v1: healthy and on the route again"),
        "{err}"
    );
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed: {failures:?}",
        failures.len()
    );
    assert_eq!(seen, ["v1"]);
    f.assert_serving("v1");
    let history = events(&f.run(&["history", "--json"]));
    assert_eq!(history.last().unwrap()["result"], "failed");
}

#[test]
fn a_blocking_plugin_at_each_hook_stops_the_deploy_there() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    // After v1, blue goes first (green runs the newest release).
    let hooks = [
        "pre-deploy",
        "migration-safety-check",
        "pre-unmap:blue",
        "pre-push:blue",
        "health-check:blue",
        "pre-map:blue",
        "post-map:blue",
        "pre-unmap:green",
        "pre-map:green",
    ];
    for (i, at) in hooks.iter().enumerate() {
        f.gate(&format!("block-at: \"{at}\""));
        let before = f.migrations();
        let release = format!("b{i}");
        let out = f.run(&["deploy", "--release", &release, "--json"]);
        assert_eq!(out.status.code(), Some(3), "{at}: {}", text(&out));
        let ev = events(&out);
        let hook = at.split(':').next().unwrap();
        let blocked = ev
            .iter()
            .find(|e| e["event"] == "hook" && e["verdict"] == "block")
            .unwrap_or_else(|| panic!("{at}: no block event"));
        assert_eq!(blocked["hook"], hook);
        assert_eq!(blocked["plugin"], "gate");
        let failed = ev
            .iter()
            .find(|e| e["status"] == "failed")
            .expect("a failed step");
        assert_eq!(failed["step"], hook, "{at}");
        let last_started = ev.iter().rfind(|e| e["status"] == "started").unwrap();
        assert_eq!(
            last_started["index"], failed["index"],
            "{at}: nothing runs after the block"
        );
        assert!(
            ev.iter()
                .any(|e| e["event"] == "hook" && e["hook"] == "on-failure"),
            "{at}: on-failure hooks run"
        );
        let migrated = f.migrations() - before;
        let expect = usize::from(!matches!(
            *at,
            "pre-deploy" | "migration-safety-check" | "pre-unmap:blue" | "pre-push:blue"
        ));
        assert_eq!(migrated, expect, "{at}");
        // Blue goes back where a block left it in flight; green serves throughout.
        let s = f.status();
        for c in both_colors(&s) {
            assert_eq!(
                (&c["mapped"], &c["healthy"]),
                (&true.into(), &true.into()),
                "{at}: {s}"
            );
        }
        let green = &s["colors"][1];
        assert_eq!(green["release"], "v1", "{at}: {s}");
    }
    // At post-deploy the deploy had finished: nothing is rolled back.
    f.gate("block-at: post-deploy");
    let out = f.deploy("v3");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing was rolled back"),
        "{}",
        text(&out)
    );
    f.assert_serving("v3");
}

#[test]
fn a_second_concurrent_deploy_is_refused_with_the_holders_details() {
    second_runner_refused(Fixture::new(""));
}

/// The same as `platform: cf`, where the lock is Cloud Controller's to
/// arbitrate.
#[test]
fn as_cf_a_second_concurrent_deploy_is_refused_with_the_holders_details() {
    second_runner_refused(Fixture::new_cf(""));
}

fn second_runner_refused(f: Fixture) {
    crate::util::succeeded(f.deploy("v1"));
    f.gate("sleep-ms: \"200\"");
    let first = f.spawn(&["deploy", "--release", "v2"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f.journal().exists() {
        assert!(Instant::now() < deadline, "the first deploy never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = f.deploy("v3");
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("app `shop` is locked by deploy"), "{err}");
    assert!(err.contains(&format!("pid {}", first.id())), "{err}");
    assert!(err.contains("--wait"), "{err}");
    let first = first.wait_with_output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    f.assert_serving("v2");

    // --wait queues behind the holder instead.
    let mut again = f.spawn(&["deploy", "--release", "v4"]);
    while !f.journal().exists() {
        assert!(Instant::now() < deadline + Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = f.run(&["deploy", "--release", "v5", "--wait", "60s"]);
    assert_eq!(again.wait().unwrap().code(), Some(0));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v5");
}

/// Kills the runner inside each step that takes time (every hook, drain,
/// push and health): the state right after each boundary. `recover` then
/// leaves both colors healthy and mapped on one release.
#[test]
fn killed_at_each_step_boundary_then_recover_keeps_the_route_serving() {
    killed_then_recovered(Fixture::new(""), 1);
}

/// The same as `platform: cf` (the lease on Cloud Foundry, per-color
/// routes, probes over https), at every third boundary.
#[test]
fn as_cf_killed_at_step_boundaries_then_recover_keeps_the_route_serving() {
    killed_then_recovered(Fixture::new_cf(""), 3);
}

/// Kills the runner inside every `stride`th step that takes time, then
/// recovers; `stride` bounds the time a second platform's run takes.
fn killed_then_recovered(f: Fixture, stride: usize) {
    crate::util::succeeded(f.deploy("v0"));
    f.gate("sleep-ms: \"150\"");
    let plan = f.run(&["plan", "--json", "--release", "x"]);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap().clone();
    let kill_points: Vec<usize> = (2..steps.len())
        .filter(|&i| {
            let s = steps[i]["step"].as_str().unwrap();
            !matches!(
                s,
                "unmap" | "map" | "record-release" | "release-lock" | "migrate"
            )
        })
        .collect();
    assert!(kill_points.len() >= 18, "{kill_points:?}");
    let kill_points: Vec<usize> = kill_points.into_iter().step_by(stride).collect();
    // The README's rule: recover rolls forward exactly when the first
    // color's map had finished, else back.
    let first_map = steps.iter().position(|s| s["step"] == "map").unwrap();
    let load = f.load();
    let mut current = "v0".to_string();
    let mut outcomes = Vec::new();
    for k in kill_points {
        let release = format!("k{k}");
        let mut child = f.spawn(&["deploy", "--release", &release]);
        let marker = format!("{{\"event\":\"start\",\"step\":{k}}}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let j = std::fs::read_to_string(f.journal()).unwrap_or_default();
            if j.contains(&marker) {
                break;
            }
            assert!(Instant::now() < deadline, "step {k} never started:\n{j}");
            assert!(
                child.try_wait().unwrap().is_none(),
                "deploy ended before step {k}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let out = f.run(&["recover"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "after a kill in step {k}: {}",
            text(&out)
        );
        let s = f.status();
        let releases: Vec<&str> = s["colors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert_eq!(
                    (&c["mapped"], &c["healthy"]),
                    (&true.into(), &true.into()),
                    "step {k}: {s}"
                );
                c["release"].as_str().unwrap()
            })
            .collect();
        assert_eq!(releases[0], releases[1], "step {k}: {s}");
        assert!(
            releases[0] == current || releases[0] == release,
            "step {k}: {s}"
        );
        let forward = releases[0] == release;
        assert_eq!(
            forward,
            k > first_map,
            "killed in step {k} ({}), the first color's map is step {first_map}: {s}",
            steps[k]["step"]
        );
        outcomes.push((k, forward));
        current = releases[0].to_string();
        assert!(!f.journal().exists());
    }
    let (n, failures, _) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {n} requests failed: {failures:?}",
        failures.len()
    );
    assert!(
        outcomes.iter().any(|o| o.1) && outcomes.iter().any(|o| !o.1),
        "{outcomes:?}"
    );
}

/// A runner on this host whose process is gone holds nothing: the next
/// deploy takes its lease over (no waiting out the lease, no `unlock
/// --force`) and recovers its journal before its own work.
#[test]
fn a_dead_runners_lock_is_taken_over_and_its_work_recovered_first() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    f.gate("sleep-ms: \"300\"");
    let mut child = f.spawn(&["deploy", "--release", "v2"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(f.journal())
        .unwrap_or_default()
        .contains("\"step\":7}")
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let status = f.status();
    assert_eq!(status["lock"]["pid"], child.id(), "{status}");
    let out = f.run(&["unlock"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = Instant::now();
    let out = f.deploy("v3");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("interrupted; recovering it first"),
        "{}",
        text(&out)
    );
    f.assert_serving("v3");
}

#[test]
fn rollback_goes_back_through_the_same_sequence() {
    rollback_through_the_same_sequence(Fixture::new(""));
}

/// `rollback` (no migration, zero failed requests) and `rollback --to`, on
/// either platform.
pub fn rollback_through_the_same_sequence(f: Fixture) {
    crate::util::succeeded(f.deploy("v1"));
    crate::util::succeeded(f.deploy("v2"));
    let load = f.load();
    let out = f.run(&["rollback"]);
    let (n, failures, _) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        failures.is_empty(),
        "{} of {n} failed: {failures:?}",
        failures.len()
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("push to blue: switch back to release v1"),
        "{stdout}"
    );
    assert!(!stdout.contains("migrate"), "{stdout}");
    f.assert_serving("v1");
    assert_eq!(f.migrations(), 2, "a rollback never migrates");
    let out = f.run(&["rollback", "--to", "v2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v2");
    let out = f.run(&["rollback", "--to", "v9"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("release `v9` is not in the history; known releases: v1, v2")
    );
}

#[test]
fn bad_input_exits_2_before_anything_changes() {
    let f = Fixture::new("");
    std::fs::write(&f.file, "app: shop\nhealth: { path: health }\n").unwrap();
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("field `health.path`: `health` must start with `/`")
    );
    f.write_file("plugins: { dir: plugins, config: { nope: { settings: {} } } }\n");
    std::fs::create_dir_all(f.root.path().join("plugins")).unwrap();
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no plugin `nope.wasm`"),
        "{}",
        text(&out)
    );
    let out = f.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not deployed yet"),
        "{}",
        text(&out)
    );
}

/// `plan` output, golden: `tests/ui/plan/NAME.yaml` → `NAME.out`, and
/// `plan --json` → `NAME.json` (durations as `*_ms` numbers, as every other
/// `--json` writes them; `BLESS=1` rewrites). Plugins come from the built
/// components.
#[test]
fn plan_output_matches_its_golden_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/plan");
    let mut checked = 0;
    let entries = crate::util::sorted_entries(&dir);
    for path in entries
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        let work = tempfile::tempdir().unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(work.path().join("app")).unwrap();
        std::fs::write(work.path().join("app/Procfile"), "web: python3 app.py\n").unwrap();
        std::fs::create_dir_all(work.path().join("plugins")).unwrap();
        for p in ["hello", "http-probe", "gate"] {
            std::fs::copy(component(p), work.path().join(format!("plugins/{p}.wasm"))).unwrap();
        }
        let file = work.path().join("bluegreen.yaml");
        std::fs::copy(path, &file).unwrap();
        for (json, golden_ext) in [(false, "out"), (true, "json")] {
            let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
                .args(["plan", "--release", "r1", "-f"])
                .arg(&file)
                .args(json.then_some("--json"))
                .env("BLUEGREEN_HOME", home.path())
                .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            let mut shown = String::from_utf8_lossy(&out.stdout).into_owned();
            if json {
                let v: Value = serde_json::from_str(&shown).unwrap();
                assert!(!shown.contains("\"secs\""), "{shown}");
                shown = serde_json::to_string_pretty(&v).unwrap() + "\n";
                assert!(
                    v["steps"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|s| s["timeout_ms"].is_u64())
                );
            }
            golden(&path.with_extension(golden_ext), &shown);
        }
        checked += 1;
    }
    assert!(checked >= 2);
}
