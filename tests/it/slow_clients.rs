//! Slow clients and silent apps against the router («12 · Hardening, round
//! two», item 2): hundreds of stalled heads and bodies at the connection cap
//! while ordinary requests keep a p99 under 100 ms; a body that stops
//! arriving gets a 408, an app that never answers a 504, and neither holds
//! its connection past its limit.

use crate::platform::push;
use bluegreen::platform::client::CfClient;
use bluegreen::platform::local::{self, Config, RouterLimits, Running};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `/` answers at once, `/hang` never.
const APP: &str = r#"
import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/hang":
            time.sleep(300)
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    do_POST = do_GET
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

const HOST: &str = "slow.apps.localhost";

async fn platform(
    home: &std::path::Path,
    limits: RouterLimits,
) -> (Running, CfClient, u16, String) {
    with_limits(home, limits, "slow", APP).await
}

/// A local platform whose router has `limits`, running the Python app
/// `app_py` as `name`: the platform, a client, the router's port and the
/// app's guid.
pub async fn with_limits(
    home: &std::path::Path,
    limits: RouterLimits,
    name: &str,
    app_py: &str,
) -> (Running, CfClient, u16, String) {
    let mut config = Config::new(home);
    config.router_port = 0;
    config.grace = Duration::from_secs(2);
    config.router_limits = limits;
    let running = local::start(config).await.expect("local platform starts");
    let client = CfClient::with_token(&running.endpoint.api_url, &running.token);
    let dir = home.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.py"), app_py).unwrap();
    std::fs::write(dir.join("Procfile"), "web: exec python3 app.py\n").unwrap();
    let guid = push(&client, name, &dir, "1").await;
    crate::platform::route_to(&client, name, &guid).await;
    let port = running.endpoint.router_port;
    (running, client, port, guid)
}

/// The first answer's status line on `s`, or what ended it.
fn status_of(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(2).any(|w| w == b"\r\n") {
        match s.read(&mut chunk) {
            Ok(0) => return "closed".into(),
            Err(e) => return format!("error: {e}"),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&got[..12]).into_owned()
}

/// One ordinary request on a new connection; its status and time.
fn ordinary(port: u16) -> (String, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    (status_of(&mut s), started.elapsed())
}

#[tokio::test(flavor = "multi_thread")]
async fn defect_12_2_stalled_heads_and_bodies_never_starve_fresh_clients() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = 200;
    let limits = RouterLimits {
        max_connections: cap,
        ..RouterLimits::default()
    };
    let (running, _, port, _) = platform(tmp.path(), limits).await;
    let (times, closed, stalled) = tokio::task::spawn_blocking(move || {
        // Three stalled connections per slot: heads cut off midway and
        // bodies announced but never sent, all from this one address.
        let mut stalls = Vec::new();
        for i in 0..cap * 3 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let bytes = if i % 2 == 0 {
                format!("GET / HTTP/1.1\r\nHost: {HOST}\r\nX-Slow: ")
            } else {
                format!("POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 10\r\n\r\n")
            };
            s.write_all(bytes.as_bytes()).unwrap();
            stalls.push(s);
        }
        // Ordinary clients while the stalls hold (or held) every slot.
        let mut times = Vec::new();
        for _ in 0..200 {
            let (status, took) = ordinary(port);
            assert_eq!(status, "HTTP/1.1 200", "an ordinary request at the cap");
            times.push(took);
        }
        // The router closed stalled connections to make room: the oldest.
        let mut closed = 0;
        for s in &mut stalls {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
            let mut b = [0u8; 64];
            // Closed: end of stream or a reset; still open: the read times
            // out (WouldBlock).
            match s.read(&mut b) {
                Ok(_) => closed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
                Err(_) => {}
            }
        }
        (times, closed, stalls.len())
    })
    .await
    .unwrap();
    running.shutdown().await;
    let mut sorted = times.clone();
    sorted.sort();
    let p99 = sorted[sorted.len() * 99 / 100 - 1];
    let p50 = sorted[sorted.len() / 2];
    eprintln!(
        "slowloris: {stalled} stalled connections at a cap of {cap}; {} ordinary requests: \
         p50 {p50:?}, p99 {p99:?}; {closed} stalled connections closed by the router",
        times.len()
    );
    // A few ms when measured. What it guards against is an ordinary
    // request waiting for a slot until a stall's header timeout (5 s) frees
    // one: the bound is far below that, and far above the few ms a loaded
    // machine may stretch.
    assert!(p99 < Duration::from_secs(1), "p99 {p99:?} at the cap");
    assert!(
        closed >= stalled - cap,
        "only {closed} of {stalled} stalled connections were closed at a cap of {cap}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn defect_12_2_a_stalled_body_gets_408_and_a_silent_app_504_each_within_its_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = RouterLimits {
        body_timeout: Duration::from_secs(1),
        first_byte_timeout: Duration::from_secs(1),
        ..RouterLimits::default()
    };
    let (running, client, port, guid) = platform(tmp.path(), limits).await;
    let before = client.traffic(&guid).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let timed = |req: String| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let started = Instant::now();
            s.write_all(req.as_bytes()).unwrap();
            (status_of(&mut s), started.elapsed())
        };
        let (status, took) = timed(format!(
            "POST / HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 10\r\n\r\nabc"
        ));
        assert_eq!(status, "HTTP/1.1 408", "a body that stops arriving");
        assert!(took < Duration::from_secs(10), "408 after {took:?}");
        let (status, took) = timed(format!("GET /hang HTTP/1.1\r\nHost: {HOST}\r\n\r\n"));
        assert_eq!(status, "HTTP/1.1 504", "an app that never answers");
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(10),
            "504 after {took:?}"
        );
    })
    .await
    .unwrap();
    let after = client.traffic(&guid).await.unwrap();
    running.shutdown().await;
    assert_eq!(
        (
            after.status[3] - before.status[3],
            after.status[4] - before.status[4]
        ),
        (0, 1),
        "the 504 counts against the app; the client's 408 does not"
    );
}

/// Answers 200 with `healthy` and then chunks without end, until the
/// reader goes away; returns its URL and the bytes it got to write.
fn endless_body() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = written.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
            let mut head = [0u8; 4096];
            let _ = s.read(&mut head);
            let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
            let first = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\nhealthy \r\n";
            if s.write_all(first.as_bytes()).is_err() {
                continue;
            }
            // Bounded: 2 GiB at most, far past any cap.
            for _ in 0..(2 << 30) / chunk.len() {
                if s.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
                counter.fetch_add(chunk.len(), Ordering::SeqCst);
            }
        }
    });
    (url, written)
}

#[tokio::test]
async fn defect_12_3_the_health_probe_reads_a_bounded_part_of_an_endless_body() {
    let (url, written) = endless_body();
    let health = bluegreen::config::Health {
        path: "/health".into(),
        body: Some("healthy".into()),
        request_timeout: Duration::from_secs(20),
        ..bluegreen::config::Health::default()
    };
    let started = Instant::now();
    let deadline = started + Duration::from_secs(30);
    let probed = bluegreen::deploy::health::probe(&url, &health, deadline).await;
    let took = started.elapsed();
    let sent = written.load(std::sync::atomic::Ordering::SeqCst);
    eprintln!("health probe on an endless body: {took:?}, {sent} bytes written by the app");
    assert!(probed.is_ok(), "{probed:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(sent < 64 << 20, "the probe kept reading: {sent} bytes");
}

/// Writes the port it was given to `$PORT_FILE` and never listens: the
/// port is free for someone else to take.
const SQUATTED: &str = r#"
import os, time
with open(os.environ["PORT_FILE"], "w") as f:
    f.write(os.environ["PORT"])
time.sleep(300)
"#;

#[tokio::test(flavor = "multi_thread")]
async fn defect_12_3_a_port_someone_else_took_first_is_never_ready_nor_routed() {
    use bluegreen::platform::package;
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = crate::platform::start(tmp.path()).await;
    let dir = tmp.path().join("squatted");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.py"), SQUATTED).unwrap();
    std::fs::write(dir.join("Procfile"), "web: exec python3 app.py\n").unwrap();
    let port_file = tmp.path().join("port");
    let space = client
        .find_space(&crate::platform::local_org(&client).await, "local")
        .await;
    let space = space.unwrap().unwrap();
    let env = [("PORT_FILE".to_string(), port_file.display().to_string())].into();
    let app = client
        .create_app(&space.guid, "squatted", &env)
        .await
        .unwrap();
    let pkg = client.create_package(&app.guid).await.unwrap();
    let wait = Duration::from_secs(20);
    let zip = package::zip_dir(&dir).unwrap();
    client.upload_package(&pkg.guid, &zip, wait).await.unwrap();
    let droplet = client.stage(&pkg.guid, wait).await.unwrap();
    client
        .set_current_droplet(&app.guid, &droplet)
        .await
        .unwrap();
    client.app_action(&app.guid, "start").await.unwrap();
    crate::platform::route_to(&client, "squatted", &app.guid).await;

    // Another process (this test) takes the app's port before the app:
    // once the file holds the whole number.
    let until = Instant::now() + Duration::from_secs(20);
    let port: u16 = loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.parse().ok())
        {
            break port;
        }
        assert!(Instant::now() < until, "the app never wrote its port");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    squatter.set_nonblocking(true).unwrap();

    // It would pass a connect check at once; it must not make the
    // instance ready or get the route's requests. Wait for the readiness
    // check to have seen the squatter (it says so in the app's log).
    let logs_dir = tmp.path().join("platform").join("logs");
    let read_logs = || {
        std::fs::read_dir(&logs_dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
            .collect::<String>()
    };
    let refused = "is held by a process that is not this instance's";
    let until = Instant::now() + Duration::from_secs(20);
    while !read_logs().contains(refused) {
        assert!(
            Instant::now() < until,
            "the readiness check never named the squatter: {}",
            read_logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = client.process_stats(&app.guid).await.unwrap();
    assert!(
        stats.iter().all(|s| s.state != "RUNNING"),
        "a port held by another process made the instance ready: {stats:?}"
    );
    let router = running.endpoint.router_port;
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(("127.0.0.1", router)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = "GET / HTTP/1.1\r\nHost: squatted.apps.localhost\r\nConnection: close\r\n\r\n";
        s.write_all(req.as_bytes()).unwrap();
        status_of(&mut s)
    })
    .await
    .unwrap();
    assert_eq!(
        answer, "HTTP/1.1 503",
        "the route is not served by the squatter"
    );
    assert!(
        squatter.accept().is_err(),
        "the squatter got a connection (the probe or a routed request)"
    );
    running.shutdown().await;
}
