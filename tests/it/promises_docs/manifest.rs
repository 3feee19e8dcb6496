//! `manifest.md` on the local platform: the deploy file's `command`, `env`
//! and `health.path` win over the manifest's, what only the manifest says
//! fills them in, and `health-check-type: port|process` decide when an
//! instance counts as running.

use crate::deploy::{Fixture, get, text};
use crate::util::{exits, py_app_with, succeeded};

/// `/` names the release and two variables; `/health` answers 200 and
/// `/manifest-health` 500.
fn app_py() -> String {
    py_app_with(
        "pass",
        "pass",
        r#"500 if self.path == "/manifest-health" else 200"#,
        r#""release %s %s %s %s\n" % (os.environ.get("BLUEGREEN_RELEASE"),
                os.environ.get("BLUEGREEN_COLOR"), os.environ.get("GREETING"),
                os.environ.get("ONLY_IN_MANIFEST"))"#,
    )
}

/// A fixture whose app is `app_py()`, started only by a `command`, deployed
/// with `manifest` and the deploy file's own `extra` lines.
fn with_manifest(manifest: &str, extra: &str) -> Fixture {
    let f = Fixture::new("");
    let app = f.root.path().join("app");
    std::fs::write(app.join("app.py"), app_py()).unwrap();
    std::fs::remove_file(app.join("Procfile")).unwrap();
    std::fs::write(f.root.path().join("manifest.yml"), manifest).unwrap();
    write(&f, extra);
    f
}

fn write(f: &Fixture, extra: &str) {
    std::fs::write(
        &f.file,
        format!(
            "app: shop\npath: app\nmanifest: manifest.yml\n\
             health: {{ path: /health, interval: 50ms, timeout: 10s }}\ndrain: 100ms\n{extra}"
        ),
    )
    .unwrap();
}

/// The deploy file's `command` and `env` win; the manifest's env fills in
/// what the file does not set. `health.path` is what bluegreen probes; the
/// manifest's `http` check stays the platform's own, which decides when
/// an instance counts as running: an endpoint that fails keeps the color
/// off the route however well `health.path` answers.
#[test]
fn the_deploy_files_command_and_env_win_and_the_manifests_health_check_stays() {
    let manifest = |endpoint: &str| {
        format!(
            "applications:\n- name: shop\n  command: exec python3 missing.py\n  \
             health-check-type: http\n  health-check-http-endpoint: {endpoint}\n  \
             env:\n    GREETING: from-the-manifest\n    ONLY_IN_MANIFEST: filled-in\n"
        )
    };
    let f = with_manifest(
        &manifest("/also-fine"),
        "command: exec python3 app.py\nenv: { GREETING: from-the-deploy-file }\n",
    );
    succeeded(f.deploy("v1"));
    for _ in 0..6 {
        let (status, body) = get(f.router_port, "shop", "/").unwrap();
        assert_eq!(status, 200, "{body}");
        assert!(
            body.ends_with(" from-the-deploy-file filled-in\n"),
            "{body}"
        );
    }
    f.assert_colors("v1");

    std::fs::write(
        f.root.path().join("manifest.yml"),
        manifest("/manifest-health"),
    )
    .unwrap();
    let out = exits(f.deploy("v2"), 1);
    assert!(
        text(&out).contains(
            "shop-blue: 0 of 1 `web` instances running according to the platform (states: STARTING)"
        ),
        "{}",
        text(&out)
    );
    for _ in 0..6 {
        let (status, body) = get(f.router_port, "shop", "/").unwrap();
        assert_eq!(
            (status, body.starts_with("release v1 green ")),
            (200, true),
            "{body}"
        );
    }
}

fn worker_manifest(check: &str, script: &str) -> String {
    format!(
        "applications:\n- name: shop\n  processes:\n  - type: worker\n    instances: 1\n    \
         command: exec python3 {script}\n    health-check-type: {check}\n"
    )
}

/// `health-check-type` of a worker: under `port` it counts as running once
/// it listens on its `$PORT`, under `process` as soon as it runs; under
/// `port` a worker that never listens never counts, so the deploy fails
/// and the other color serves alone. (The failed color goes back to its
/// droplet, not to its earlier manifest: it stays off the route.)
#[test]
fn a_port_check_waits_for_the_port_and_a_process_check_for_the_process() {
    let f = with_manifest(
        &worker_manifest("port", "listens.py"),
        "command: exec python3 app.py\n",
    );
    let app = f.root.path().join("app");
    std::fs::write(
        app.join("listens.py"),
        "import os, socket, time\ns = socket.socket()\n\
         s.bind(('127.0.0.1', int(os.environ['PORT'])))\ns.listen()\ntime.sleep(600)\n",
    )
    .unwrap();
    std::fs::write(app.join("silent.py"), "import time\ntime.sleep(600)\n").unwrap();
    let manifest = |check: &str, script: &str| {
        std::fs::write(
            f.root.path().join("manifest.yml"),
            worker_manifest(check, script),
        )
        .unwrap()
    };
    succeeded(f.deploy("v1"));
    f.assert_serving("v1");

    manifest("process", "silent.py");
    succeeded(f.deploy("v2"));
    f.assert_serving("v2");

    manifest("port", "silent.py");
    let out = exits(f.deploy("v3"), 1);
    assert!(
        text(&out).contains(
            "shop-blue: 0 of 1 `worker` instances running according to the platform (states: STARTING)"
        ),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("while green serves"), "{}", text(&out));
    for _ in 0..6 {
        let (status, body) = get(f.router_port, "shop", "/").unwrap();
        assert_eq!(
            (status, body.starts_with("release v2 green ")),
            (200, true),
            "{body}"
        );
    }
}
