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
    // One line per component built into the directory (more join it as
    // plugins are added).
    let built = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "wasm")
        })
        .count();
    assert!(built >= 3, "{built}");
    assert_eq!(lines.len(), built);
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
            "invalid value 'post-push' for '--hook <HOOK>'",
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

// ---- Command-line conventions: completions, --json, -q/-v, colour, pipes.

/// A deploy file (for commands that read one) in a fresh directory, and a
/// platform home of its own with nothing running.
fn app_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bluegreen.yaml"), "app: shop\n").unwrap();
    dir
}

fn in_app(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
    c.args(args)
        .current_dir(dir)
        .env("BLUEGREEN_HOME", dir.join("home"))
        .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(std::process::Stdio::null());
    c
}

fn json_of(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {:?}", text(out)))
}

#[test]
fn completions_for_bash_zsh_and_fish_know_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = bluegreen(Path::new("/nonexistent"), &["completions", shell]);
        let (stdout, stderr) = text(&out);
        assert_eq!(code(&out), 0, "{shell}: {stderr}");
        for word in ["deploy", "rollback", "init", "json", "quiet"] {
            assert!(stdout.contains(word), "{shell}: no {word} in {stdout}");
        }
        // `bluegreen logs` («19 · The first hour»), with its colors.
        let logs = match shell {
            "bash" => "bluegreen,logs)",
            "zsh" => "'logs:The output of the deploy file",
            _ => "__fish_bluegreen_using_subcommand logs\" -l color",
        };
        assert!(stdout.contains(logs), "{shell}: no {logs} in {stdout}");
        assert!(
            stdout.contains("blue") && stdout.contains("green"),
            "{shell}"
        );
    }
    let out = bluegreen(Path::new("/nonexistent"), &["completions", "tcsh"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn colour_follows_no_color_and_clicolor_force() {
    let hello = component("hello");
    let dir = app_dir();
    let run = |env: &[(&str, &str)]| {
        let mut c = in_app(dir.path(), &["plugin", "check", hello.to_str().unwrap()]);
        c.envs(env.iter().copied());
        let out = c.output().unwrap();
        assert_eq!(code(&out), 0, "{:?}", text(&out));
        text(&out).0
    };
    // Not a terminal: no colour unless forced.
    assert!(!run(&[]).contains('\x1b'));
    assert!(run(&[("CLICOLOR_FORCE", "1")]).contains("\x1b[32m✓\x1b[0m"));
    assert!(!run(&[("CLICOLOR_FORCE", "0")]).contains('\x1b'));
    assert!(!run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]).contains('\x1b'));
    // An empty NO_COLOR is as if unset.
    assert!(run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "")]).contains('\x1b'));
}

/// Waits (bounded) for a child and returns its status and stderr.
fn finish(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status, stderr);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("bluegreen did not end after its reader closed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_reader_that_closes_early_ends_the_command_quietly() {
    use std::io::BufRead;
    use std::process::Stdio;
    let dir = app_dir();
    // A history far larger than a pipe's buffer, so the writer is still
    // writing when the reader goes.
    let history = dir.path().join("home/deploys/shop");
    std::fs::create_dir_all(&history).unwrap();
    let lines: String = (0..3000)
        .map(|i| {
            format!(
                "{}\n",
                serde_json::json!({"id": format!("d{i}"), "kind": "deploy",
                    "release": format!("r{i}"), "previous_release": null, "result": "done",
                    "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:00:01Z",
                    "duration_ms": 1000, "droplets": {}, "releases": {},
                    "migration_version": null, "message": "x".repeat(200)})
            )
        })
        .collect();
    std::fs::write(history.join("history.jsonl"), lines).unwrap();

    let mut child = in_app(dir.path(), &["history", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: like `| head -1`.
    let entry: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(entry["release"], "r0");
    let (status, stderr) = finish(child);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");

    // Completions into a reader that closes before the first byte.
    let mut child = in_app(dir.path(), &["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let (status, stderr) = finish(child);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn json_from_commands_that_had_none() {
    let dir = app_dir();
    let d = dir.path();
    // Not deployed, no platform: the same shape a deployed app has, and
    // exit 5 (the route does not serve).
    let out = in_app(d, &["status", "--json"]).output().unwrap();
    assert_eq!(code(&out), 5, "{:?}", text(&out));
    let v = json_of(&out);
    assert_eq!(
        (&v["app"], &v["colors"], &v["route_url"]),
        (
            &"shop".into(),
            &serde_json::json!([]),
            &serde_json::Value::Null
        )
    );
    let out = succeeded(
        in_app(d, &["unlock", "--force", "--json"])
            .output()
            .unwrap(),
    );
    assert_eq!(json_of(&out)["unlocked"], false);
    let out = in_app(d, &["platform", "status", "--json"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert_eq!(json_of(&out)["running"], false);
    let out = succeeded(in_app(d, &["platform", "stop", "--json"]).output().unwrap());
    assert_eq!(json_of(&out)["status"], "not-running");
    let out = in_app(d, &["history", "--json"]).output().unwrap();
    assert_eq!(
        (code(&out), out.stdout.len()),
        (0, 0),
        "no entries, no lines"
    );
    let out = in_app(d, &["plugin", "new", "frozen", "--lang", "rust", "--json"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!((&v["name"], &v["lang"]), (&"frozen".into(), &"rust".into()));
    assert!(
        v["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "src/lib.rs"),
        "{v}"
    );
    assert!(d.join("frozen/src/lib.rs").is_file());
    let out = in_app(d, &["init", "-C", "frozen", "--app", "frozen", "--json"])
        .output()
        .unwrap();
    assert_eq!(json_of(&out)["app"], "frozen");
    // A platform started and stopped with --json (stopped again on the way
    // out should an assertion fail first; a stop that fails says so).
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            stop_platform(&self.0.join("home"));
        }
    }
    let _stop = Stop(d);
    let out = in_app(d, &["platform", "start", "--router-port", "0", "--json"])
        .output()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["status"], "running", "{v}");
    assert!(v["router_port"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["api_url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    let out = succeeded(in_app(d, &["platform", "stop", "--json"]).output().unwrap());
    assert_eq!(json_of(&out)["status"], "stopped");
    // -q and -v are global and exclusive.
    let out = in_app(d, &["status", "-q", "-v"]).output().unwrap();
    assert_eq!(code(&out), 2);
}

#[test]
fn quiet_verbose_and_colour_on_a_real_deploy() {
    let f = crate::deploy::Fixture::new("");
    f.plugins(&["hello"]);
    // -q: the result line and nothing else.
    let out = f.run(&["deploy", "--release", "r1", "-q"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stdout.starts_with("Done in ") && stdout.contains("release r1"),
        "{stdout}"
    );

    // -v: each API call on stderr, each plugin log line under its step.
    let out = f.run(&["deploy", "--release", "r2", "-v"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), 0, "{stderr}");
    assert!(stderr.contains("· GET http://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("/v3/apps"), "{stderr}");
    assert!(
        stdout.contains("hello log info: hello from pre-push"),
        "{stdout}"
    );

    // --json with -v or -q: the same events, one JSON object a line.
    for flag in ["-v", "-q"] {
        let out = f.run(&["deploy", "--release", "r3", "--json", flag]);
        assert_eq!(code(&out), 0, "{:?}", text(&out));
        let events = crate::deploy::json_lines(&out.stdout);
        assert_eq!(
            text(&out).0.lines().count(),
            events.len(),
            "{flag}: every line is JSON"
        );
        assert_eq!(events.last().unwrap()["status"], "done");
    }

    // Colour: forced through a pipe, and NO_COLOR wins.
    let mut c = f.cmd(&["deploy", "--release", "r4"]);
    c.env_remove("NO_COLOR").env("CLICOLOR_FORCE", "1");
    let out = c.output().unwrap();
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    assert!(
        text(&out).0.contains("\x1b[32m✓\x1b[0m"),
        "{:?}",
        text(&out)
    );
    let out = succeeded(f.run(&["deploy", "--release", "r5"]));
    assert!(
        !text(&out).0.contains('\x1b'),
        "NO_COLOR=1 is set by the fixture"
    );

    // JSON from the platform commands, with the platform running.
    let out = f.run(&["platform", "status", "--json"]);
    let v = json_of(&out);
    assert_eq!(v["running"], true);
    assert_eq!(v["router_port"], f.router_port);
    assert!(
        v["apps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "shop-blue"),
        "{v}"
    );
    let out = f.run(&["platform", "logs", "shop-blue", "--json"]);
    assert_eq!(code(&out), 0, "{:?}", text(&out));
    let lines = crate::deploy::json_lines(&out.stdout);
    assert_eq!(
        lines.len(),
        text(&out).0.lines().count(),
        "every line is JSON"
    );
    assert!(lines.iter().all(|l| l["app"] == "shop-blue"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l["line"].as_str().unwrap().contains("started")),
        "{lines:?}"
    );
    let out = f.run(&["history", "-q"]);
    let history = text(&out).0;
    for release in ["r1", "r2", "r3", "r4", "r5"] {
        assert!(
            history.contains(&format!(" {release} ")),
            "-q keeps the result: {history}"
        );
    }
}
