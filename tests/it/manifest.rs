//! A deploy driven by a Cloud Foundry `manifest.yml` on the real local
//! platform («9 · CF fidelity»): three web instances and a worker per color,
//! a service, an http health check, under load through the route.

use crate::deploy::{Fixture, get, json_lines, text};
use crate::util::succeeded;
use serde_json::Value;
use std::collections::BTreeSet;

/// The fixture's app, answering with its instance index too.
const APP: &str = r#"
import os, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
RELEASE = os.environ.get("BLUEGREEN_RELEASE", "?")
COLOR = os.environ.get("BLUEGREEN_COLOR", "?")
INDEX = os.environ.get("CF_INSTANCE_INDEX", "?")
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, body):
        body = body.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(int(self.path.partition("ms=")[2] or "250") / 1000)
        self.answer("release %s %s %s %s\n" % (RELEASE, COLOR, INDEX, os.environ.get("GREETING", "-")))
    def do_POST(self):
        data = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.answer("release %s %s got %d\n" % (RELEASE, COLOR, len(data)))
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// A worker: says when it starts and when SIGTERM stops it.
const WORKER: &str = r#"
import os, signal, sys, time
who = "%s %s" % (os.environ.get("BLUEGREEN_RELEASE"), os.environ.get("BLUEGREEN_COLOR"))
log = os.environ["WORKER_LOG"]
def say(what):
    with open(log, "a") as f:
        f.write("%s %s %.3f\n" % (what, who, time.time()))
def stop(*_):
    say("stopped")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
say("started")
while True:
    time.sleep(0.05)
"#;

const MANIFEST: &str = "\
applications:
- name: shop-production
  instances: 3
  memory: 128M
  disk_quota: 512M
  buildpacks: [python_buildpack]
  stack: cflinuxfs4
  health-check-type: http
  health-check-http-endpoint: /health
  routes:
  - route: shop.example.com
  services: [shop-db]
  env:
    GREETING: hello
  processes:
  - type: worker
    instances: 1
    command: exec python3 worker.py
";

fn fixture() -> Fixture {
    fixture_on(Fixture::new(
        "manifest: manifest.yml\nservices: [{ name: shop-db, type: postgres }]\n",
    ))
}

/// The same app and manifest deployed as `platform: cf`, its service made
/// first (Cloud Foundry makes none on a deploy's behalf).
fn fixture_cf() -> Fixture {
    let f = fixture_on(Fixture::new_cf(
        "manifest: manifest.yml\nservices: [shop-db]\n",
    ));
    let out = f.run(&[
        "platform", "service", "create", "shop-db", "--type", "postgres",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f
}

fn fixture_on(f: Fixture) -> Fixture {
    let app = f.root.path().join("app");
    std::fs::write(app.join("app.py"), APP).unwrap();
    std::fs::write(app.join("worker.py"), WORKER).unwrap();
    std::fs::write(f.root.path().join("manifest.yml"), MANIFEST).unwrap();
    // The worker's log, through the deploy file's env (the manifest's env
    // is merged under it).
    let yaml = std::fs::read_to_string(&f.file).unwrap().replace(
        "env: { MIGRATION_LOG:",
        &format!(
            "env: {{ WORKER_LOG: {}, MIGRATION_LOG:",
            worker_log(&f).display()
        ),
    );
    std::fs::write(&f.file, yaml).unwrap();
    f
}

fn worker_log(f: &Fixture) -> std::path::PathBuf {
    f.root.path().join("worker.log")
}

fn processes(status: &Value, color: &str) -> Vec<(String, u64, u64)> {
    let c = status["colors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["color"] == color)
        .unwrap();
    c["processes"]
        .as_array()
        .unwrap_or_else(|| panic!("no processes in {c}"))
        .iter()
        .map(|p| {
            (
                p["type"].as_str().unwrap().to_string(),
                p["instances"].as_u64().unwrap(),
                p["running"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_manifest_with_three_instances_a_worker_and_a_service_deploys_under_load_with_zero_failures() {
    three_instances_a_worker_and_a_service(fixture());
}

#[test]
fn as_cf_a_manifest_with_three_instances_a_worker_and_a_service_deploys_under_load() {
    three_instances_a_worker_and_a_service(fixture_cf());
}

fn three_instances_a_worker_and_a_service(f: Fixture) {
    let plan = f.run(&["plan", "--release", "v1"]);
    let plan_text = text(&plan);
    assert_eq!(plan.status.code(), Some(0), "{plan_text}");
    for want in [
        "web ×3",
        "worker ×1",
        "memory 128M",
        "routes",
        "bluegreen owns the route",
    ] {
        assert!(
            plan_text.contains(want),
            "plan lacks `{want}`:\n{plan_text}"
        );
    }

    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = f.status();
    for color in ["blue", "green"] {
        let p = processes(&status, color);
        assert!(p.contains(&("web".into(), 3, 3)), "{color}: {p:?}");
        assert!(p.contains(&("worker".into(), 1, 1)), "{color}: {p:?}");
    }

    // Requests spread over all six instances, each with the manifest's env.
    let mut seen = BTreeSet::new();
    for _ in 0..60 {
        let (code, body) = get(f.router_port, "shop", "/").unwrap();
        assert_eq!(code, 200, "{body}");
        let words: Vec<&str> = body.split_whitespace().collect();
        assert_eq!(words.get(4), Some(&"hello"), "{body}");
        seen.insert((words[2].to_string(), words[3].to_string()));
    }
    assert_eq!(seen.len(), 6, "instances answering: {seen:?}");

    let load = f.load();
    load.more(3);
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let (requests, failures, releases) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        failures.is_empty(),
        "{} of {requests} failed: {failures:?}",
        failures.len()
    );
    assert_eq!(
        releases.last().map(String::as_str),
        Some("v2"),
        "{releases:?}"
    );
    let events = json_lines(&out.stdout);
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "deploy" && e["status"] == "done"),
        "{events:?}"
    );
    let status = f.status();
    for color in ["blue", "green"] {
        let p = processes(&status, color);
        assert!(p.contains(&("web".into(), 3, 3)), "{color} after v2: {p:?}");
        assert!(
            p.contains(&("worker".into(), 1, 1)),
            "{color} after v2: {p:?}"
        );
    }

    // The second color's v1 worker was stopped only once the first color's
    // v2 worker ran.
    let log = std::fs::read_to_string(worker_log(&f)).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let first_v2 = lines
        .iter()
        .position(|l| l.starts_with("started v2"))
        .unwrap_or_else(|| panic!("no v2 worker started:\n{log}"));
    let first_color = lines[first_v2].split_whitespace().nth(2).unwrap();
    let second_color = if first_color == "blue" {
        "green"
    } else {
        "blue"
    };
    let old_stopped = lines
        .iter()
        .position(|l| l.starts_with(&format!("stopped v1 {second_color}")))
        .unwrap_or_else(|| panic!("the {second_color} v1 worker never got SIGTERM:\n{log}"));
    assert!(
        old_stopped > first_v2,
        "old worker stopped before the new one ran:\n{log}"
    );
    assert!(
        log.contains(&format!("started v2 {second_color}")),
        "no v2 worker on {second_color}:\n{log}"
    );
}

/// A live color scaled away from the manifest (an autoscaler) keeps its
/// count unless `--reset-scale`, and the output says which.
#[test]
fn scale_follows_the_live_app_unless_reset_scale() {
    let f = fixture();
    crate::util::succeeded(f.deploy("v1"));
    for color in ["blue", "green"] {
        let out = f.run(&[
            "platform",
            "scale",
            &format!("shop-{color}"),
            "--instances",
            "4",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let out = f.deploy("v2");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("kept 4"), "{said}");
    let status = f.status();
    for color in ["blue", "green"] {
        assert!(
            processes(&status, color).contains(&("web".into(), 4, 4)),
            "{status}"
        );
    }
    let out = f.run(&["deploy", "--release", "v3", "--reset-scale"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("--reset-scale"), "{said}");
    let status = f.status();
    for color in ["blue", "green"] {
        assert!(
            processes(&status, color).contains(&("web".into(), 3, 3)),
            "{status}"
        );
    }
}

/// A manifest of several apps needs `manifest_app`; the error names the
/// manifest and the fix, with exit code 2 and nothing created.
#[test]
fn a_multi_app_manifest_without_manifest_app_is_bad_input() {
    let f = fixture();
    std::fs::write(
        f.root.path().join("manifest.yml"),
        "applications:\n- name: shop-web\n- name: shop-admin\n",
    )
    .unwrap();
    let out = f.deploy("v1");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(
        said.contains("manifest.yml")
            && said.contains("manifest_app")
            && said.contains("shop-admin"),
        "{said}"
    );
    // The platform's own list (`status` reads the same deploy file, and
    // would fail the same way).
    let status = succeeded(f.run(&["platform", "status", "--json"]));
    let v: Value = serde_json::from_slice(&status.stdout).unwrap();
    let apps = v["apps"]
        .as_array()
        .unwrap_or_else(|| panic!("no apps list: {v}"));
    assert!(
        apps.iter()
            .all(|a| a["name"].as_str().is_some_and(|n| !n.starts_with("shop"))),
        "nothing created: {v}"
    );
}
