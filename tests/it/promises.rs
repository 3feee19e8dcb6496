//! Defect 11 of «7 · Hardening»: what the README promises and no test
//! exercised in a real deploy — a plugin that traps (with `on_error` block
//! and warn), `retry-after` at `health-check`, drain, and release ids
//! without `--release`.

use crate::deploy::{Fixture, events, get, text};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::Duration;

#[test]
fn a_plugin_that_traps_fails_the_deploy_unless_it_is_set_to_warn() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    f.plugins(&["hostile"]);
    f.write_file(
        "plugins: { dir: plugins, config: { hostile: { settings: { attack: trap } } } }\n",
    );
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("trapped"), "{}", text(&out));
    f.assert_serving("v1");

    f.write_file(
        "plugins: { dir: plugins, config: { hostile: { settings: { attack: trap }, on_error: warn } } }\n",
    );
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let warned = events(&out)
        .into_iter()
        .find(|e| e["plugin"] == "hostile")
        .unwrap();
    assert_eq!(warned["findings"][0]["rule"], "plugin-trap", "{warned}");
    f.assert_serving("v2");
}

/// `/ready` answers 503 for the first 2 s of the process, then 200; the
/// built-in probe (`/health`) passes at once.
fn slow_starter() -> String {
    crate::util::py_app_with(
        "BOOT = time.time()",
        r#"ready = self.path != "/ready" or time.time() - BOOT > 2.0"#,
        "200 if ready else 503",
        r#""release %s %s\n" % (os.environ.get("BLUEGREEN_RELEASE"), os.environ.get("BLUEGREEN_COLOR"))"#,
    )
}

#[test]
fn health_check_retry_after_polls_again_until_the_candidate_is_ready() {
    retry_after_until_ready(Fixture::new(""));
}

/// The same as `platform: cf`: the plugin's requests go over https to the
/// candidate's own route, under the CA the host trusts.
#[test]
fn as_cf_health_check_retry_after_polls_again_until_the_candidate_is_ready() {
    retry_after_until_ready(Fixture::new_cf(""));
}

fn retry_after_until_ready(f: Fixture) {
    std::fs::write(f.root.path().join("app/app.py"), slow_starter()).unwrap();
    f.plugins(&["http-probe"]);
    f.write_file(
        "plugins: { dir: plugins, config: { http-probe: { allow_http: [candidate], \
         settings: { paths: /ready, retry-after-ms: \"200\" } } } }\n",
    );
    let out = f.run(&["deploy", "--release", "v1", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let verdicts: Vec<String> = events(&out)
        .into_iter()
        .filter(|e| e["hook"] == "health-check" && e["color"] == "blue")
        .map(|e| e["verdict"].as_str().unwrap().to_string())
        .collect();
    assert!(verdicts.len() >= 3, "{verdicts:?}");
    assert!(
        verdicts[..verdicts.len() - 1]
            .iter()
            .all(|v| v == "retry-after"),
        "{verdicts:?}"
    );
    assert_eq!(verdicts.last().unwrap(), "proceed");
    f.assert_serving("v1");
}

/// Fires `n` GETs of `/slow?ms=3000` through the route at once; returns
/// their threads.
fn slow_requests(
    port: u16,
    n: usize,
) -> Vec<std::thread::JoinHandle<Result<(u16, String), String>>> {
    (0..n)
        .map(|_| std::thread::spawn(move || get(port, "shop", "/slow?ms=3000")))
        .collect()
}

/// Waits (bounded) until the router counts `n` requests in flight: the
/// slow requests reached the apps before the deploy starts.
fn in_flight(f: &Fixture, n: u64) {
    crate::util::wait_until(
        &format!("{n} requests in flight"),
        Duration::from_secs(30),
        || f.inflight() >= n,
    );
}

#[test]
fn drain_waits_for_requests_in_flight_and_without_it_they_are_cut() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let drain_ms = |out: &Output| {
        events(out)
            .into_iter()
            .find(|e| e["step"] == "drain" && e["status"] == "done")
            .unwrap()["duration_ms"]
            .as_f64()
            .unwrap()
    };
    let file = std::fs::read_to_string(&f.file).unwrap();
    std::fs::write(&f.file, file.replace("drain: 2s", "drain: 10s")).unwrap();
    let slow = slow_requests(f.router_port, 8);
    in_flight(&f, 8);
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let answers: Vec<_> = slow.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(
        answers.iter().all(|a| matches!(a, Ok((200, _)))),
        "{answers:?}"
    );
    let cut_warning = |out: &Output| -> Vec<Value> {
        events(out)
            .into_iter()
            .filter(|e| e["event"] == "warning" && e["rule"] == "drain-cut")
            .collect()
    };
    assert_eq!(cut_warning(&out), Vec::<Value>::new(), "nothing was cut");
    let waited = drain_ms(&out);
    assert!(
        (500.0..10_000.0).contains(&waited),
        "the drain took {waited} ms"
    );

    // The control: the same requests with no drain are cut by the restart.
    let file = std::fs::read_to_string(&f.file).unwrap();
    std::fs::write(&f.file, file.replace("drain: 10s", "drain: 0s")).unwrap();
    let slow = slow_requests(f.router_port, 8);
    in_flight(&f, 8);
    let out = f.run(&["deploy", "--release", "v3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let cut = slow
        .into_iter()
        .map(|t| t.join().unwrap())
        .filter(|a| !matches!(a, Ok((200, _))))
        .count();
    assert!(
        cut > 0,
        "without a drain no request was cut: the check above proves nothing"
    );
    // And the deploy said so: which color, how many were in flight.
    let warned = cut_warning(&out);
    assert!(!warned.is_empty(), "no drain-cut warning: {}", text(&out));
    assert!(
        warned
            .iter()
            .all(|w| w["inflight"].as_u64() > Some(0) && w["drain_ms"] == 0),
        "{warned:?}"
    );
}

fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org", "-C"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn without_release_the_id_is_the_clean_commit_else_a_content_hash() {
    let f = Fixture::new("");
    let root = f.root.path();
    git(root, &["init", "-q"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "v1"]);
    let commit = git(root, &["rev-parse", "--short=12", "HEAD"]);
    assert_eq!(f.run(&["deploy"]).status.code(), Some(0));
    f.assert_serving(&commit);

    // Uncommitted changes: the commit would lie, so the content names it,
    // the same content the same way.
    std::fs::write(root.join("app/NOTES"), "uncommitted\n").unwrap();
    assert_eq!(f.run(&["deploy"]).status.code(), Some(0));
    let first = f.status()["colors"][0]["release"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        first.starts_with("content-") && first.len() == 20,
        "{first}"
    );
    let plan: Value = serde_json::from_slice(&f.run(&["plan", "--json"]).stdout).unwrap();
    assert_eq!(plan["release"], first.as_str());
    std::fs::write(root.join("app/NOTES"), "changed again\n").unwrap();
    let plan: Value = serde_json::from_slice(&f.run(&["plan", "--json"]).stdout).unwrap();
    assert_ne!(plan["release"], first.as_str());
}
