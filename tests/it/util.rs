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
pub fn build_new_plugin(project: &std::path::Path) -> std::process::Output {
    std::process::Command::new(project.join("build"))
        .env(
            "CARGO_TARGET_DIR",
            PathBuf::from(env!("BLUEGREEN_BUILT_PLUGINS")).join("../plugins-build"),
        )
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
    let result = std::process::Command::new(&script)
        .arg(&out)
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
