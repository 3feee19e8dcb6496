//! The Rails story measured (`cargo bench --bench rails`), on the real
//! example app, a real PostgreSQL service and the local platform, all run
//! through the `bluegreen` binary as users run it.
//!
//! - What the guard prevents: four clients write and read the database
//!   through the route while the destructive release is forced through
//!   (`--allow remove-column`); its failed requests against the
//!   expand/contract path (v1 → v2 → v3) under the same load.
//! - The Rails deploy's wall time against the floor: 2 × boot-to-healthy +
//!   drains + the migrations' own time (target: the runner adds ≤ 1 s).
//!   Both sides are measured on an idle machine: under the writers' load the
//!   2 cores are shared by puma, PostgreSQL and the load itself, which slows
//!   boot and migration alike (the under-load wall time is printed too).
//! - Uploading a 200 MB app: throughput and the daemon's peak RSS.

use bluegreen::platform::{local, package};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const RUNS: usize = 3;
const CLIENTS: usize = 4;

fn bluegreen(home: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(args)
        .env("BLUEGREEN_HOME", home)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bluegreen {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn step_ms(ev: &[Value], kind: &str) -> f64 {
    ev.iter()
        .filter(|e| e["event"] == "step" && e["status"] == "done" && e["step"] == kind)
        .map(|e| e["duration_ms"].as_f64().unwrap())
        .sum()
}

fn post(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = "POST /products HTTP/1.1\r\nhost: rails-app.apps.localhost\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
    let mut buf = String::new();
    s.write_all(req.as_bytes()).is_ok()
        && s.read_to_string(&mut buf).is_ok()
        && buf.starts_with("HTTP/1.1 201")
}

/// `CLIENTS` writers through the route until stopped: (requests, failures).
fn load(port: u16, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(usize, usize)> {
    std::thread::spawn(move || {
        let (n, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let (stop, n, failed) = (stop.clone(), n.clone(), failed.clone());
                std::thread::spawn(move || {
                    let until = Instant::now() + Duration::from_secs(300);
                    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                        n.fetch_add(1, Ordering::SeqCst);
                        if !post(port) {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        (n.load(Ordering::SeqCst), failed.load(Ordering::SeqCst))
    })
}

/// A copy of the example with the guard, on a platform of its own.
struct Site {
    _work: tempfile::TempDir,
    home: PathBuf,
    app: PathBuf,
    file: String,
    port: u16,
}

impl Site {
    fn new() -> Site {
        let work = tempfile::tempdir().unwrap();
        let app = work.path().join("app");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/rails-app");
        assert!(
            Command::new("cp")
                .arg("-r")
                .arg(&src)
                .arg(&app)
                .status()
                .unwrap()
                .success()
        );
        std::fs::copy(
            Path::new(env!("BLUEGREEN_BUILT_PLUGINS")).join("migration-guard.wasm"),
            app.join("plugins/migration-guard.wasm"),
        )
        .unwrap();
        let home = work.path().join("home");
        bluegreen(&home, &["platform", "start", "--router-port", "0"]);
        let endpoint: Value =
            serde_json::from_slice(&std::fs::read(home.join("platform/daemon.json")).unwrap())
                .unwrap();
        let file = app.join("bluegreen.yaml").display().to_string();
        Site {
            port: endpoint["router_port"].as_u64().unwrap() as u16,
            _work: work,
            home,
            app,
            file,
        }
    }

    fn overlay(&self, release: &str) {
        let src = self.app.join("releases").join(release);
        assert!(
            Command::new("cp")
                .arg("-r")
                .arg(format!("{}/.", src.display()))
                .arg(&self.app)
                .status()
                .unwrap()
                .success()
        );
    }

    /// Deploys with nothing else running: (wall time, events).
    fn deploy_idle(&self, release: &str) -> (Duration, Vec<Value>) {
        let t = Instant::now();
        let out = bluegreen(
            &self.home,
            &["deploy", "--json", "--release", release, "-f", &self.file],
        );
        (t.elapsed(), events(&out))
    }

    /// Deploys under load: (wall time, events, requests, failures).
    fn deploy_under_load(
        &self,
        release: &str,
        extra: &[&str],
    ) -> (Duration, Vec<Value>, usize, usize) {
        let stop = Arc::new(AtomicBool::new(false));
        let l = load(self.port, stop.clone());
        std::thread::sleep(Duration::from_millis(500));
        let mut args = vec!["deploy", "--json", "--release", release, "-f", &self.file];
        args.extend_from_slice(extra);
        let t = Instant::now();
        let out = bluegreen(&self.home, &args);
        let wall = t.elapsed();
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::SeqCst);
        let (n, failed) = l.join().unwrap();
        (wall, events(&out), n, failed)
    }

    fn database_url(&self) -> String {
        let out = bluegreen(&self.home, &["platform", "service", "list", "--json"]);
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        all[0]["credentials"]["uri"].as_str().unwrap().to_string()
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(["platform", "stop"])
            .env("BLUEGREEN_HOME", &self.home)
            .output();
    }
}

/// The app started by hand on its database: boot until `/up` answers ok.
fn boot_to_healthy(site: &Site) -> Duration {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Instant::now();
    let mut child = Command::new("puma")
        .args([
            "-b",
            &format!("tcp://127.0.0.1:{port}"),
            "-t",
            "4:16",
            "config.ru",
        ])
        .current_dir(&site.app)
        .env("DATABASE_URL", site.database_url())
        .env("RAILS_ENV", "production")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    loop {
        let ok = TcpStream::connect(("127.0.0.1", port)).is_ok_and(|mut s| {
            let mut b = String::new();
            s.write_all(b"GET /up HTTP/1.1\r\nconnection: close\r\n\r\n")
                .is_ok()
                && s.read_to_string(&mut b).is_ok()
                && b.starts_with("HTTP/1.1 200")
        });
        if ok {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "puma did not boot");
        std::thread::sleep(Duration::from_millis(10));
    }
    let took = t.elapsed();
    child.kill().unwrap();
    child.wait().unwrap();
    took
}

/// `bin/rails db:migrate` with nothing pending: the migration's own floor.
fn migrate_noop(site: &Site) -> Duration {
    let t = Instant::now();
    let out = Command::new("bin/rails")
        .arg("db:migrate")
        .current_dir(&site.app)
        .env("DATABASE_URL", site.database_url())
        .env("RAILS_ENV", "production")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `a - b`, negative when the deploy beat the floor.
fn diff(a: Duration, b: Duration) -> String {
    format!("{:+.2} s", a.as_secs_f64() - b.as_secs_f64())
}

fn guard_and_timing() {
    println!("== what the guard prevents ({CLIENTS} clients, POST /products: insert + count)");
    let (mut forced, mut safe) = ((0, 0), (0, 0));
    for i in 0..RUNS {
        let site = Site::new();
        bluegreen(&site.home, &["deploy", "--release", "v1", "-f", &site.file]);
        site.overlay("destructive");
        let (_, _, n, failed) = site.deploy_under_load(
            &format!("d{i}"),
            &["--allow", "remove-column", "--reason", "benchmark"],
        );
        forced = (forced.0 + n, forced.1 + failed);
    }
    let mut loaded_walls = Vec::new();
    let site = Site::new();
    bluegreen(&site.home, &["deploy", "--release", "v1", "-f", &site.file]);
    for release in ["v2", "v3"] {
        site.overlay(release);
        let (wall, _, n, failed) = site.deploy_under_load(release, &[]);
        safe = (safe.0 + n, safe.1 + failed);
        loaded_walls.push(wall);
    }
    println!(
        "  forced destructive release (--allow remove-column), {RUNS} deploys: {:>5} of {:>6} failed",
        forced.1, forced.0
    );
    println!(
        "  expand/contract (v1 -> v2 -> v3), 2 deploys:                {:>5} of {:>6} failed",
        safe.1, safe.0
    );

    println!(
        "\n== the Rails deploy's wall time (median of {RUNS} each, v3 redeployed, idle machine)"
    );
    let boot = median((0..RUNS).map(|_| boot_to_healthy(&site)).collect());
    let migrate = median((0..RUNS).map(|_| migrate_noop(&site)).collect());
    let mut runs = Vec::new();
    for i in 0..RUNS {
        let (wall, ev) = site.deploy_idle(&format!("v3.{i}"));
        let drains = Duration::from_secs_f64(step_ms(&ev, "drain") / 1e3);
        runs.push((wall, drains));
    }
    runs.sort();
    let (wall, drains) = runs[RUNS / 2];
    // Expand and contract: the migrate command runs twice per deploy.
    let floor = boot * 2 + drains + migrate * 2;
    // The first color boots while its migration runs, so the true floor
    // counts the longer of the two once.
    let tight = boot.max(migrate) + boot + drains + migrate;
    println!("  puma boot to /up ok            {}", secs(boot));
    println!("  bin/rails db:migrate (no-op)   {}", secs(migrate));
    println!("  bluegreen deploy wall time     {}", secs(wall));
    println!(
        "  floor 2 x boot + drains + 2 x migrate          {}  -> runner adds {}",
        secs(floor),
        diff(wall, floor)
    );
    println!(
        "  floor with the first boot overlapping migrate  {}  -> runner adds {} (target <= 1 s)",
        secs(tight),
        diff(wall, tight)
    );
    println!(
        "  under the {CLIENTS} writers' load: v2 {}, v3 {} (boot and migrations share the 2 cores)",
        secs(loaded_walls[0]),
        secs(loaded_walls[1])
    );
}

fn vm_hwm(pid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
        * 1024
}

async fn upload() {
    println!("\n== uploading a 200 MB app (incompressible), median of {RUNS}");
    let work = tempfile::tempdir().unwrap();
    let app = work.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    let mut src = std::fs::File::open("/dev/urandom").unwrap().take(200 << 20);
    std::io::copy(
        &mut src,
        &mut std::fs::File::create(app.join("assets.bin")).unwrap(),
    )
    .unwrap();
    std::fs::write(
        app.join("Procfile"),
        "web: exec python3 -m http.server $PORT\n",
    )
    .unwrap();
    let home = work.path().join("home");
    bluegreen(&home, &["platform", "start", "--router-port", "0"]);
    let dir = home.join("platform");
    let (endpoint, client) = local::connect(&dir).await.unwrap();
    let space = client
        .find_space(local::ORG_GUID, "local")
        .await
        .unwrap()
        .unwrap();
    let target = client
        .create_app(&space.guid, "big", &Default::default())
        .await
        .unwrap();
    let rss_before = vm_hwm(endpoint.pid.into());
    let (mut zips, mut uploads, mut stages) = (Vec::new(), Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        let zipped = package::zip_dir(&app).unwrap();
        zips.push(t.elapsed());
        size = zipped.size;
        let pkg = client.create_package(&target.guid).await.unwrap();
        let t = Instant::now();
        client
            .upload_package(&pkg.guid, &zipped, Duration::from_secs(300))
            .await
            .unwrap();
        uploads.push(t.elapsed());
        let t = Instant::now();
        client
            .stage(&pkg.guid, Duration::from_secs(300))
            .await
            .unwrap();
        stages.push(t.elapsed());
    }
    let rss_after = vm_hwm(endpoint.pid.into());
    let mb = size as f64 / (1 << 20) as f64;
    let up = median(uploads);
    println!("  zip on the client      {}", secs(median(zips)));
    println!(
        "  upload ({mb:.0} MB)       {}  = {:.0} MB/s",
        secs(up),
        mb / up.as_secs_f64()
    );
    println!("  staging (unzip)        {}", secs(median(stages)));
    println!(
        "  daemon peak RSS        {} MB before, {} MB after {RUNS} uploads (+{} MB; budget 64 MB)",
        rss_before >> 20,
        rss_after >> 20,
        (rss_after.saturating_sub(rss_before)) >> 20
    );
    bluegreen(&home, &["platform", "stop"]);
}

#[tokio::main]
async fn main() {
    upload().await;
    guard_and_timing();
}
