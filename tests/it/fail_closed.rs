//! Hardening round two, items 4 and 6: a bound service that is not up (and
//! ours) keeps its apps and tasks from starting, so its password never
//! reaches whoever took its port; and every process an app started dies
//! with a stop, a restart and `platform stop`, also those that left its
//! process group with `setsid` (in `escapees.rs`). Real daemon, real
//! PostgreSQL, real psql.

mod escapees;

use crate::deploy::{Fixture, text};
use crate::rails::{database_url, psql};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fake PostgreSQL on a port it took first: it answers every client's
/// startup with a request for the password in cleartext (as any server may,
/// and libpq before 16 obliges) and keeps every byte it receives.
struct Squatter {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    connections: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Squatter {
    fn start(port: u16) -> Squatter {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("taking port {port} before the platform: {e}"));
        let received = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (r, c, d) = (received.clone(), connections.clone(), done.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if d.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let bytes = ask_for_the_password(stream);
                r.lock().unwrap().extend(bytes);
            }
        });
        Squatter {
            port,
            received,
            connections,
            done,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<u8> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        self.done.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees `done`.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One client's session with the fake server (bounded by read timeouts).
fn ask_for_the_password(mut s: TcpStream) -> Vec<u8> {
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    let mut all = Vec::new();
    // SSL and GSS encryption requests are declined ('N'); the startup
    // message gets AuthenticationCleartextPassword ('R', length 8, code 3).
    for _ in 0..3 {
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).is_err() {
            return all;
        }
        let n = (u32::from_be_bytes(len) as usize).clamp(4, 10_000);
        let mut body = vec![0u8; n - 4];
        if s.read_exact(&mut body).is_err() {
            return all;
        }
        all.extend(len);
        all.extend(&body);
        let code = body
            .get(..4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()));
        if matches!(code, Some(80877103 | 80877104)) {
            let _ = s.write_all(b"N");
            continue;
        }
        let _ = s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]);
        break;
    }
    let mut rest = [0u8; 4096];
    while let Ok(n) = s.read(&mut rest) {
        if n == 0 {
            break;
        }
        all.extend(&rest[..n]);
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A deploy file whose app and migration both connect with psql first.
fn connecting_app(f: &Fixture) {
    let app = f.root.path().join("app");
    std::fs::write(
        app.join("Procfile"),
        "web: psql \"$DATABASE_URL\" -c 'select 1'; exec python3 app.py\n",
    )
    .unwrap();
    let yaml = format!(
        "app: shop\npath: app\nhealth: {{ path: /health, interval: 50ms, timeout: 10s }}\n\
         drain: 2s\nenv: {{ MIGRATION_LOG: {} }}\nservices: [shop-db]\n\
         migrate: {{ command: \"psql \\\"$DATABASE_URL\\\" -c 'select 1' && python3 migrate.py\", kind: sql }}\n",
        f.migration_log().display()
    );
    std::fs::write(&f.file, yaml).unwrap();
}

#[test]
fn defect_4_a_service_whose_port_was_taken_keeps_its_apps_from_starting_and_its_password_home() {
    let mut f = Fixture::new("");
    connecting_app(&f);
    let out = f.run(&[
        "platform", "service", "create", "shop-db", "--type", "postgres",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let url = database_url(&f, "shop-db");
    let password = url.split(':').nth(2).unwrap().split('@').next().unwrap();
    let port: u16 = url
        .split(':')
        .nth(3)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // Another program takes the port while the platform is down.
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
    let squatter = Squatter::start(port);
    f.start_platform();

    // The service says it is not running, and why.
    let out = f.run(&["platform", "service", "list", "--json"]);
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let service = &all[0];
    assert_eq!(service["state"], "stopped", "{service}");
    let problem = service["problem"].as_str().unwrap_or_default();
    assert!(problem.contains(&port.to_string()), "{problem}");

    // A deploy bound to it fails, naming the service, the port and the fix;
    // neither an app nor the migration ran.
    let out = f.deploy("v1");
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    for part in [
        "service shop-db",
        &format!("127.0.0.1:{port}"),
        "is not up",
        "Fix:",
    ] {
        assert!(said.contains(part), "`{part}` in {said}");
    }
    assert_eq!(f.migrations(), 0, "the migration did not run");
    let log = std::fs::read_to_string(f.home().join("platform/daemon.log")).unwrap_or_default();
    assert!(!log.contains(password), "the password is in no log");

    // Whatever reached the squatter, the password was not in it.
    let got = squatter.received();
    assert!(!contains(&got, password.as_bytes()), "{} bytes", got.len());
    assert_eq!(
        squatter.connections.load(Ordering::SeqCst),
        0,
        "nobody connected: {:?}",
        String::from_utf8_lossy(&got)
    );

    // The squatter does catch what a client sends it: psql itself, given
    // the URL, hands it the password (libpq before 16 cannot refuse).
    let leaked = std::process::Command::new("psql")
        .args([&url, "-c", "select 1"])
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .expect("psql runs");
    assert!(!leaked.status.success());
    if !url.contains("require_auth=") {
        assert!(contains(&squatter.received(), password.as_bytes()));
    }

    // Once the port is free again, a restart brings the service back and
    // the same deploy goes through: the check does not refuse the real one.
    drop(squatter);
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
    f.start_platform();
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v1");
    assert_eq!(psql(&url, "select 1"), "1");
    assert!(f.migrations() >= 1);
}
