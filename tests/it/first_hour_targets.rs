//! «19 · The first hour», going back and naming where: a rollback under
//! `strategy: canary` is a plain blue-green to a release that served
//! before (no steps, no analysis windows) unless `--analyze` asks; `-o` and
//! `-s` name the Cloud Foundry org and space, one without the other refused;
//! `plan` names the target and refuses what the deploy would trip on.

use crate::deploy::{Fixture, events, text};
use std::time::Instant;

const CANARY: &str =
    "strategy: canary\nsteps: [10, 50, 100]\nanalysis: { duration: 3s, on_inconclusive: warn }\n";

fn kinds(out: &std::process::Output) -> Vec<String> {
    events(out)
        .into_iter()
        .filter(|e| e["event"] == "step" && e["status"] == "done")
        .map(|e| e["step"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_canary_rollback_is_a_plain_blue_green_unless_asked_to_judge() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    crate::deploy::write_file(&f, "", CANARY);
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let t = Instant::now();
    let out = f.run(&["rollback", "--json"]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let steps = kinds(&out);
    for judged in ["weigh", "analyze", "baseline", "watch"] {
        assert!(!steps.iter().any(|s| s == judged), "{judged}: {steps:?}");
    }
    assert_eq!(steps.iter().filter(|s| *s == "map").count(), 2, "{steps:?}");
    f.assert_serving("v1");
    println!("a plain rollback under strategy: canary took {took:.1?}");

    // Asked to judge it: the file's steps and windows.
    let out = f.run(&["rollback", "--to", "v2", "--analyze", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let steps = kinds(&out);
    assert_eq!(
        steps.iter().filter(|s| *s == "weigh").count(),
        3,
        "{steps:?}"
    );
    f.assert_serving("v2");
}

#[test]
fn org_and_space_flags_name_the_target_and_one_alone_is_refused() {
    let f = Fixture::new_cf("");
    let out = f.run(&["deploy", "--release", "v1", "-o", "local"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--space"), "{}", text(&out));
    // A space that does not exist: named in the error, nothing deployed.
    let out = f.run(&["deploy", "--release", "v1", "-o", "local", "-s", "nowhere"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("space `nowhere`"), "{}", text(&out));
    let out = f.run(&[
        "deploy",
        "--release",
        "v1",
        "--org",
        "local",
        "--space",
        "local",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v1");
}

#[test]
fn plan_names_the_target_and_refuses_what_the_deploy_would_trip_on() {
    let f = Fixture::new("");
    let out = f.run(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "Target: the local platform, route http://shop.apps.localhost:{}",
            f.router_port
        )),
        "{said}"
    );
    assert!(said.contains("(now: nothing deployed)"), "{said}");

    // No start command, and a service that is not there and has no type.
    std::fs::remove_file(f.root.path().join("app/Procfile")).unwrap();
    crate::deploy::write_file(&f, "", "services: [orders-db]\n");
    let out = f.run(&["plan", "--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("no start command"), "{problems:?}");
    assert!(problems[1].contains("`orders-db`"), "{problems:?}");
    // For people: on stderr, as errors are (the fuzz test found a plan whose
    // only error went to stdout), each naming the deploy file.
    let out = f.run(&["plan"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!stdout.contains("Problem:"), "{stdout}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("Problem: "))
        .collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines.iter().all(|l| l.contains("bluegreen.yaml")),
        "{stderr}"
    );
}

#[test]
fn plan_says_it_could_not_look_when_the_foundation_does_not_answer() {
    let f = Fixture::new_cf("");
    let mut cmd = f.cmd(&["plan"]);
    // An API nobody listens on (a port just released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    cmd.env("CF_API", format!("https://127.0.0.1:{port}"));
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("now: unknown: could not look"), "{said}");
    assert!(!said.contains("now: nothing"), "{said}");
}

#[test]
fn with_several_domains_the_route_names_one_or_the_deploy_is_refused_with_the_list() {
    let mut f = Fixture::new_cf("");
    f.restart_platform_with(&[(bluegreen::platform::local::faults::ENV, "1")]);
    let client = crate::cf_native::api(&f);
    crate::cf_native::block_on(async {
        let _: serde_json::Value = client
            .call(
                reqwest::Method::PUT,
                bluegreen::platform::local::faults::PATH,
                Some(&serde_json::json!({"extra_domains": ["apps.internal"]})),
            )
            .await
            .unwrap();
    });
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("2 domains (apps.localhost, apps.internal)"),
        "{}",
        text(&out)
    );
    crate::deploy::write_file(&f, "", "domain: apps.nowhere\n");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("no domain `apps.nowhere`"),
        "{}",
        text(&out)
    );
    crate::deploy::write_file(&f, "", "route: shop.apps.localhost\n");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v1");
}

/// A trapping plugin's error: the trap and the plugin's own frames first,
/// bluegreen's Rust backtrace (which `RUST_BACKTRACE=1` captures) only with
/// `-v`.
#[test]
fn a_trap_shows_the_plugins_frames_and_host_frames_only_with_v() {
    let hostile = crate::util::component("hostile");
    let run = |verbose: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"));
        cmd.args(["plugin", "run"])
            .arg(&hostile)
            .args(["--hook", "pre-deploy", "--setting", "attack=trap"])
            .env("RUST_BACKTRACE", "1")
            .env("BLUEGREEN_CACHE_DIR", crate::util::shared_cache_dir());
        if verbose {
            cmd.arg("-v");
        }
        cmd.output().unwrap()
    };
    let out = run(false);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("wasm trap"), "{said}");
    assert!(said.contains("hostile"), "the guest's frames: {said}");
    assert!(!said.contains("host backtrace"), "{said}");
    assert!(
        !said.contains("bluegreen::plugin"),
        "no host frames: {said}"
    );
    let verbose = text(&run(true));
    assert!(verbose.contains("host backtrace"), "{verbose}");
}
