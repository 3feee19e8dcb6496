//! Router throughput and latency with keep-alive, side by side in one run:
//! the same small upstream reached directly, through the local platform's
//! router, and through nginx as a reverse proxy, all loaded by `wrk`; and
//! the router once more without its traffic counters, for what the
//! analysis of deploys costs it. Run with `benches/router.sh` (installs nginx and wrk first).
//!
//! Fair by construction: both proxies get every core (nginx
//! `worker_processes auto`, the router a tokio worker per core), keep-alive
//! on both sides without a per-connection request cap, the same forwarded
//! headers; rounds interleaved; wrk's socket errors, timeouts and error
//! statuses counted as failures.
//!
//! Targets: router >= 1.0x nginx's throughput; p99 added latency <= 1 ms
//! (router p99 minus direct p99), medians over the rounds.

use bluegreen::platform::client::CfClient;
use bluegreen::platform::{local, package};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

const BODY: &[u8] = b"hello from upstream\n";

/// `--serve-upstream`: this binary as the app, a minimal keep-alive server.
fn serve_upstream(port: u16) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(BODY)),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// wrk's failure counts for one run: socket errors, timeouts and responses
/// outside 2xx/3xx.
#[derive(Default, Clone, Copy)]
struct Failures {
    connect: u64,
    read: u64,
    write: u64,
    timeout: u64,
    non_2xx: u64,
}

impl Failures {
    fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.timeout + self.non_2xx
    }
}

impl std::fmt::Display for Failures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "connect {}, read {}, write {}, timeout {}, non-2xx/3xx {}",
            self.connect, self.read, self.write, self.timeout, self.non_2xx
        )
    }
}

#[derive(Clone, Copy)]
struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: Failures,
}

fn wrk(url: &str, host: Option<&str>, secs: u64) -> Load {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c32", &format!("-d{secs}s"), "--latency"]);
    if let Some(h) = host {
        cmd.args(["-H", &format!("Host: {h}")]);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk (run benches/router.sh, which installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "wrk failed ({}):\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |prefix: &str| {
        text.lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(prefix))
    };
    let field = |prefix: &str| -> f64 {
        let line = line(prefix).unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"));
        let v = line.split_whitespace().nth(1).unwrap();
        let (num, unit) = v.split_at(v.find(|c: char| c.is_alphabetic()).unwrap_or(v.len()));
        let n: f64 = num.parse().unwrap();
        match unit {
            "us" => n / 1000.0,
            "ms" | "" => n,
            "s" => n * 1000.0,
            _ => panic!("unit {unit}"),
        }
    };
    // "Socket errors: connect 0, read 0, write 0, timeout 0" and
    // "Non-2xx or 3xx responses: 12" appear only when non-zero.
    let mut failures = Failures::default();
    if let Some(l) = line("Socket errors:") {
        for part in l.trim_start_matches("Socket errors:").split(',') {
            let mut words = part.split_whitespace();
            let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                panic!("unreadable `{l}`");
            };
            let n: u64 = n.parse().unwrap_or_else(|_| panic!("unreadable `{l}`"));
            match kind {
                "connect" => failures.connect = n,
                "read" => failures.read = n,
                "write" => failures.write = n,
                "timeout" => failures.timeout = n,
                _ => panic!("unknown socket error kind in `{l}`"),
            }
        }
    }
    if let Some(l) = line("Non-2xx or 3xx responses:") {
        failures.non_2xx = l.rsplit(' ').next().unwrap().parse().unwrap();
    }
    Load {
        rps: field("Requests/sec:"),
        p50_ms: field("50%"),
        p99_ms: field("99%"),
        failures,
    }
}

/// Waits (bounded) until `port` accepts a connection.
fn wait_accepting(what: &str, port: u16) {
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "{what} on port {port} did not accept within 10s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-upstream") {
        let port = std::env::var("PORT")
            .ok()
            .or_else(|| args.get(i + 1).cloned())
            .unwrap()
            .parse()
            .unwrap();
        return serve_upstream(port);
    }
    let tmp = tempfile::tempdir().unwrap();
    // Same cores for both proxies: nginx with `worker_processes auto` runs a
    // worker per core, the router a tokio worker per core; nothing is
    // pinned, so wrk, the upstream and the proxy share every core.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .unwrap();
    // The router twice, with and without the traffic counters deploys
    // analyze, each in front of its own copy of the upstream.
    let (running, upstream_port) = rt.block_on(platform(&tmp.path().join("on"), true));
    let (bare, _) = rt.block_on(platform(&tmp.path().join("off"), false));

    let nginx_dir = tmp.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir).unwrap();
    let nginx_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        nginx_dir.join("nginx.conf"),
        format!(
            // The same work as the router: keep-alive both sides (no cap on
            // requests per connection, as hyper has none), Host passed on,
            // X-Forwarded-* set.
            "worker_processes auto; daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 1000000;
  upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{nginx_port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme; proxy_set_header X-Forwarded-Host $host; }} }} }}",
            dir = nginx_dir.display()
        ),
    )
    .unwrap();
    let nginx = Nginx(
        Command::new("nginx")
            .args([
                "-c",
                &nginx_dir.join("nginx.conf").display().to_string(),
                "-p",
                &nginx_dir.display().to_string(),
            ])
            // A group of its own: stopping it reaches the workers too.
            .process_group(0)
            .spawn()
            .expect("nginx (run benches/router.sh, which installs it)"),
    );
    wait_accepting("nginx", nginx_port);
    wait_accepting("the router", running.endpoint.router_port);
    wait_accepting("the router without counters", bare.endpoint.router_port);
    wait_accepting("the upstream", upstream_port);

    // Interleaved rounds, the order rotated each round, so a burst of load
    // from elsewhere on the machine does not land on one side only.
    let rounds = env_or("ROUTER_BENCH_ROUNDS", 3).max(1) as usize;
    let secs = env_or("ROUTER_BENCH_SECS", 8).max(1);
    let direct_url = format!("http://127.0.0.1:{upstream_port}/");
    let router_url = format!("http://127.0.0.1:{}/", running.endpoint.router_port);
    let nginx_url = format!("http://127.0.0.1:{nginx_port}/");
    let bare_url = format!("http://127.0.0.1:{}/", bare.endpoint.router_port);
    let mut runs: [Vec<Load>; 4] = Default::default();
    for round in 0..rounds {
        for k in 0..4 {
            let which = (round + k) % 4;
            let load = match which {
                0 => wrk(&direct_url, None, secs),
                1 => wrk(&router_url, Some("bench.apps.localhost"), secs),
                2 => wrk(&nginx_url, None, secs),
                _ => wrk(&bare_url, Some("bench.apps.localhost"), secs),
            };
            runs[which].push(load);
        }
    }
    drop(nginx);
    rt.block_on(running.shutdown());
    rt.block_on(bare.shutdown());

    report(&runs, rounds, secs, cores);
}

/// nginx's master, in a process group of its own; dropping it (also when a
/// run panics) stops the whole group.
struct Nginx(std::process::Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: the master stops its workers and exits; the group gets
        // SIGKILL if that takes more than five seconds. Killing only the
        // master left its workers running.
        let group = -(self.0.id() as i32);
        // SAFETY: signalling the process group this bench started.
        unsafe { libc::kill(group, libc::SIGQUIT) };
        let until = Instant::now() + Duration::from_secs(5);
        while self.0.try_wait().ok().flatten().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        // SAFETY: as above; whatever is left of the group goes.
        unsafe { libc::kill(group, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

const NAMES: [&str; 4] = [
    "direct to app",
    "bluegreen router",
    "nginx reverse proxy",
    "router, no counters",
];

/// A local platform in `home` running the upstream as app `bench`; the
/// router counts traffic when `metrics`. Returns it and the app's port.
async fn platform(home: &std::path::Path, metrics: bool) -> (local::Running, u16) {
    let mut config = local::Config::new(home);
    config.router_port = 0;
    config.router_metrics = metrics;
    let running = local::start(config).await.unwrap();
    let client = CfClient::with_token(&running.endpoint.api_url, &running.token);
    let app_dir = home.join("app");
    std::fs::create_dir_all(&app_dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    std::fs::write(
        app_dir.join("Procfile"),
        format!("web: exec {} --serve-upstream\n", exe.display()),
    )
    .unwrap();
    let space = client
        .find_space(local::ORG_GUID, "local")
        .await
        .unwrap()
        .unwrap();
    let app = client
        .create_app(&space.guid, "bench", &Default::default())
        .await
        .unwrap();
    let pkg = client.create_package(&app.guid).await.unwrap();
    client
        .upload_package(
            &pkg.guid,
            &package::zip_dir(&app_dir).unwrap(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let droplet = client
        .stage(&pkg.guid, Duration::from_secs(10))
        .await
        .unwrap();
    client
        .set_current_droplet(&app.guid, &droplet)
        .await
        .unwrap();
    client.app_action(&app.guid, "start").await.unwrap();
    // An app has no route of its own (as on CF): `bench` is the route wrk asks for.
    let domain = client.find_domain(local::DOMAIN).await.unwrap().unwrap();
    let route = client
        .create_route(&domain.guid, &space.guid, "bench")
        .await
        .unwrap();
    client.map_route(&route.guid, &app.guid).await.unwrap();
    let until = Instant::now() + Duration::from_secs(30);
    let port = loop {
        let stats = client.process_stats(&app.guid).await.unwrap();
        if let Some(s) = stats.iter().find(|s| s.state == "RUNNING") {
            break s.instance_ports[0].internal;
        }
        assert!(
            Instant::now() < until,
            "the upstream app did not start in 30s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (running, port)
}

fn report(runs: &[Vec<Load>; 4], rounds: usize, secs: u64, cores: usize) {
    println!(
        "router benchmark: wrk -t2 -c32 -d{secs}s, keep-alive, {rounds} interleaved rounds, medians"
    );
    println!(
        "  cores: {cores}, shared by wrk, the upstream (1 thread) and the proxy; nginx \
         worker_processes auto ({cores} workers), router {cores} tokio workers; nothing pinned"
    );
    println!(
        "  {:<22} {:>10} {:>9} {:>9}  req/s per round",
        "", "req/s", "p50 ms", "p99 ms"
    );
    let mut med = Vec::new();
    for (name, r) in NAMES.iter().zip(runs) {
        let m = |f: fn(&Load) -> f64| median(r.iter().map(f).collect());
        let (rps, p50, p99) = (m(|l| l.rps), m(|l| l.p50_ms), m(|l| l.p99_ms));
        let each: Vec<String> = r.iter().map(|l| format!("{:.0}", l.rps)).collect();
        println!(
            "  {name:<22} {rps:>10.0} {p50:>9.3} {p99:>9.3}  {}",
            each.join(" ")
        );
        med.push((rps, p99));
    }
    let each: Vec<String> = runs[1]
        .iter()
        .zip(&runs[2])
        .map(|(r, n)| format!("{:.2}", r.rps / n.rps))
        .collect();
    println!("  router/nginx req/s per round: {}", each.join(" "));

    // A run with socket errors, timeouts or error statuses is not a clean
    // measurement: its numbers are shown, but no target is called met.
    let mut clean = true;
    for (name, r) in NAMES.iter().zip(runs) {
        for (i, l) in r.iter().enumerate() {
            if l.failures.total() > 0 {
                clean = false;
                println!("  FAILURES {name}, round {}: {}", i + 1, l.failures);
            }
        }
    }
    let ratio = med[1].0 / med[2].0;
    let added = med[1].1 - med[0].1;
    let verdict = |ok: bool| match (clean, ok) {
        (false, _) => "NOT CLEAN (failures above), no verdict",
        (true, true) => "target met",
        (true, false) => "TARGET MISSED",
    };
    println!(
        "  -> router throughput {ratio:.2}x nginx (median/median, target >= 1.0x): {}",
        verdict(ratio >= 1.0)
    );
    println!(
        "  -> router p99 adds {added:.3} ms over direct (median p99s, target <= 1 ms): {}",
        verdict(added <= 1.0)
    );
    println!(
        "  -> traffic counters: router {:.2}x its throughput without them, p99 {:+.3} ms",
        med[1].0 / med[3].0,
        med[1].1 - med[3].1
    );
}
