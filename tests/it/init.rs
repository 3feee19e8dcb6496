//! `bluegreen init`: the deploy file it writes for the Rails example (with
//! its own deploy file moved aside) carries the example's essentials, passes
//! `plan`, and deploys the real app on a real PostgreSQL; a manifest, a
//! Procfile and a bare config.ru each give what they should; an existing
//! file is never overwritten.

use crate::deploy::{Fixture, get, text};
use crate::util::succeeded;
use bluegreen::config::DeployFile;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn init(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .arg("init")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running bluegreen init")
}

#[test]
fn init_rewrites_the_rails_example_and_the_result_deploys() {
    let f = Fixture::example("rails-app", |y| y);
    let example = DeployFile::load(&f.file).unwrap();
    let root = f.root.path();
    std::fs::rename(&f.file, root.join("bluegreen.yaml.example")).unwrap();

    let out = init(root, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(&f.file).unwrap();
    let file = DeployFile::load(&f.file).unwrap_or_else(|e| panic!("{e}\n{written}"));
    assert_eq!(file.app, example.app, "{written}");
    // Neither sets `command`: the Procfile's `web:` line starts the app.
    assert_eq!((&file.command, &example.command), (&None, &None));
    assert!(written.contains("web: exec puma"), "{written}");
    assert_eq!(file.env, example.env);
    assert_eq!(file.health.path, example.health.path);
    let (m, e) = (
        file.migrate.clone().unwrap(),
        example.migrate.clone().unwrap(),
    );
    assert_eq!(
        (&m.command, m.kind, &m.dirs, &m.post_dirs, m.lock_timeout),
        (&e.command, e.kind, &e.dirs, &e.post_dirs, e.lock_timeout)
    );
    assert_eq!(file.plugins.dir, example.plugins.dir);
    // One PostgreSQL service the platform creates, named after the app.
    let kinds = |d: &DeployFile| -> Vec<Option<String>> {
        d.services
            .iter()
            .map(|s| s.kind().map(String::from))
            .collect()
    };
    assert_eq!(kinds(&file), kinds(&example));
    assert_eq!(file.services[0].name(), "rails-app-db");
    // Every field set is explained where it came from.
    for source in [
        "config/application.rb",
        "config/routes.rb line 2",
        "db/migrate",
        "db/post_migrate",
        "plugins/ directory",
    ] {
        assert!(written.contains(source), "{source} in {written}");
    }

    let plan = f.run(&["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        String::from_utf8_lossy(&plan.stdout).contains("bin/rails db:migrate"),
        "{}",
        text(&plan)
    );

    // The real deploy: Rails on puma, the migration on a PostgreSQL the
    // platform creates, the guard checking it.
    f.plugins(&["migration-guard"]);
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving_on("rails-app", "v1");
    let (status, body) = get(f.router_port, "rails-app", "/up").unwrap();
    // Puma may answer chunked: look for the line, not the whole body.
    assert_eq!(status, 200, "{body}");
    assert!(body.lines().any(|l| l.trim() == "ok"), "{body}");
}

#[test]
fn init_never_overwrites_and_reads_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("manifest.yml"),
        "applications:\n\
         - name: Shop_Web\n  command: python3 app.py\n  health-check-type: http\n  \
         health-check-http-endpoint: /health\n  services: [shop-db]\n  routes: [{route: shop.example.com}]\n\
         - name: shop-worker\n  no-route: true\n  command: python3 worker.py\n",
    )
    .unwrap();
    std::fs::write(d.join("Procfile"), "web: python3 other.py\n").unwrap();
    let out = init(d, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["app"], "shop-web");
    assert_eq!(v["file"], d.join("bluegreen.yaml").to_str().unwrap());
    let field = |name: &str| {
        v["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["field"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no field {name}: {v}"))
    };
    assert_eq!(field("manifest")["value"], "manifest.yml");
    assert_eq!(field("manifest_app")["value"], "Shop_Web");
    assert_eq!(field("health")["value"]["path"], "/health");
    assert!(
        field("app")["from"]
            .as_str()
            .unwrap()
            .contains("manifest.yml"),
        "{v}"
    );
    let written = std::fs::read_to_string(d.join("bluegreen.yaml")).unwrap();
    // The manifest's command and services are not repeated.
    assert!(!written.contains("\ncommand:") && !written.contains("\nservices:"));
    assert!(written.contains("shop-worker"), "{written}");
    let file = DeployFile::load(&d.join("bluegreen.yaml")).unwrap();
    assert_eq!(file.manifest_app.as_deref(), Some("Shop_Web"));
    // A manifest is a Cloud Foundry app: the file targets CF, on the
    // manifest's route (host and domain).
    assert_eq!(file.platform, bluegreen::config::PlatformKind::Cf);
    assert_eq!(
        (file.route_host(), file.route_domain().as_deref()),
        ("shop", Some("example.com"))
    );
    assert_eq!(file.command.as_deref(), Some("python3 app.py"));

    // A second run changes nothing and says which file is in the way.
    let out = init(d, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} already exists",
            d.join("bluegreen.yaml").display()
        )),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("bluegreen.yaml")).unwrap(),
        written
    );
}

#[test]
fn init_starts_a_bare_rack_app_with_rackup_and_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("hello_rack");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("config.ru"),
        "run ->(env) { [200, {}, [\"hi\"]] }\n",
    )
    .unwrap();
    let out = init(&app, &["-q"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    // -q: the result line only.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("Wrote "), "{stdout}");
    let file = DeployFile::load(&app.join("bluegreen.yaml")).unwrap();
    assert_eq!(file.app, "hello-rack");
    assert_eq!(
        file.command.as_deref(),
        Some("exec rackup config.ru -p $PORT -o 127.0.0.1")
    );
    assert_eq!(file.health.path, "/");
    assert!(file.migrate.is_none() && file.services.is_empty());

    // Nothing to start: a warning, and a file that says what to add.
    let empty = tempfile::tempdir().unwrap();
    let out = init(empty.path(), &["--app", "blank"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("warning: no start command found"),
        "{}",
        text(&out)
    );
    let out = init(tempfile::tempdir().unwrap().path(), &["--app", "Not_Valid"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn init_picks_a_rails_61_up_route_over_root_and_warns_without_a_secret_key() {
    let rails_61 = |dir: &Path| {
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(
            dir.join("config/application.rb"),
            "require \"rails\"\nmodule Shop\n  class Application < Rails::Application\n  end\nend\n",
        )
        .unwrap();
        // `/` writes a row per request on this app: never the probe.
        std::fs::write(
            dir.join("config/routes.rb"),
            "Rails.application.routes.draw do\n  root \"visits#create\"\n  \
             get \"/up\", to: proc { [200, {}, [\"ok\"]] }\nend\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("Gemfile"),
            "gem \"rails\", \"~> 6.1.7\"\ngem \"pg\"\n",
        )
        .unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    rails_61(dir.path());
    let out = init(dir.path(), &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let health = v["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "health")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(health["value"]["path"], "/up", "{v}");
    assert!(
        v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("needs SECRET_KEY_BASE")),
        "{v}"
    );
    let written = std::fs::read_to_string(dir.path().join("bluegreen.yaml")).unwrap();
    assert!(written.contains("No secret_key_base found"), "{written}");

    // With the credentials' key there, nothing to warn about.
    let keyed = tempfile::tempdir().unwrap();
    rails_61(keyed.path());
    std::fs::write(keyed.path().join("config/master.key"), "0123\n").unwrap();
    let out = succeeded(init(keyed.path(), &["--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !v["warnings"].to_string().contains("SECRET_KEY_BASE"),
        "{v}"
    );
}
