//! Text and identities from others, taken at their word before (defects 5
//! and 7 of «12 · Hardening, round two»): escape sequences from a plugin's
//! `err`, its stderr, its block reasons, findings and log, and from an app's
//! log, on a stream where nothing strips them (`CLICOLOR_FORCE`, as on a
//! terminal); the deploy lock's holder in another container or an earlier
//! boot; a world-readable `state.db`; the API token sent to a log-cache
//! over plain http; a Procfile `init` could not write back as YAML.

use crate::deploy::{Fixture, text};
use crate::util::{component, exits, py_app_with, shared_cache_dir, succeeded};
use bluegreen::deploy::lock::{LockGuard, Store, hostname};
use bluegreen::platform::lease::{Lease, ProcessIdentity, unix_now};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// What a hostile plugin or app prints: a window title (OSC … BEL), clear
/// screen and home, a colour, a C1 CSI (`\u{9b}`), DEL, a carriage return
/// that would overwrite the line, and a right-to-left override.
const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[35mall good\u{9b}31m\x7f\rX\u{202e}kcolb";

/// How `crate::output::printable` shows the start of [`HOSTILE`].
const SHOWN: &str = "\\u{1b}]0;pwned\\u{7}\\u{1b}[2J";

/// The escape sequences bluegreen writes itself (`output::paint`'s colours).
const OURS: [&str; 5] = ["\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[2m", "\x1b[0m"];

/// The characters in `bytes` a terminal would act on, once bluegreen's own
/// colours are taken out: control characters but the newline, and the bidi
/// overrides.
fn raw_controls(bytes: &[u8]) -> Vec<char> {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    for sgr in OURS {
        text = text.replace(sgr, "");
    }
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

/// Asserts `out` (both streams) carries nothing raw and shows the escaped
/// form where it shows the text at all.
fn assert_escaped(out: &Output, what: &str) {
    for (name, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let raw = raw_controls(bytes);
        assert!(
            raw.is_empty(),
            "{what}: raw {raw:?} on {name}\n{}",
            text(out)
        );
    }
    assert!(
        text(out).contains(SHOWN),
        "{what}: no escaped text\n{}",
        text(out)
    );
}

/// `cmd` writing colour as on a terminal: the colour rule keeps every
/// escape sequence (nothing is stripped on the way out).
fn as_on_a_terminal(mut cmd: Command) -> Output {
    cmd.env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running bluegreen")
}

fn plugin_run(extra: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
    cmd.args(["plugin", "run"])
        .arg(component("hostile"))
        .args(["--hook", "pre-deploy", "--setting", "attack=text"])
        .arg(format!("--setting=text={HOSTILE}"))
        .args(extra)
        .env("BLUEGREEN_CACHE_DIR", shared_cache_dir());
    as_on_a_terminal(cmd)
}

#[test]
fn defect_5_a_plugins_err_stderr_and_findings_reach_the_terminal_escaped() {
    // `err(...)` and the stderr tail, in the error chain `main` prints.
    let out = plugin_run(&["--setting", "answer=err"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_escaped(&out, "err");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("reported an error: \\u{1b}]0;"), "{stderr}");
    assert!(
        stderr.contains("plugin stderr:\n    \\u{1b}]0;"),
        "{stderr}"
    );

    // The same failure as a warning finding (`on_error: warn`).
    let out = plugin_run(&["--setting", "answer=err", "--on-error", "warn"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_escaped(&out, "on_error warn");

    // A block: its reason, a finding's rule, message, file and fix, the log
    // line, stdout and stderr.
    let out = plugin_run(&["--setting", "answer=block"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert_escaped(&out, "block");
    let shown = String::from_utf8_lossy(&out.stdout);
    for line in ["block: ", "log warning: ", "stdout: ", "stderr: "] {
        assert!(shown.contains(&format!("{line}{SHOWN}")), "{line}\n{shown}");
    }

    // `--json`: the exact text, JSON-escaped (C1 and DEL too).
    let out = plugin_run(&["--setting", "answer=block", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(raw_controls(&out.stdout).is_empty(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["detail"], HOSTILE, "{v}");
    assert_eq!(v["findings"][0]["message"], HOSTILE, "{v}");
}

#[test]
fn defect_5_a_deploy_and_platform_logs_show_plugin_and_app_text_escaped() {
    // An app that prints the same at start, and a deploy that serves it.
    let f = Fixture::new("");
    let app = py_app_with(
        r#"print("\x1b]0;pwned\x07\x1b[2J\x1b[H\x1b[35mall good\x9b31m\x7f\rX\u202ekcolb", flush=True)"#,
        "pass",
        "200",
        r#""ok\n""#,
    );
    std::fs::write(f.root.path().join("app/app.py"), app).unwrap();
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = as_on_a_terminal(f.cmd(&["platform", "logs", "shop-blue"]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_escaped(&out, "platform logs");
    let out = succeeded(as_on_a_terminal(f.cmd(&[
        "platform",
        "logs",
        "shop-blue",
        "--json",
    ])));
    assert!(raw_controls(&out.stdout).is_empty(), "{}", text(&out));
    let lines = crate::deploy::json_lines(&out.stdout);
    assert!(lines.iter().any(|l| l["line"] == HOSTILE), "{lines:?}");

    // The plugin in a deploy: an `err` (the step's error, the chain `main`
    // prints) and a block with -v (reason, findings, log, output).
    f.plugins(&["hostile"]);
    let yaml_text = r#""\e]0;pwned\a\e[2J\e[H\e[35mall good\u009b31m\x7f\rX\u202Ekcolb""#;
    for answer in ["err", "block"] {
        f.write_file(&format!(
            "plugins: {{ dir: plugins, config: {{ hostile: {{ settings: \
             {{ attack: text, answer: {answer}, text: {yaml_text} }} }} }} }}\n"
        ));
        let out = as_on_a_terminal(f.cmd(&["deploy", "--release", "v2", "-v"]));
        assert_ne!(out.status.code(), Some(0), "{}", text(&out));
        assert_escaped(&out, answer);
        // An error is exit 1, a block exit 3 (and not, say, a crash).
        let code = if answer == "err" { 1 } else { 3 };
        let out = exits(
            as_on_a_terminal(f.cmd(&["deploy", "--release", "v2", "--json"])),
            code,
        );
        assert!(raw_controls(&out.stdout).is_empty(), "{}", text(&out));
        assert!(raw_controls(&out.stderr).is_empty(), "{}", text(&out));
    }
}

/// A lease of `shop` held by `pid` on this host, known as `process`.
fn held_by(id: &str, pid: u32, process: Option<ProcessIdentity>) -> Lease {
    Lease {
        id: id.into(),
        app: "shop".into(),
        host: hostname(),
        pid,
        command: "bluegreen deploy".into(),
        since: "2026-01-01T00:00:00Z".into(),
        expires: unix_now() + 60,
        process,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn defect_7_the_deploy_lock_tells_holders_apart_by_boot_pid_namespace_and_start_time() {
    let f = Fixture::new("");
    let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let live = ProcessIdentity::of(sleeper.id()).expect("/proc tells the sleeper");
    let ended = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let me = held_by("mine", std::process::id(), ProcessIdentity::this());
    // Whether a deploy of ours gets the lock `theirs` holds, at once.
    let take = |theirs: Lease| {
        let client = client.clone();
        let me = me.clone();
        async move {
            client.release_local("shop", None).await.unwrap();
            assert!(client.lease_local(&theirs, None).await.unwrap().acquired);
            let got = LockGuard::acquire(client, Store::Local, me, Duration::ZERO, None).await;
            match got {
                Ok(guard) => {
                    guard.release().await.unwrap();
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
    };

    // Another container sharing the host name: its pid is not ours to look
    // up (here no process has it), so its lease is left to expire.
    let other_ns = ProcessIdentity {
        pid_ns: "pid:[4026500001]".into(),
        ..live.clone()
    };
    let refused = take(held_by("theirs", ended, Some(other_ns)))
        .await
        .expect_err("a holder in another pid namespace is not judged gone");
    assert!(refused.contains("another pid namespace"), "{refused}");

    // A holder from an earlier boot is gone, even where its pid runs now.
    let rebooted = ProcessIdentity {
        boot_id: "00000000-0000-4000-8000-000000000000".into(),
        ..live.clone()
    };
    take(held_by("theirs", sleeper.id(), Some(rebooted)))
        .await
        .expect("a holder from an earlier boot is taken over");

    // Its pid now belongs to a later process: gone.
    let earlier = ProcessIdentity {
        started: live.started - 1,
        ..live.clone()
    };
    take(held_by("theirs", sleeper.id(), Some(earlier)))
        .await
        .expect("a holder whose pid was reused is taken over");

    // The running holder itself keeps its lock.
    let refused = take(held_by("theirs", sleeper.id(), Some(live)))
        .await
        .expect_err("a running holder keeps its lock");
    assert!(refused.contains("wait for it"), "{refused}");
    let _ = sleeper.kill();
    let _ = sleeper.wait();
}

/// The local platform of one test, stopped when dropped.
struct Platform(tempfile::TempDir);

impl Platform {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
        c.args(args)
            .env("BLUEGREEN_HOME", self.0.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        crate::util::stop_platform(self.0.path());
    }
}

#[test]
fn defect_7_state_db_is_created_private_with_its_journal_files() {
    let p = Platform(tempfile::tempdir().unwrap());
    let mut start = p.cmd(&["platform", "start", "--router-port", "0"]);
    // SAFETY: umask is async-signal-safe; 022 is the usual mask, under
    // which the store came out 0644.
    unsafe {
        start.pre_exec(|| {
            libc::umask(0o022);
            Ok(())
        });
    }
    let out = start.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = p.0.path().join("platform");
    let mode = |name: &str| {
        std::fs::metadata(dir.join(name))
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    };
    assert_eq!(mode("state.db"), Some(0o600));
    for journal in ["state.db-wal", "state.db-shm", "state.db-journal"] {
        assert!(matches!(mode(journal), None | Some(0o600)), "{journal}");
    }
    assert_eq!(mode("state.db-wal"), Some(0o600), "WAL mode keeps one");
}

#[tokio::test]
async fn defect_7_the_cf_client_sends_no_token_to_an_http_log_cache_elsewhere() {
    // Where the root document points: it records where every connection
    // came from, in turn.
    let elsewhere = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let log_cache = format!("http://{}", elsewhere.local_addr().unwrap());
    let reached = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let peers = reached.clone();
    tokio::spawn(async move {
        while let Ok((_, peer)) = elsewhere.accept().await {
            peers.lock().unwrap().push(peer);
        }
    });
    let root = serde_json::json!({ "links": { "log_cache": { "href": log_cache } } }).to_string();
    let api = crate::util::serve(axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let root = root.clone();
            async move { ([("content-type", "application/json")], root) }
        }),
    ))
    .await;

    let client = bluegreen::platform::client::CfClient::with_token(&api, "s3cret-token");
    let why = bluegreen::platform::log_cache::LogCache::discover(&client)
        .await
        .err()
        .expect("an http log-cache on another origin is refused")
        .to_string();
    assert!(why.contains("refusing to send credentials"), "{why}");
    assert!(why.contains("https") && why.contains(&log_cache), "{why}");
    assert!(!why.contains("s3cret-token"), "{why}");
    // The listener accepts in turn: once it has accepted a connection made
    // now (waited for, bounded), any made before was recorded too.
    let stream = tokio::net::TcpStream::connect(log_cache.trim_start_matches("http://"))
        .await
        .unwrap();
    let own = stream.local_addr().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !reached.lock().unwrap().contains(&own) {
        assert!(
            std::time::Instant::now() < deadline,
            "the listener never accepted our own connection"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        *reached.lock().unwrap(),
        [own],
        "only our own connection reached the other origin"
    );
}

fn init(dir: &Path) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
    cmd.arg("init").arg("-C").arg(dir);
    as_on_a_terminal(cmd)
}

#[test]
fn defect_7_init_writes_yaml_it_reads_back_from_a_procfile_with_control_characters() {
    let web = "python3 app.py --motd \"\x07\x1b[31mhi\x1b[0m\" --sep '\t' a: b # no comment \
               \u{85}\u{2028}\x7f\r end";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Procfile"), format!("web: {web}\n")).unwrap();
    let out = init(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let written = std::fs::read_to_string(dir.path().join("bluegreen.yaml")).unwrap();
    bluegreen::config::DeployFile::load(&dir.path().join("bluegreen.yaml"))
        .unwrap_or_else(|e| panic!("{e}\n{written}"));
    let unsafe_chars: Vec<char> = written
        .chars()
        .filter(|&c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{2028}')
        .collect();
    assert!(unsafe_chars.is_empty(), "{unsafe_chars:?} in\n{written}");
    // The comment quotes the command as a YAML string that reads back as it.
    let quoted = written
        .lines()
        .find_map(|l| l.strip_prefix("#   web: "))
        .unwrap_or_else(|| panic!("no web: line in\n{written}"));
    let back: String = serde_yaml::from_str(quoted).unwrap();
    assert_eq!(back, web);

    // A value init copies (the manifest's app name, written when the
    // manifest has several apps) reads back exactly.
    let dir = tempfile::tempdir().unwrap();
    let name = "Shop\u{7f}\u{85}\u{9b}\x1bWeb";
    std::fs::write(
        dir.path().join("manifest.yml"),
        "applications:\n- name: \"Shop\\x7f\\N\\x9b\\eWeb\"\n  command: python3 app.py\n\
         - name: worker\n  no-route: true\n  command: python3 worker.py\n",
    )
    .unwrap();
    let out = init(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(raw_controls(&out.stdout).is_empty(), "{}", text(&out));
    let file = bluegreen::config::DeployFile::load(&dir.path().join("bluegreen.yaml")).unwrap();
    assert_eq!(file.manifest_app.as_deref(), Some(name));
}
