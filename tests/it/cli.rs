//! The `bluegreen plugin` commands as users run them: exit codes, output,
//! `--json`, and errors that say what to fix.

use crate::util::*;
use std::path::Path;
use std::process::{Command, Output};

fn bluegreen(cache: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(args)
        .env("BLUEGREEN_CACHE_DIR", cache)
        .output()
        .expect("running bluegreen")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

#[test]
fn check_validates_a_directory_and_fills_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let dir = component("hello").parent().unwrap().to_path_buf();
    let out = bluegreen(cache.path(), &["plugin", "check", dir.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("plugin `hello`")
            && stdout.contains("plugin `http-probe`")
            && stdout.contains("plugin `migration-guard`"),
        "{stdout}"
    );
    assert!(stdout.contains("hooks:   health-check\n"), "{stdout}");
    assert!(stdout.contains("compiled in"), "{stdout}");

    let again = bluegreen(
        cache.path(),
        &["plugin", "check", "--json", dir.to_str().unwrap()],
    );
    let lines: Vec<serde_json::Value> = text(&again)
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for plugin in &lines {
        assert_eq!(plugin["valid"], true);
        assert_eq!(plugin["cache"], "hit", "{plugin}");
        assert_eq!(plugin["sha256"].as_str().unwrap().len(), 64);
    }
}

#[test]
fn check_exits_2_naming_what_is_wrong() {
    let cache = shared_cache_dir();
    let out = bluegreen(
        &cache,
        &["plugin", "check", component("no-hooks").to_str().unwrap()],
    );
    let (stdout, _) = text(&out);
    assert_eq!(code(&out), 2);
    assert!(
        stdout.contains("✗") && stdout.contains("exports none of the hook interfaces"),
        "{stdout}"
    );

    let out = bluegreen(
        &cache,
        &[
            "plugin",
            "check",
            "--json",
            component("mismatch").to_str().unwrap(),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(text(&out).0.trim()).unwrap();
    assert_eq!(
        (code(&out), &v["error"]),
        (2, &serde_json::json!("world-mismatch"))
    );
}

#[test]
fn run_exit_codes_follow_the_verdict() {
    let cache = shared_cache_dir();
    let hello = component("hello");
    let hostile = component("hostile");
    let out = bluegreen(
        &cache,
        &[
            "plugin",
            "run",
            hello.to_str().unwrap(),
            "--hook",
            "pre-push",
            "--setting",
            "k=v",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stderr}");
    assert!(
        stdout.contains("verdict: proceed") && stdout.contains("log info: hello from pre-push"),
        "{stdout}"
    );

    let out = bluegreen(
        &cache,
        &[
            "plugin",
            "run",
            hostile.to_str().unwrap(),
            "--hook",
            "pre-deploy",
            "--setting",
            "attack=block",
        ],
    );
    assert_eq!(code(&out), 3);
    assert!(text(&out).0.contains("verdict: block: blocked on purpose"));

    let out = bluegreen(
        &cache,
        &[
            "plugin",
            "run",
            hostile.to_str().unwrap(),
            "--hook",
            "pre-deploy",
            "--setting",
            "attack=loop",
            "--timeout",
            "200ms",
        ],
    );
    let (_, stderr) = text(&out);
    assert_eq!(code(&out), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: plugin `hostile` at hook `pre-deploy` timed out after 200ms"),
        "{stderr}"
    );

    let out = bluegreen(
        &cache,
        &[
            "plugin",
            "run",
            hostile.to_str().unwrap(),
            "--hook",
            "pre-deploy",
            "--setting",
            "attack=trap",
            "--on-error",
            "warn",
            "--json",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(text(&out).0.trim()).unwrap();
    assert_eq!(code(&out), 0);
    assert_eq!(v["verdict"], "proceed");
    assert_eq!(v["findings"][0]["rule"], "plugin-trap");
}

#[test]
fn run_against_a_real_server_with_a_context_file() {
    let cache = shared_cache_dir();
    let server = TestServer::start(503, "warming up");
    let dir = tempfile::tempdir().unwrap();
    let context = dir.path().join("ctx.json");
    std::fs::write(
        &context,
        format!(
            r#"{{"target": {{"candidate_url": "{}"}}, "attempt": 2}}"#,
            server.url()
        ),
    )
    .unwrap();
    let probe = component("http-probe");
    let args = [
        "plugin",
        "run",
        probe.to_str().unwrap(),
        "--hook",
        "health-check",
        "--context",
        context.to_str().unwrap(),
        "--allow-http",
        &server.url(),
        "--json",
    ];
    let out = bluegreen(&cache, &args);
    assert_eq!(code(&out), 75, "{:?}", text(&out));
    let v: serde_json::Value = serde_json::from_str(text(&out).0.trim()).unwrap();
    assert_eq!(
        (v["verdict"].as_str(), v["detail"].as_u64()),
        (Some("retry-after-ms"), Some(500))
    );
    assert_eq!(v["plugin"], "http-probe");
    assert_eq!(server.hits(), 1);
}

#[test]
fn bad_input_exits_2_and_says_how_to_fix_it() {
    let cache = shared_cache_dir();
    let hello = component("hello");
    let h = hello.to_str().unwrap();
    let probe = component("http-probe");
    let dir = tempfile::tempdir().unwrap();
    let bad_ctx = dir.path().join("ctx.yaml");
    std::fs::write(&bad_ctx, "deploy:\n  app: shop\n  colour: blue\n").unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["plugin", "run", h, "--hook", "post-push"],
            "unknown hook `post-push`; expected one of: pre-deploy",
        ),
        (
            vec![
                "plugin",
                "run",
                h,
                "--hook",
                "pre-deploy",
                "--memory",
                "lots",
            ],
            "write e.g. `64MiB`",
        ),
        (
            vec![
                "plugin",
                "run",
                h,
                "--hook",
                "pre-deploy",
                "--allow-http",
                "127.0.0.1:80",
            ],
            "expected an origin like http://127.0.0.1:8080",
        ),
        (
            vec![
                "plugin",
                "run",
                h,
                "--hook",
                "pre-deploy",
                "--grant-dir",
                "/no/such/dir",
            ],
            "grant-dir `/no/such/dir`",
        ),
        (
            vec![
                "plugin",
                "run",
                h,
                "--hook",
                "pre-deploy",
                "--context",
                bad_ctx.to_str().unwrap(),
            ],
            "unknown field `colour`",
        ),
        (
            vec![
                "plugin",
                "run",
                h,
                "--hook",
                "pre-deploy",
                "--context",
                "/no/such.json",
            ],
            "/no/such.json",
        ),
        (
            vec!["plugin", "run", "/no/plugin.wasm", "--hook", "pre-deploy"],
            "/no/plugin.wasm",
        ),
        (
            vec![
                "plugin",
                "run",
                probe.to_str().unwrap(),
                "--hook",
                "pre-deploy",
            ],
            "does not handle the `pre-deploy` hook",
        ),
    ];
    for (args, expected) in cases {
        let out = bluegreen(&cache, &args);
        let (_, stderr) = text(&out);
        assert_eq!(code(&out), 2, "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected {expected:?} in {stderr}"
        );
    }
}
