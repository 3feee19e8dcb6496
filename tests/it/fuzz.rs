//! Property tests (batteries of «7 · Hardening»): the inputs someone else
//! writes — deploy files, policies, `--context` files, a journal after a
//! crash, a CF server's responses, raw bytes to the router — never make
//! bluegreen panic, and bad ones are errors that name their file. Inputs
//! are valid files with one line mutated, plus arbitrary text; cases are
//! bounded so the suite stays fast. Each test draws its cases from a fresh
//! seed, printed when it fails; `BLUEGREEN_TEST_SEED=N` replays that run.

use crate::util::Seed;
use bluegreen::config::DeployFile;
use bluegreen::config::policy;
use bluegreen::plugin::HookContext;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngSeed, TestRunner};
use std::path::Path;

/// A runner of `cases` cases drawn from `seed` (printed, with how to
/// replay it, if the test fails).
fn runner(cases: u32, seed: &Seed) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed.value),
        ..Config::default()
    })
}

/// Values that have broken parsers before: empty, null, unclosed, huge,
/// negative, anchors and tags, control characters, other types.
const NASTY: &[&str] = &[
    "",
    "~",
    "null",
    "[",
    "{",
    "}",
    "\"",
    "'",
    "-1",
    "0",
    "1e999",
    "99999999999999999999s",
    "0x10",
    "yes",
    "*a",
    "&a x",
    "!!binary AAAA",
    "!!str",
    "\u{0}",
    "\u{7f}\u{1b}[2J",
    "[1, [2, [3]]]",
    "{a: {b: {c: d}}}",
    "- - - x",
    ": :",
    "..",
    "/",
    "../../..",
    "🦀",
    "a\tb",
];

/// `valid` with one line's value replaced by something nasty, or a line
/// dropped, duplicated or cut short; or arbitrary text.
fn mutated(valid: &'static str) -> impl Strategy<Value = String> {
    let lines = valid.lines().count();
    prop_oneof![
        (0..lines, prop::sample::select(NASTY), 0..4usize).prop_map(move |(i, nasty, how)| {
            let mut out: Vec<String> = valid.lines().map(String::from).collect();
            match how {
                0 => {
                    let key = out[i].split_once(':').map(|(k, _)| k.to_string());
                    out[i] = match key {
                        Some(k) => format!("{k}: {nasty}"),
                        None => nasty.to_string(),
                    };
                }
                1 => {
                    out.remove(i);
                }
                2 => out.insert(i, out[i].clone()),
                _ => {
                    let cut = out[i].len() / 2;
                    out[i] = out[i].chars().take(cut).collect();
                }
            }
            out.join("\n")
        }),
        ".{0,300}",
    ]
}

const DEPLOY_FILE: &str = "app: shop
path: app
route: shop
health:
  path: /health
  body: ok
  interval: 100ms
  timeout: 30s
drain: 1s
env: { A: b }
services: [db, { name: cache, type: postgres }]
migrate:
  command: bin/migrate
  kind: sql
  dirs: [db/migrate]
  post_dirs: [db/post_migrate]
  lock_timeout: 5s
  retries: 3
plugins:
  dir: plugins
  config:
    http-probe:
      settings: { paths: /health }
      allow_http: [candidate]
      timeout: 2s
      memory: 32MiB
      on_error: warn
";

#[test]
fn any_deploy_file_parses_or_names_the_file() {
    let seed = Seed::new("fuzz::any_deploy_file_parses_or_names_the_file");
    let path = Path::new("/repo/bluegreen.yaml");
    runner(512, &seed)
        .run(&mutated(DEPLOY_FILE), |text| {
            if let Err(e) = DeployFile::parse(path, &text) {
                prop_assert!(e.to_string().contains("/repo/bluegreen.yaml"), "{e}");
            }
            Ok(())
        })
        .unwrap();
}

const POLICY: &str = "required_plugins:
  migration-guard:
    sha256: 0000000000000000000000000000000000000000000000000000000000000000
    path: plugins/migration-guard.wasm
    settings: { mode: block }
    grant_dirs: [db/migrate]
    allow_http: [candidate]
    timeout: 5s
    memory: 64MiB
required_hooks: [migration-safety-check, pre-deploy]
overrides: { allowed: true, require_reason: true }
";

#[test]
fn any_policy_loads_or_names_the_file() {
    let seed = Seed::new("fuzz::any_policy_loads_or_names_the_file");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy.yaml");
    runner(256, &seed)
        .run(&mutated(POLICY), |text| {
            std::fs::write(&path, &text).unwrap();
            for system in [None, Some(path.clone())] {
                if let Err(e) = policy::find(system, Some(&path), None, None) {
                    prop_assert!(e.contains("policy.yaml"), "{e}");
                }
            }
            Ok(())
        })
        .unwrap();
}

const CONTEXT: &str = "deploy:
  id: d1
  app: shop
  release: r2
  previous_release: r1
  route_url: http://shop.apps.localhost:8080
target:
  color: blue
  app_name: shop-blue
  candidate_url: http://127.0.0.1:1234
  first: true
attempt: 2
pending:
  - { path: db/migrate/1_a.rb, version: '1', phase: expand, contents: 'add_column :a, :b, :c' }
failure: { step: health, color: green, message: never healthy }
";

#[test]
fn any_context_file_parses_or_names_the_file() {
    let seed = Seed::new("fuzz::any_context_file_parses_or_names_the_file");
    assert!(HookContext::parse(Path::new("c.yaml"), CONTEXT).is_ok());
    runner(256, &seed)
        .run(&mutated(CONTEXT), |text| {
            for name in ["ctx.yaml", "ctx.json"] {
                if let Err(e) = HookContext::parse(Path::new(name), &text) {
                    prop_assert!(e.starts_with(name), "{e}");
                }
            }
            Ok(())
        })
        .unwrap();
}

/// A real journal's lines, then any of them torn at any byte, garbage
/// bytes (including broken UTF-8) and step numbers no plan has.
#[test]
fn a_journal_after_any_crash_reads_or_says_why() {
    let seed = Seed::new("fuzz::a_journal_after_any_crash_reads_or_says_why");
    use bluegreen::deploy::journal::Journal;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let begin = r#"{"event":"begin","deploy":{"id":"d1","kind":"deploy","app":"shop","file":"/b.yaml","release":"r2","previous_release":"r1","started":"2026-12-01T00:00:00Z","host":"h","pid":1,"order":["blue","green"],"steps":[{"step":"validate"},{"step":"acquire-lock"},{"step":"unmap","color":"blue"}],"before":{"blue":{"droplet":null,"release":null,"mapped":false,"deployed_at":null},"green":{"droplet":null,"release":null,"mapped":false,"deployed_at":null}},"droplets":{},"migration_version":null}}"#.to_string();
    let lines = [
        begin,
        r#"{"event":"done","step":0}"#.to_string(),
        r#"{"event":"start","step":2}"#.to_string(),
        r#"{"event":"droplet","color":"blue","guid":"g"}"#.to_string(),
    ];
    let whole = format!("{}\n", lines.join("\n"));
    std::fs::write(&path, &whole).unwrap();
    let replay = Journal::read(dir.path()).unwrap().expect("a journal");
    assert_eq!(replay.done.len(), 1);
    let strategy = (
        0..whole.len(),
        prop::collection::vec(any::<u8>(), 0..64),
        any::<u32>(),
    );
    runner(256, &seed)
        .run(&strategy, |(cut, garbage, step)| {
            let mut bytes = whole.as_bytes()[..cut].to_vec();
            bytes.extend_from_slice(&garbage);
            bytes.extend_from_slice(
                format!("\n{{\"event\":\"done\",\"step\":{step}}}\n").as_bytes(),
            );
            std::fs::write(&path, &bytes).unwrap();
            match Journal::read(dir.path()) {
                Ok(Some(r)) => {
                    prop_assert!(r.done.iter().all(|s| *s < r.record.steps.len()));
                }
                Ok(None) => {}
                Err(e) => prop_assert!(e.to_string().contains("journal.jsonl"), "{e}"),
            }
            Ok(())
        })
        .unwrap();
}

/// Any status and body from a CF server: every client call returns an
/// error or a value, never a panic, and errors stay short.
#[tokio::test(flavor = "multi_thread")]
async fn any_cf_response_is_an_error_or_a_value() {
    let seed = Seed::new("fuzz::any_cf_response_is_an_error_or_a_value");
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use bluegreen::platform::client::CfClient;
    use std::sync::{Arc, Mutex};
    let answer: Arc<Mutex<(u16, String)>> = Arc::new(Mutex::new((200, "{}".into())));
    let served = answer.clone();
    let app = axum::Router::new().fallback(move || {
        let (status, body) = served.lock().unwrap().clone();
        async move {
            (
                StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                [("content-type", "application/json")],
                body,
            )
                .into_response()
        }
    });
    let base = crate::util::serve(app).await;
    let client = CfClient::with_token(&base, "token");
    let fixtures: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cf"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| std::fs::read_to_string(e.path()).unwrap())
            .collect();
    let body = prop_oneof![
        (
            prop::sample::select(fixtures),
            0..2000usize,
            prop::sample::select(NASTY)
        )
            .prop_map(|(f, at, nasty)| {
                let at = (0..=at.min(f.len()))
                    .rev()
                    .find(|i| f.is_char_boundary(*i))
                    .unwrap_or(0);
                format!("{}{nasty}{}", &f[..at], &f[at..])
            }),
        ".{0,200}",
    ];
    // Statuses that end a call at once: 429 and 5xx are retried with backoff.
    let status = prop::sample::select(vec![200u16, 201, 202, 204, 400, 401, 404, 422]);
    let cases: Vec<(u16, String)> = {
        let mut r = runner(1, &seed);
        let tree = (status, body);
        (0..96)
            .map(|_| tree.new_tree(&mut r).unwrap().current())
            .collect()
    };
    for (status, body) in cases {
        *answer.lock().unwrap() = (status, body.clone());
        let results = [
            client.get_app("g").await.map(|_| ()),
            client
                .list::<bluegreen::platform::v3::App>("/v3/apps")
                .await
                .map(|_| ()),
            client.process_stats("p").await.map(|_| ()),
            client.current_droplet("g").await.map(|_| ()),
            client.destinations("r").await.map(|_| ()),
        ];
        for r in results {
            if let Err(e) = r {
                let shown = e.to_string();
                assert!(
                    shown.len() < 2000,
                    "{status} {body:?}: an error of {} bytes",
                    shown.len()
                );
            }
        }
    }
}

/// Raw requests to the router of a real daemon serving a deployed app:
/// odd methods, paths, header names and values, lengths that lie, chunked
/// bodies that are not. Each gets an HTTP answer or a closed connection,
/// and afterwards the route still serves.
#[test]
fn any_bytes_to_the_router_get_an_answer_or_a_close_and_it_keeps_serving() {
    let seed =
        Seed::new("fuzz::any_bytes_to_the_router_get_an_answer_or_a_close_and_it_keeps_serving");
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};
    let f = crate::deploy::Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let method = prop::sample::select(vec![
        "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "CONNECT", "BREW", "",
    ]);
    let path = prop_oneof![Just("/".to_string()), "/[ -~]{0,40}", ".{0,40}"];
    let header = prop_oneof![
        Just("host: shop.apps.localhost".to_string()),
        Just("content-length: 5".to_string()),
        Just("content-length: -1".to_string()),
        Just("content-length: 99999999999999999999".to_string()),
        Just("transfer-encoding: chunked".to_string()),
        Just("connection: upgrade".to_string()),
        Just("x-forwarded-for: 10.0.0.1".to_string()),
        "[a-z-]{1,20}: [ -~]{0,40}",
        ".{0,60}",
    ];
    let requests = (
        method,
        path,
        prop::collection::vec(header, 0..6),
        prop::collection::vec(any::<u8>(), 0..64),
    );
    let port = f.router_port;
    runner(96, &seed)
        .run(&requests, |(method, path, headers, body)| {
            let mut raw =
                format!("{method} {path} HTTP/1.1\r\nhost: shop.apps.localhost\r\n").into_bytes();
            for h in &headers {
                raw.extend_from_slice(h.as_bytes());
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(&body);
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let _ = s.write_all(&raw);
            // The end of what we send: a request that wants more must not
            // wait for the header timeout.
            let _ = s.shutdown(std::net::Shutdown::Write);
            let t = Instant::now();
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            prop_assert!(
                t.elapsed() < Duration::from_secs(9),
                "hung for {:?}",
                t.elapsed()
            );
            prop_assert!(
                answer.is_empty()
                    || answer.starts_with(b"HTTP/1.1 ")
                    || answer.starts_with(b"HTTP/1.0 "),
                "{:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(200)])
            );
            Ok(())
        })
        .unwrap();
    for _ in 0..5 {
        let (status, body) = crate::deploy::get(port, "shop", "/").unwrap();
        assert_eq!(status, 200, "{body}");
    }
    f.assert_serving("v1");
}

/// Through the binary: a mangled deploy file is exit 2 with the file named,
/// or it plans (0); never a crash or another code.
#[test]
fn a_mangled_deploy_file_is_exit_2_naming_it_or_plans() {
    let seed = Seed::new("fuzz::a_mangled_deploy_file_is_exit_2_naming_it_or_plans");
    let dir = tempfile::tempdir().unwrap();
    for d in ["app", "plugins", "db/migrate", "db/post_migrate"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    std::fs::copy(
        crate::util::component("http-probe"),
        dir.path().join("plugins/http-probe.wasm"),
    )
    .unwrap();
    // A start command, which `plan` checks for.
    std::fs::write(dir.path().join("app/Procfile"), "web: python3 app.py\n").unwrap();
    let file = dir.path().join("bluegreen.yaml");
    std::fs::write(&file, DEPLOY_FILE).unwrap();
    let plan = |file: &Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
            .args(["plan", "--release", "r1", "-f"])
            .arg(file)
            .env("BLUEGREEN_HOME", dir.path().join("home"))
            .env("BLUEGREEN_CACHE_DIR", crate::util::shared_cache_dir())
            .env_remove("BLUEGREEN_POLICY")
            .env_remove("BLUEGREEN_SYSTEM_POLICY")
            .output()
            .unwrap()
    };
    let out = plan(&file);
    assert_eq!(out.status.code(), Some(0), "{}", crate::deploy::text(&out));
    runner(24, &seed)
        .run(&mutated(DEPLOY_FILE), |text| {
            std::fs::write(&file, &text).unwrap();
            let out = plan(&file);
            let stderr = String::from_utf8_lossy(&out.stderr);
            match out.status.code() {
                Some(0) => {}
                Some(2) => prop_assert!(stderr.contains("bluegreen.yaml"), "{stderr}"),
                other => prop_assert!(false, "exit {other:?}: {stderr}\n--- file:\n{text}"),
            }
            Ok(())
        })
        .unwrap();
}
