//! Deploy timing and what the safeguards buy (`cargo bench --bench deploy`).
//!
//! One local platform, one app that takes `BOOT` to start answering, a load
//! of back-to-back requests through the route (fast ones and 300 ms ones).
//! - Overhead: `bluegreen deploy` wall time against the floor of any
//!   zero-downtime sequence, 2 × boot-to-healthy (measured on the bare app)
//!   + the time both drains took. Target: the runner adds ≤ 1 s.
//! - Safeguards: the same load during the naive cf recipe (unmap, push,
//!   restart, map at once: no drain, no probe of the color's own URL),
//!   counting failed requests against bluegreen's.
//! - Traffic analysis: a release failing 5% of its requests, deployed
//!   under the same load as canary steps and as plain blue-green: how many
//!   requests it served, and users saw fail, before it was rolled back.

use bluegreen::platform::client::CfClient;
use bluegreen::platform::{local, package};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BOOT: &str = "0.8";
const RUNS: usize = 3;

const APP: &str = r#"
import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
time.sleep(float(os.environ.get("BOOT", "0")))  # a real app's boot
FAIL = float(os.environ.get("FAIL_PERCENT", "0"))
import itertools, threading
SERVED, LOCK = itertools.count(1), threading.Lock()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(0.3)
        with LOCK:
            n = next(SERVED)
        status = 200
        if FAIL and self.path != "/health" and n % round(100 / FAIL) == 0:
            status = 500
        body = ("release %s\n" % os.environ.get("BLUEGREEN_RELEASE")).encode()
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn get(port: u16, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let req =
        format!("GET {path} HTTP/1.1\r\nhost: bench.apps.localhost\r\nconnection: close\r\n\r\n");
    let mut buf = String::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_string(&mut buf).is_ok()
        && buf.starts_with("HTTP/1.1 200")
}

/// Four clients (one asking for /slow) until stopped: (requests, failures).
fn load(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let (n, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let threads: Vec<_> = ["/slow", "/", "/", "/"]
            .into_iter()
            .map(|path| {
                let (stop, n, failed) = (stop.clone(), n.clone(), failed.clone());
                std::thread::spawn(move || {
                    let until = Instant::now() + Duration::from_secs(120);
                    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                        n.fetch_add(1, Ordering::SeqCst);
                        if !get(port, path) {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        (n.load(Ordering::SeqCst), failed.load(Ordering::SeqCst))
    })
}

/// Boot-to-healthy of the bare app: spawn it, poll every 10 ms.
fn boot_to_healthy(app: &Path) -> Duration {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let mut child = std::process::Command::new("python3")
        .arg(app.join("app.py"))
        .env("PORT", port.to_string())
        .env("BOOT", BOOT)
        .spawn()
        .unwrap();
    while !TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
        s.write_all(b"GET / HTTP/1.1\r\nconnection: close\r\n\r\n")
            .is_ok()
            && {
                let mut b = String::new();
                s.read_to_string(&mut b).is_ok() && b.starts_with("HTTP/1.1 200")
            }
    }) {
        assert!(t.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = t.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    took
}

fn deploy(home: &Path, file: &Path, release: &str) -> (Duration, Duration) {
    let t = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(["deploy", "--json", "--release", release, "-f"])
        .arg(file)
        .env("BLUEGREEN_HOME", home)
        .output()
        .unwrap();
    let wall = t.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let drains: f64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["step"] == "drain" && e["status"] == "done")
        .map(|e| e["duration_ms"].as_f64().unwrap())
        .sum();
    (wall, Duration::from_secs_f64(drains / 1e3))
}

/// The naive recipe on the same apps: per color unmap, push (stage), restart, map.
async fn naive(client: &CfClient, app_dir: &Path, release: &str) -> Duration {
    let t = Instant::now();
    let space = client
        .find_space(local::ORG_GUID, "local")
        .await
        .unwrap()
        .unwrap();
    let domain = client.find_domain(local::DOMAIN).await.unwrap().unwrap();
    let route = client
        .find_route(&domain.guid, &space.guid, "bench")
        .await
        .unwrap()
        .unwrap();
    for name in ["bench-blue", "bench-green"] {
        let app = client.find_app(&space.guid, name).await.unwrap().unwrap();
        client.unmap_route(&route.guid, &app.guid).await.unwrap();
        let pkg = client.create_package(&app.guid).await.unwrap();
        let wait = Duration::from_secs(60);
        client
            .upload_package(&pkg.guid, &package::zip_dir(app_dir).unwrap(), wait)
            .await
            .unwrap();
        let droplet = client.stage(&pkg.guid, wait).await.unwrap();
        let env = [("BLUEGREEN_RELEASE".to_string(), Some(release.to_string()))].into();
        client.set_env(&app.guid, &env).await.unwrap();
        client
            .set_current_droplet(&app.guid, &droplet)
            .await
            .unwrap();
        client.app_action(&app.guid, "restart").await.unwrap();
        client.map_route(&route.guid, &app.guid).await.unwrap();
    }
    t.elapsed()
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[tokio::main]
async fn main() {
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("app.py"), APP).unwrap();
    std::fs::write(app.join("Procfile"), "web: exec python3 app.py\n").unwrap();
    let file = work.path().join("bluegreen.yaml");
    std::fs::write(
        &file,
        format!(
            "app: bench\npath: app\nenv: {{ BOOT: \"{BOOT}\" }}\ndrain: 2s\n\
             health: {{ path: /health, interval: 50ms, timeout: 30s }}\n"
        ),
    )
    .unwrap();
    let home = work.path().join("home");
    let mut config = local::Config::new(&home);
    config.router_port = 0;
    config.grace = Duration::from_secs(2);
    let running = local::start(config).await.unwrap();
    let client = CfClient::with_token(&running.endpoint.api_url, &running.token);
    let port = running.endpoint.router_port;

    let boot = {
        let mut s: Vec<Duration> = (0..RUNS).map(|_| boot_to_healthy(&app)).collect();
        s.sort();
        s[RUNS / 2]
    };
    deploy(&home, &file, "warmup");

    println!(
        "deploy of an app that boots in {} (median of {RUNS} runs each)\n",
        secs(boot)
    );
    let mut overheads = Vec::new();
    let mut ours = (0, 0);
    for i in 0..RUNS {
        let stop = Arc::new(AtomicBool::new(false));
        let l = load(port, stop.clone());
        let (wall, drains) = deploy(&home, &file, &format!("r{i}"));
        stop.store(true, Ordering::SeqCst);
        let (n, failed) = l.join().unwrap();
        let floor = boot * 2 + drains;
        overheads.push((wall, floor));
        ours = (ours.0 + n, ours.1 + failed);
    }
    overheads.sort();
    let (wall, floor) = overheads[RUNS / 2];
    println!("bluegreen deploy wall time     {}", secs(wall));
    println!("  floor: 2 × boot-to-healthy + drains {}", secs(floor));
    println!(
        "  runner adds                  {} (target ≤ 1 s)",
        secs(wall.saturating_sub(floor))
    );

    let mut naive_result = (0, 0);
    let mut naive_wall = Vec::new();
    for i in 0..RUNS {
        let stop = Arc::new(AtomicBool::new(false));
        let l = load(port, stop.clone());
        naive_wall.push(naive(&client, &app, &format!("n{i}")).await);
        // Let the load see the colors the naive recipe left booting.
        tokio::time::sleep(boot * 2).await;
        stop.store(true, Ordering::SeqCst);
        let (n, failed) = l.join().unwrap();
        naive_result = (naive_result.0 + n, naive_result.1 + failed);
        // Both colors up again before the next run.
        tokio::time::sleep(boot * 2).await;
    }
    naive_wall.sort();
    println!("\nfailed requests under load through the route ({RUNS} deploys each):");
    println!("  bluegreen deploy   {:>5} of {:>6}", ours.1, ours.0);
    println!(
        "  naive recipe       {:>5} of {:>6}   (unmap, push, restart, map; wall {})",
        naive_result.1,
        naive_result.0,
        secs(naive_wall[RUNS / 2])
    );

    // A bad release, judged on live traffic: the analysis closes its
    // window after 100 requests to the new release.
    println!("\na release failing 5% of its requests, under the same load ({RUNS} deploys each):");
    for (name, strategy) in [
        (
            "canary [10, 50, 100]",
            "strategy: canary\nsteps: [10, 50, 100]\n",
        ),
        ("blue-green", ""),
    ] {
        std::fs::write(
            &file,
            format!(
                "app: bench\npath: app\nenv: {{ BOOT: \"{BOOT}\", FAIL_PERCENT: \"5\" }}\n\
                 drain: 2s\nhealth: {{ path: /health, interval: 50ms, timeout: 30s }}\n\
                 analysis: {{ duration: 60s, min_requests: 100 }}\n{strategy}"
            ),
        )
        .unwrap();
        let (mut served, mut bad, mut seen, mut total, mut walls) = (0, 0, 0, 0, Vec::new());
        for i in 0..RUNS {
            let stop = Arc::new(AtomicBool::new(false));
            let l = load(port, stop.clone());
            let t = Instant::now();
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
                .args(["deploy", "--json", "--release", &format!("bad{i}"), "-f"])
                .arg(&file)
                .env("BLUEGREEN_HOME", &home)
                .output()
                .unwrap();
            walls.push(t.elapsed());
            stop.store(true, Ordering::SeqCst);
            let (n, failed) = l.join().unwrap();
            assert_eq!(
                out.status.code(),
                Some(1),
                "the bad release must be rolled back: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let judged = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|e| e["event"] == "analysis")
                .expect("an analysis event");
            let c = &judged["window"]["candidate"];
            served += c["requests"].as_u64().unwrap();
            bad += c["status_5xx"].as_u64().unwrap();
            seen += failed;
            total += n;
        }
        walls.sort();
        println!(
            "  {name:<22} it served {served:>4} requests ({bad} failed) before the rollback; \
             users saw {seen} of {total} fail; deploy to rollback done {}",
            secs(walls[RUNS / 2])
        );
    }
    running.shutdown().await;
}
