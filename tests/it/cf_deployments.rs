//! Cloud Foundry's own deployments on the local platform (issue «15»): a
//! real daemon, real Python instances, real HTTP through the router, the
//! calls a CF client makes (`POST /v3/deployments`, its actions, revisions).
//!
//! What would fool each check, and why it cannot: a rollout that stops an
//! old instance before its replacement answers leaves the route with
//! nothing running while the new one takes its START_DELAY to bind (503s
//! under load), or with fewer than the app's count running (the sampled
//! minimum); one that kills instances with requests in flight cuts the
//! slow GETs and the POSTs the router cannot retry, and leaves 5xx in the
//! router's own count; one that "finishes" without replacing every
//! instance is caught by asking each instance, on its own port, which
//! droplet it runs; a canary that starts too many (or none) shows in the
//! measured share.

use crate::platform::{local_org, route_to, start, wait_running};
use bluegreen::platform::client::CfClient;
use bluegreen::platform::local::Running;
use bluegreen::platform::package;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

mod load;
mod records;
mod restart;
mod scenarios;
mod spread;

const WAIT: Duration = Duration::from_secs(20);

/// The app: `/` answers `<droplet's VERSION> <RELEASE env> <index> <port>`,
/// `/slow` the same after 250 ms, `POST /orders` the body's length after
/// 250 ms. It
/// binds its port only after `START_DELAY` (a real app's boot).
const APP: &str = r#"
import os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
time.sleep(float(os.environ.get("START_DELAY", "0.6")))
VERSION = open("VERSION").read().strip()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    def answer(self, text):
        body = text.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def me(self):
        env = os.environ
        return "%s %s %s %s\n" % (VERSION, env.get("RELEASE", "?"), env["CF_INSTANCE_INDEX"], env["PORT"])
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(0.25)
        self.answer(self.me())
    def do_POST(self):
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        time.sleep(0.25)
        self.answer("%s got %d\n" % (self.me().strip(), n))
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// A droplet's source: the app, `VERSION` naming it, and its Procfile
/// (`None`: an instance that exits at once, never healthy).
fn source(root: &Path, version: &str, healthy: bool) -> PathBuf {
    let dir = root.join(version);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.py"), APP).unwrap();
    std::fs::write(dir.join("VERSION"), version).unwrap();
    let web = if healthy {
        "web: exec python3 app.py\n"
    } else {
        "web: echo never healthy; exit 3\n"
    };
    std::fs::write(dir.join("Procfile"), web).unwrap();
    dir
}

/// The API as a CF client calls it: status and JSON body.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    fn new(running: &Running) -> Api {
        Api {
            base: running.endpoint.api_url.clone(),
            token: running.token.clone(),
            http: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call("GET", path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `POST /v3/deployments`; the new deployment.
    async fn deploy(&self, body: Value) -> Value {
        let (status, d) = self.call("POST", "/v3/deployments", Some(body)).await;
        assert_eq!(status, 201, "{d}");
        d
    }

    async fn action(&self, guid: &str, action: &str) {
        let path = format!("/v3/deployments/{guid}/actions/{action}");
        let (status, body) = self.call("POST", &path, None).await;
        assert_eq!(status, 200, "{action}: {body}");
    }

    /// Polls the deployment until its status is `value`/`reason`.
    async fn wait_status(&self, guid: &str, value: &str, reason: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let d = self.get(&format!("/v3/deployments/{guid}")).await;
            if d["status"]["value"] == value && d["status"]["reason"] == reason {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "deployment never {value}/{reason}: {d}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A `POST /v3/deployments` body for `app` with `extra`'s fields.
fn body(app: &str, extra: Value) -> Value {
    let mut b = json!({ "relationships": { "app": { "data": { "guid": app } } } });
    for (k, v) in extra.as_object().unwrap() {
        b[k] = v.clone();
    }
    b
}

/// A started app of `instances` on droplet `v1` with `RELEASE=r1`, routed
/// at `host`; its guid.
async fn app_on_v1(client: &CfClient, root: &Path, host: &str, instances: u32) -> String {
    let space = client
        .find_space(&local_org(client).await, "local")
        .await
        .unwrap()
        .unwrap();
    let env = [("RELEASE".to_string(), "r1".to_string())].into();
    let app = client.create_app(&space.guid, host, &env).await.unwrap();
    let droplet = stage(client, &app.guid, &source(root, "v1", true)).await;
    client
        .set_current_droplet(&app.guid, &droplet)
        .await
        .unwrap();
    client.scale_process(&app.guid, instances).await.unwrap();
    client.app_action(&app.guid, "start").await.unwrap();
    route_to(client, host, &app.guid).await;
    wait_running(client, &app.guid).await;
    wait_versions(client, &app.guid, &vec!["v1"; instances as usize]).await;
    app.guid
}

/// Uploads and stages `dir` for the app; the droplet's guid.
async fn stage(client: &CfClient, app: &str, dir: &Path) -> String {
    let pkg = client.create_package(app).await.unwrap();
    client
        .upload_package(&pkg.guid, &package::zip_dir(dir).unwrap(), WAIT)
        .await
        .unwrap();
    client.stage(&pkg.guid, WAIT).await.unwrap()
}

/// What each running web instance answers on its own port: its droplet's
/// version, sorted (the router would hide an instance left behind).
async fn versions(client: &CfClient, app: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for s in client.process_stats(app).await.unwrap() {
        let Some(port) = s.instance_ports.first().filter(|_| s.state == "RUNNING") else {
            continue;
        };
        let url = format!("http://127.0.0.1:{}/", port.external);
        if let Ok(r) = http.get(url).timeout(Duration::from_secs(5)).send().await {
            let text = r.text().await.unwrap_or_default();
            out.push(text.split_whitespace().next().unwrap_or("").to_string());
        }
    }
    out.sort();
    out
}

/// Waits until the running instances answer exactly `want` (sorted).
async fn wait_versions(client: &CfClient, app: &str, want: &[&str]) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = versions(client, app).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "instances run {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The running web instances, sampled until stopped: (fewest, most live).
struct Sampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<(usize, usize)>,
}

impl Sampler {
    fn start(client: &CfClient, app: &str) -> Sampler {
        let (client, app) = (client.clone(), app.to_string());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let (mut fewest, mut most) = (usize::MAX, 0);
            while !flag.load(Ordering::SeqCst) {
                let stats = client.process_stats(&app).await.unwrap();
                let running = stats.iter().filter(|s| s.state == "RUNNING").count();
                let live = stats.iter().filter(|s| s.state != "DOWN").count();
                fewest = fewest.min(running);
                most = most.max(live);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (fewest, most)
        });
        Sampler { stop, task }
    }

    async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

/// The router's count of 5xx answers for the app so far.
async fn server_errors(api: &Api, app: &str) -> u64 {
    let t = api.get(&format!("/bluegreen/v1/apps/{app}/traffic")).await;
    t["status"][4].as_u64().unwrap()
}

/// Requests answered per droplet version.
type Shares = BTreeMap<String, usize>;

fn share(shares: &Shares, version: &str) -> f64 {
    let total: usize = shares.values().sum();
    *shares.get(version).unwrap_or(&0) as f64 / total.max(1) as f64
}
