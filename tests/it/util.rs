//! Shared test helpers: where the built components are, a host whose cache is
//! shared by the whole run (each component compiles once per run), and a tiny
//! bounded HTTP server on 127.0.0.1.

use bluegreen::plugin::{HookContext, Plugin, PluginConfig, PluginHost, Sandbox};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A component built by `build.rs`: `hello`, `http-probe`, or a test-only one
/// (`hostile`, `mismatch`, `no-hooks`).
pub fn component(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("BLUEGREEN_BUILT_PLUGINS"));
    let real = dir.join(format!("{name}.wasm"));
    if real.exists() {
        real
    } else {
        dir.join("testing").join(format!("{name}.wasm"))
    }
}

pub fn shared_cache_dir() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp cache dir"))
        .path()
        .join("cache")
}

/// A host on the run-wide cache.
pub fn host() -> PluginHost {
    PluginHost::new(Some(shared_cache_dir())).expect("plugin host")
}

pub async fn load(host: &PluginHost, name: &str) -> Plugin {
    host.load(&component(name))
        .await
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

pub fn settings(pairs: &[(&str, &str)]) -> PluginConfig {
    PluginConfig {
        settings: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..PluginConfig::default()
    }
}

pub fn with_sandbox(mut config: PluginConfig, sandbox: Sandbox) -> PluginConfig {
    config.sandbox = sandbox;
    config
}

pub fn ctx() -> HookContext {
    HookContext::default()
}

/// A canned response and a count of requests served, on an ephemeral
/// loopback port. The accept thread ends with the test process.
pub struct TestServer {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub hosts: Arc<Mutex<Vec<String>>>,
}

impl TestServer {
    pub fn start(status: u16, body: &'static str) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicUsize::new(0));
        let hosts = Arc::new(Mutex::new(Vec::new()));
        let (h, hs) = (hits.clone(), hosts.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut host = String::new();
                let mut line = String::new();
                // Read the request head; bounded by the read timeout.
                while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("host:") {
                        host = v.trim().to_string();
                    }
                    line.clear();
                }
                h.fetch_add(1, Ordering::SeqCst);
                hs.lock().unwrap().push(host);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
                let _ = reader.read(&mut [0u8; 0]);
            }
        });
        TestServer { addr, hits, hosts }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A plugin in another language (`smoke-test` in JavaScript,
/// `change-window` in Python, `release-gate` in C), built from source by its
/// `plugins/NAME/build` script once per test run. A missing toolchain fails
/// the build, and the test: `scripts/test` installs them all.
/// Runs the `build` script of a project `plugin new` wrote, reusing this
/// run's compiled guest dependencies.
/// Builds a `plugin new` project offline: its JavaScript and Python tools
/// come from what scripts/test installed (the same pinned versions), and
/// npm and pip are told not to reach their registries, so a template that
/// would fetch anything fails here instead of depending on the network.
pub fn build_new_plugin(project: &std::path::Path) -> std::process::Output {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::process::Command::new(project.join("build"))
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("BLUEGREEN_BUILT_PLUGINS")).join("../plugins-build"),
        )
        .env("CARGO_NET_OFFLINE", "true")
        .env(
            "BLUEGREEN_NODE_MODULES",
            repo.join("plugins/smoke-test/node_modules"),
        )
        .env("BLUEGREEN_PY_VENV", repo.join("target/py-venv"))
        .env("npm_config_offline", "true")
        .env("PIP_NO_INDEX", "1")
        .output()
        .unwrap()
}

pub fn lang_component(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    // A failed build panics holding the lock; the next caller builds again.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("lang-plugins");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.wasm"));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("plugins")
        .join(name)
        .join("build");
    // What they need was installed by scripts/test: no registry from here.
    let result = std::process::Command::new(&script)
        .arg(&out)
        .env("npm_config_offline", "true")
        .env("PIP_NO_INDEX", "1")
        .output()
        .expect("running a plugin build script");
    assert!(
        result.status.success(),
        "{} failed (install its toolchain: scripts/test installs what is missing):\n{}{}",
        script.display(),
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    built.insert(name.to_string(), out.clone());
    out
}

/// Compares `actual` with the golden file `path`; `BLESS=1` rewrites it
/// after a deliberate change.
pub fn golden(path: &std::path::Path, actual: &str) {
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("{} missing (BLESS=1 writes it)", path.display()));
    assert_eq!(actual, expected, "{}", path.display());
}

/// The entries of `dir`, sorted by path (fixture and golden directories).
pub fn sorted_entries(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    entries
}

/// Serves `app` on an ephemeral loopback port until the test ends; returns
/// its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A lease held by deploy `id` of another runner, expiring at `expires`.
pub fn lease(id: &str, app: &str, expires: u64) -> bluegreen::platform::lease::Lease {
    bluegreen::platform::lease::Lease {
        id: id.into(),
        app: app.into(),
        host: "elsewhere".into(),
        pid: 42,
        command: "bluegreen deploy".into(),
        since: "2026-01-01T00:00:00Z".into(),
        expires,
        process: None,
    }
}

/// A Python app on `$PORT` whose GET runs `before` (statements on one
/// line) and answers `status` with `body` (Python expressions).
pub fn py_app(before: &str, status: &str, body: &str) -> String {
    py_app_with("", before, status, body)
}

/// `py_app` with `setup` run once at start (module level, one line).
pub fn py_app_with(setup: &str, before: &str, status: &str, body: &str) -> String {
    format!(
        r#"
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
{setup}
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        {before}
        body = ({body}).encode()
        self.send_response({status})
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#
    )
}

/// What a command printed, with its exit code, for assertion messages.
fn shown(out: &std::process::Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `out`, once its command is known to have exited with `code` (its output
/// shown otherwise): that a command did not print something means nothing
/// if it failed for some other reason first.
#[track_caller]
pub fn exits(out: std::process::Output, code: i32) -> std::process::Output {
    assert_eq!(out.status.code(), Some(code), "{}", shown(&out));
    out
}

/// `out`, once its command is known to have succeeded.
#[track_caller]
pub fn succeeded(out: std::process::Output) -> std::process::Output {
    exits(out, 0)
}

/// Polls `done` every 20 ms until it holds, failing the test with `what`
/// after `limit` (a bound far above the normal wait, not a schedule).
#[track_caller]
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `pid` runs (a zombie has ended: only its parent's reaping is left).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Processes whose working directory is inside `home` (the local
/// platform's apps and services run in their droplets and data directories
/// there).
pub fn processes_under(home: &std::path::Path) -> Vec<u32> {
    let Ok(home) = home.canonicalize() else {
        return Vec::new();
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| alive(*pid))
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&home))
        })
        .collect()
}

/// Stops the local platform whose home is `home`: a test's teardown, from a
/// `Drop`. A stop that fails, or leaves the daemon or any process of its
/// apps and services running, is a leak: it fails the test, or, when the
/// test is failing already (a second panic would abort the whole run), it
/// is printed loudly, pids and command lines included.
pub fn stop_platform(home: &std::path::Path) {
    let Some(problem) = stop_problem(home) else {
        return;
    };
    let message = format!(
        "LEAK: `bluegreen platform stop` of {}: {problem}",
        home.display()
    );
    if std::thread::panicking() {
        eprintln!("{message}");
    } else {
        panic!("{message}");
    }
}

fn stop_problem(home: &std::path::Path) -> Option<String> {
    let daemon: Option<u32> = std::fs::read(home.join("platform/daemon.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v["pid"].as_u64())
        .map(|p| p as u32);
    let out = match std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(["platform", "stop"])
        .env("BLUEGREEN_HOME", home)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(out) => out,
        Err(e) => return Some(format!("could not run it: {e}")),
    };
    if !out.status.success() {
        return Some(format!("it failed: {}", shown(&out)));
    }
    // `platform stop` waits for the daemon (up to its own 30 s, then
    // SIGKILL); what it stopped may take a moment longer to be reaped.
    // Bounded far above that moment.
    let left = || {
        let mut left: Vec<u32> = daemon.filter(|p| alive(*p)).into_iter().collect();
        left.extend(processes_under(home));
        left
    };
    let until = std::time::Instant::now() + Duration::from_secs(15);
    let mut still = left();
    while !still.is_empty() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
        still = left();
    }
    if still.is_empty() {
        return None;
    }
    let named: Vec<String> = still
        .iter()
        .map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let what = if Some(*pid) == daemon { "daemon " } else { "" };
            format!("{what}pid {pid} `{}`", cmdline.trim())
        })
        .collect();
    Some(format!(
        "it succeeded, yet 15 s later these still run: {}",
        named.join(", ")
    ))
}

/// The seed of a randomized test, printed with how to replay it when the
/// test fails: `BLUEGREEN_TEST_SEED` when set (to replay a failure), else
/// a fresh one. Keep it alive for the whole test: a panic while it lives
/// prints the seed.
pub struct Seed {
    pub value: u64,
    test: &'static str,
}

impl Seed {
    pub fn new(test: &'static str) -> Seed {
        let value = match std::env::var("BLUEGREEN_TEST_SEED") {
            Ok(s) => s.trim().parse().unwrap_or_else(|_| {
                panic!("BLUEGREEN_TEST_SEED={s}: not a number (a seed a failing test printed)")
            }),
            Err(_) => {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
                    | 1
            }
        };
        Seed { value, test }
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{}: failed with seed {seed}; replay it with \
                 BLUEGREEN_TEST_SEED={seed} cargo test --test it {}",
                self.test,
                self.test,
                seed = self.value
            );
        }
    }
}
