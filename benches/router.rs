//! Router throughput and latency with keep-alive, side by side in one run:
//! the same small upstream reached directly, through the local platform's
//! router, and through nginx as a reverse proxy, all loaded by `wrk`.
//! Run with `benches/router.sh` (installs nginx and wrk first).
//!
//! Targets: router >= 0.8x nginx's throughput; p99 added latency <= 1 ms
//! (router p99 minus direct p99).

use bluegreen::platform::client::CfClient;
use bluegreen::platform::{local, package};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

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

struct Load {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn wrk(url: &str, host: Option<&str>) -> Load {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", "-c32", "-d8s", "--latency"]);
    if let Some(h) = host {
        cmd.args(["-H", &format!("Host: {h}")]);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("wrk (run benches/router.sh, which installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!text.contains("Non-2xx"), "errors under load:\n{text}");
    let field = |prefix: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in:\n{text}"));
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
    Load {
        rps: field("Requests/sec:"),
        p50_ms: field("50%"),
        p99_ms: field("99%"),
    }
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
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (running, upstream_port) = rt.block_on(async {
        let mut config = local::Config::new(tmp.path());
        config.router_port = 0;
        let running = local::start(config).await.unwrap();
        let client = CfClient::with_token(&running.endpoint.api_url, &running.token);
        let app_dir = tmp.path().join("app");
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
        let port = loop {
            let stats = client.process_stats(&app.guid).await.unwrap();
            if let Some(s) = stats.iter().find(|s| s.state == "RUNNING") {
                break s.instance_ports[0].internal;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        (running, port)
    });

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
            "worker_processes 1; daemon off; pid {dir}/nginx.pid; error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{ access_log off;
  upstream app {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{ listen 127.0.0.1:{nginx_port};
    location / {{ proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host $host; }} }} }}",
            dir = nginx_dir.display()
        ),
    )
    .unwrap();
    let mut nginx = Command::new("nginx")
        .args([
            "-c",
            &nginx_dir.join("nginx.conf").display().to_string(),
            "-p",
            &nginx_dir.display().to_string(),
        ])
        // A group of its own: stopping it reaches the workers too.
        .process_group(0)
        .spawn()
        .expect("nginx (run benches/router.sh, which installs it)");
    std::thread::sleep(Duration::from_millis(500));

    let direct = wrk(&format!("http://127.0.0.1:{upstream_port}/"), None);
    let router = wrk(
        &format!("http://127.0.0.1:{}/", running.endpoint.router_port),
        Some("bench.apps.localhost"),
    );
    let proxy = wrk(&format!("http://127.0.0.1:{nginx_port}/"), None);
    // SIGQUIT: the master stops its workers and exits; the group gets
    // SIGKILL if that takes more than five seconds. Killing only the master
    // left its workers running.
    let group = -(nginx.id() as i32);
    // SAFETY: signalling the process group this bench started.
    unsafe { libc::kill(group, libc::SIGQUIT) };
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while nginx.try_wait().ok().flatten().is_none() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above; whatever is left of the group goes.
    unsafe { libc::kill(group, libc::SIGKILL) };
    let _ = nginx.wait();
    rt.block_on(running.shutdown());

    println!("router benchmark (wrk -t2 -c32 -d8s, keep-alive, 2 cores shared by everything)");
    println!(
        "  {:<22} {:>10} {:>9} {:>9}",
        "", "req/s", "p50 ms", "p99 ms"
    );
    for (name, l) in [
        ("direct to app", &direct),
        ("bluegreen router", &router),
        ("nginx reverse proxy", &proxy),
    ] {
        println!(
            "  {name:<22} {:>10.0} {:>9.3} {:>9.3}",
            l.rps, l.p50_ms, l.p99_ms
        );
    }
    let ratio = router.rps / proxy.rps;
    let added = router.p99_ms - direct.p99_ms;
    let verdict = |ok: bool| if ok { "target met" } else { "TARGET MISSED" };
    println!(
        "  -> router throughput {ratio:.2}x nginx (target >= 0.8x): {}",
        verdict(ratio >= 0.8)
    );
    println!(
        "  -> router p99 adds {added:.3} ms over direct (target <= 1 ms): {}",
        verdict(added <= 1.0)
    );
}
