//! The CF v3 client against a real local platform daemon (temporary state
//! directory, ephemeral ports, real app processes), through every call a
//! deploy makes; the router under a destination swap; restarts.

use bluegreen::platform::client::CfClient;
use bluegreen::platform::local::{self, Config, Running};
use bluegreen::platform::{PlatformError, package, v3};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

/// A tiny app: `/` names its release, `/crash` exits, `/slow` takes 300 ms.
const APP: &str = r#"
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536  # one write per response: no Nagle + delayed-ACK stall
    def do_GET(self):
        if self.path == "/crash":
            os._exit(3)
        if self.path == "/slow":
            time.sleep(0.3)
        body = ("release %s\n" % os.environ.get("RELEASE", "?")).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        sys.stdout.write("request %s\n" % self.path); sys.stdout.flush()
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

pub fn app_dir(root: &Path) -> std::path::PathBuf {
    let dir = root.join("app");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.py"), APP).unwrap();
    std::fs::write(dir.join("Procfile"), "web: exec python3 app.py\n").unwrap();
    dir
}

pub async fn start(dir: &Path) -> (Running, CfClient) {
    let mut config = Config::new(dir);
    config.router_port = 0;
    config.grace = Duration::from_secs(2);
    let running = local::start(config).await.expect("local platform starts");
    let client = CfClient::with_token(&running.endpoint.api_url, &running.token);
    (running, client)
}

/// Creates an app, uploads and stages `dir`, starts it; returns its guid.
pub async fn push(client: &CfClient, name: &str, dir: &Path, release: &str) -> String {
    let space = client
        .find_space(local_org(client).await.as_str(), "local")
        .await
        .unwrap()
        .unwrap();
    let env = [("RELEASE".to_string(), release.to_string())].into();
    let app = client.create_app(&space.guid, name, &env).await.unwrap();
    let pkg = client.create_package(&app.guid).await.unwrap();
    client
        .upload_package(&pkg.guid, &package::zip_dir(dir).unwrap(), WAIT)
        .await
        .unwrap();
    let droplet = client.stage(&pkg.guid, WAIT).await.unwrap();
    client
        .set_current_droplet(&app.guid, &droplet)
        .await
        .unwrap();
    client.app_action(&app.guid, "start").await.unwrap();
    wait_running(client, &app.guid).await;
    app.guid
}

/// Creates route `host` and maps app `guid` to it: as on CF, an app has no
/// route of its own.
pub async fn route_to(client: &CfClient, host: &str, guid: &str) {
    let space = client
        .find_space(local_org(client).await.as_str(), "local")
        .await
        .unwrap()
        .unwrap();
    let domain = client.find_domain(local::DOMAIN).await.unwrap().unwrap();
    let route = client
        .create_route(&domain.guid, &space.guid, host)
        .await
        .unwrap();
    client.map_route(&route.guid, guid).await.unwrap();
}

pub async fn local_org(client: &CfClient) -> String {
    client
        .find_org("local")
        .await
        .unwrap()
        .expect("the implicit org")
        .guid
}

pub async fn wait_running(client: &CfClient, guid: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = client.process_stats(guid).await.unwrap();
        if stats.iter().any(|s| s.state == "RUNNING") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{guid} never became RUNNING: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// GET through the router with a `Host` header.
pub async fn via_router(
    http: &reqwest::Client,
    running: &Running,
    host: &str,
    path: &str,
) -> Result<(u16, String), String> {
    let url = format!("http://127.0.0.1:{}{path}", running.endpoint.router_port);
    let resp = http
        .get(url)
        .header("host", format!("{host}.{}", local::DOMAIN))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.map_err(|e| e.to_string())?))
}

#[tokio::test]
async fn the_client_drives_every_call_against_a_real_daemon() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let http = reqwest::Client::new();
    let dir = app_dir(tmp.path());

    let org = local_org(&client).await;
    let space = client.find_space(&org, "local").await.unwrap().unwrap();
    assert!(
        client
            .find_space(&org, "elsewhere")
            .await
            .unwrap()
            .is_none()
    );
    let domain = client.find_domain(local::DOMAIN).await.unwrap().unwrap();

    let blue = push(&client, "shop-blue", &dir, "r1").await;
    assert_eq!(
        client
            .find_app(&space.guid, "shop-blue")
            .await
            .unwrap()
            .unwrap()
            .guid,
        blue
    );
    let err = client
        .create_app(&space.guid, "shop-blue", &Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            PlatformError::Api {
                status: 422,
                code: 10016,
                ..
            }
        ),
        "{err}"
    );

    // As on CF, an app has no route until one is mapped to it; a route
    // with the app's own name is then free to create.
    assert_eq!(
        via_router(&http, &running, "shop-blue", "/")
            .await
            .unwrap()
            .0,
        404
    );
    route_to(&client, "shop-blue", &blue).await;
    assert_eq!(
        via_router(&http, &running, "shop-blue", "/").await.unwrap(),
        (200, "release r1\n".into())
    );

    // Env, metadata, process settings.
    client
        .set_env(
            &blue,
            &[("EXTRA".to_string(), Some("1".to_string()))].into(),
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .get_env(&blue)
            .await
            .unwrap()
            .get("EXTRA")
            .map(String::as_str),
        Some("1")
    );
    let mut meta = v3::Metadata::default();
    meta.annotations
        .insert("bluegreen.dev/release".into(), Some("r1".into()));
    let app = client.set_metadata(&blue, &meta).await.unwrap();
    assert_eq!(
        app.metadata.annotations["bluegreen.dev/release"].as_deref(),
        Some("r1")
    );
    let process = client.web_process(&blue).await.unwrap();
    let hc = v3::HealthCheck {
        kind: "port".into(),
        data: Default::default(),
    };
    let process = client
        .update_process(&process.guid, Some("exec python3 app.py"), Some(&hc))
        .await
        .unwrap();
    assert_eq!(process.command.as_deref(), Some("exec python3 app.py"));

    // Droplets are kept: a second push leaves two, newest first.
    let pkg = client.create_package(&blue).await.unwrap();
    assert_eq!(pkg.state, "AWAITING_UPLOAD");
    client
        .upload_package(&pkg.guid, &package::zip_dir(&dir).unwrap(), WAIT)
        .await
        .unwrap();
    let second = client.stage(&pkg.guid, WAIT).await.unwrap();
    let first = client.current_droplet(&blue).await.unwrap().unwrap();
    let droplets = client.droplets(&blue).await.unwrap();
    assert_eq!(
        droplets.iter().map(|d| d.guid.clone()).collect::<Vec<_>>(),
        [second.clone(), first.clone()]
    );
    assert_eq!(droplets[0].process_types["web"], "exec python3 app.py");

    // A shared route over a destination, and a task in the droplet.
    let route = client
        .create_route(&domain.guid, &space.guid, "shop")
        .await
        .unwrap();
    assert_eq!(
        client
            .find_route(&domain.guid, &space.guid, "shop")
            .await
            .unwrap()
            .unwrap()
            .guid,
        route.guid
    );
    assert_eq!(
        via_router(&http, &running, "shop", "/").await.unwrap().0,
        503
    );
    let dests = client.map_route(&route.guid, &blue).await.unwrap();
    assert_eq!(
        (dests.len(), dests[0].app.guid.as_str()),
        (1, blue.as_str())
    );
    assert_eq!(
        via_router(&http, &running, "shop", "/").await.unwrap().1,
        "release r1\n"
    );
    let task = client
        .run_task(&blue, "test -f app.py && echo migrated", WAIT)
        .await
        .unwrap();
    assert_eq!(task.state, "SUCCEEDED");
    let err = client.run_task(&blue, "exit 7", WAIT).await.unwrap_err();
    assert!(
        err.to_string().contains("exited with exit status: 7"),
        "{err}"
    );
    client.unmap_route(&route.guid, &blue).await.unwrap();
    assert!(client.destinations(&route.guid).await.unwrap().is_empty());
    let (status, body) = via_router(&http, &running, "shop", "/").await.unwrap();
    assert_eq!(status, 503);
    assert!(
        body.contains("route `shop.apps.localhost` has no destinations"),
        "{body}"
    );
    assert_eq!(
        via_router(&http, &running, "nothing", "/").await.unwrap().0,
        404
    );

    // Pagination is followed across pages.
    for name in ["p-1", "p-2", "p-3"] {
        client
            .create_app(&space.guid, name, &Default::default())
            .await
            .unwrap();
    }
    let paged: Vec<v3::App> = client.list("/v3/apps?per_page=2").await.unwrap();
    assert_eq!(paged.len(), 4);

    // Stop, then delete through a job.
    client.app_action(&blue, "stop").await.unwrap();
    assert_eq!(client.process_stats(&blue).await.unwrap()[0].state, "DOWN");
    client.delete_app(&blue, WAIT).await.unwrap();
    let err = client.get_app(&blue).await.unwrap_err();
    assert_eq!(err.cf_title(), Some("CF-ResourceNotFound"));

    // Staging a package that is not a zip fails the build, with the reason.
    let other = client.find_app(&space.guid, "p-1").await.unwrap().unwrap();
    let pkg = client.create_package(&other.guid).await.unwrap();
    client
        .upload_package(
            &pkg.guid,
            &package::Zipped::from_bytes(b"not a zip").unwrap(),
            WAIT,
        )
        .await
        .unwrap();
    let err = client.stage(&pkg.guid, WAIT).await.unwrap_err();
    assert!(err.to_string().contains("not a zip archive"), "{err}");
    running.shutdown().await;
}

#[tokio::test]
async fn a_wrong_or_missing_token_is_refused_with_cfs_error_envelope() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, _) = start(tmp.path()).await;
    let http = reqwest::Client::new();
    let url = format!("{}/v3/apps", running.endpoint.api_url);
    for (auth, code, title) in [
        (Some("bearer wrong"), 1000, "CF-InvalidAuthToken"),
        (None, 10002, "CF-NotAuthenticated"),
    ] {
        let mut req = http.get(&url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let body: v3::ErrorEnvelope = resp.json().await.unwrap();
        assert_eq!(
            (body.errors[0].code, body.errors[0].title.as_str()),
            (code, title)
        );
    }
    let client = CfClient::with_token(&running.endpoint.api_url, "wrong");
    let err = client.find_org("local").await.unwrap_err();
    assert!(
        matches!(
            &err,
            PlatformError::Api {
                status: 401,
                code: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        !err.to_string().contains(&running.token),
        "the token leaked into an error"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(tmp.path().join("platform/token"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    running.shutdown().await;
}

#[tokio::test]
async fn swapping_destinations_under_load_fails_no_request() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let dir = app_dir(tmp.path());
    let org = local_org(&client).await;
    let space = client.find_space(&org, "local").await.unwrap().unwrap();
    let domain = client.find_domain(local::DOMAIN).await.unwrap().unwrap();
    let blue = push(&client, "web-blue", &dir, "blue").await;
    let green = push(&client, "web-green", &dir, "green").await;
    let route = client
        .create_route(&domain.guid, &space.guid, "web")
        .await
        .unwrap();
    client.map_route(&route.guid, &blue).await.unwrap();

    // A bounded client hammers the route for the whole swap.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let seen = Arc::new(Mutex::new(std::collections::BTreeSet::new()));
    let router_port = running.endpoint.router_port;
    let load = {
        let (stop, ok, failed, seen) = (stop.clone(), ok.clone(), failed.clone(), seen.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for _ in 0..20_000 {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let resp = http
                    .get(format!("http://127.0.0.1:{router_port}/"))
                    .header("host", "web.apps.localhost")
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status() == 200 => {
                        let text = r.text().await.unwrap_or_default();
                        seen.lock().unwrap().insert(text);
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) => failed.lock().unwrap().push(format!("HTTP {}", r.status())),
                    Err(e) => failed.lock().unwrap().push(e.to_string()),
                }
            }
        })
    };
    // Each state lasts 100 ms and until the load got 10 more answers
    // (bounded): requests arrive in every one, however loaded the machine.
    let phase = || {
        let (ok, failed) = (ok.clone(), failed.clone());
        async move {
            let answered = || ok.load(Ordering::SeqCst) + failed.lock().unwrap().len();
            let want = answered() + 10;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let deadline = Instant::now() + WAIT;
            while answered() < want {
                assert!(
                    Instant::now() < deadline,
                    "the load stalled at {}",
                    answered()
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    // blue -> both -> green -> both -> blue, the moves a deploy makes.
    for _ in 0..3 {
        phase().await;
        client.map_route(&route.guid, &green).await.unwrap();
        phase().await;
        client.unmap_route(&route.guid, &blue).await.unwrap();
        phase().await;
        client.map_route(&route.guid, &blue).await.unwrap();
        phase().await;
        client.unmap_route(&route.guid, &green).await.unwrap();
    }
    phase().await;
    stop.store(true, Ordering::SeqCst);
    load.await.unwrap();
    let failed = failed.lock().unwrap().clone();
    assert!(
        failed.is_empty(),
        "{} requests failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(
        ok.load(Ordering::SeqCst) > 100,
        "only {} requests",
        ok.load(Ordering::SeqCst)
    );
    assert_eq!(
        seen.lock().unwrap().len(),
        2,
        "both colors served: {:?}",
        seen.lock().unwrap()
    );
    running.shutdown().await;
}

use std::sync::Mutex;

#[tokio::test]
async fn in_flight_requests_are_counted_until_they_finish() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let app = push(&client, "slow", &app_dir(tmp.path()), "s").await;
    route_to(&client, "slow", &app).await;
    let http = reqwest::Client::new();
    let port = running.endpoint.router_port;
    let pending = tokio::spawn(async move {
        http.get(format!("http://127.0.0.1:{port}/slow"))
            .header("host", "slow.apps.localhost")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let deadline = Instant::now() + WAIT;
    while client.inflight(&app).await.unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "the slow request was never counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pending.await.unwrap(), "release s\n");
    // The router lets go of the request once it has written the answer's
    // end, which the client may read first: the count falls to 0 a moment
    // after (a CI run at 8 tests at a time asked in between).
    while client.inflight(&app).await.unwrap() != 0 {
        assert!(
            Instant::now() < deadline,
            "the finished request is still counted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.shutdown().await;
}

#[tokio::test]
async fn a_crashing_app_is_restarted() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let app = push(&client, "crashy", &app_dir(tmp.path()), "c").await;
    route_to(&client, "crashy", &app).await;
    let http = reqwest::Client::new();
    let _ = via_router(&http, &running, "crashy", "/crash").await;
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok((200, body)) = via_router(&http, &running, "crashy", "/").await {
            assert_eq!(body, "release c\n");
            break;
        }
        assert!(Instant::now() < deadline, "the app never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = http
        .get(format!(
            "{}/bluegreen/v1/apps/{app}/logs",
            running.endpoint.api_url
        ))
        .bearer_auth(&running.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        log.contains("exited with exit status: 3; restarting"),
        "{log}"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_daemon_restart_keeps_apps_droplets_and_routes() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let app = push(&client, "keep", &app_dir(tmp.path()), "k1").await;
    let space = client
        .find_space(&local_org(&client).await, "local")
        .await
        .unwrap()
        .unwrap();
    let domain = client.find_domain(local::DOMAIN).await.unwrap().unwrap();
    let route = client
        .create_route(&domain.guid, &space.guid, "kept")
        .await
        .unwrap();
    client.map_route(&route.guid, &app).await.unwrap();
    let droplet = client.current_droplet(&app).await.unwrap();
    running.shutdown().await;

    let (running, client) = start(tmp.path()).await;
    assert_eq!(client.current_droplet(&app).await.unwrap(), droplet);
    wait_running(&client, &app).await;
    let http = reqwest::Client::new();
    assert_eq!(
        via_router(&http, &running, "kept", "/").await.unwrap(),
        (200, "release k1\n".into())
    );
    running.shutdown().await;
}

#[test]
fn the_cli_starts_reports_and_stops_a_background_daemon() {
    let home = tempfile::tempdir().unwrap();
    // Stopped on the way out too, should an assertion fail first.
    struct Stop<'a>(&'a std::path::Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            crate::util::stop_platform(self.0);
        }
    }
    let _stop = Stop(home.path());
    let run = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(args)
            .env("BLUEGREEN_HOME", home.path())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap(), text)
    };
    let (code, out) = run(&["platform", "start", "--router-port", "0"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("local platform running: API http://127.0.0.1:"),
        "{out}"
    );
    let pid = out
        .split("(pid ")
        .nth(1)
        .unwrap()
        .trim()
        .trim_end_matches(')')
        .to_string();
    let (code, again) = run(&["platform", "start", "--router-port", "0"]);
    assert_eq!(code, 0);
    assert!(
        again.contains(&format!("(pid {pid})")),
        "a second start must find the first daemon: {again}"
    );
    let (code, status) = run(&["platform", "status"]);
    assert_eq!(code, 0, "{status}");
    assert!(status.contains(&format!("running (pid {pid})")), "{status}");
    let (code, logs) = run(&["platform", "logs", "nosuch"]);
    assert_eq!(code, 2, "{logs}");
    assert!(logs.contains("no app named `nosuch`"), "{logs}");
    let (code, out) = run(&["platform", "stop"]);
    assert_eq!((code, out.trim()), (0, "local platform stopped"));
    // SAFETY: signal 0 only probes for the process.
    assert_ne!(
        unsafe { libc::kill(pid.parse().unwrap(), 0) },
        0,
        "daemon still alive"
    );
    let (code, status) = run(&["platform", "status"]);
    assert_eq!(code, 1);
    assert!(status.contains("not running"), "{status}");
}
