//! Defaults and limits of a deploy as the book states them: the upload
//! limit's variable (`databases.md`), the migration's `PGOPTIONS`
//! (`databases.md`), 50 findings under a step and plugin text cut at 2,000
//! characters (`guard.md`), a plugin call's 5 s (`reference/deploy-file.md`),
//! a crashing app's 3 crashes and last 20 lines (`strategies/blue-green.md`)
//! and `http-probe`'s 2,000 ms per request (`plugins/first-party.md`).

use crate::deploy::{Fixture, events, text};
use crate::util::{exits, succeeded};
use std::io::Read;
use std::time::Duration;

/// `BLUEGREEN_MAX_UPLOAD` sets the limit `--max-upload` does: an app over
/// it gets 413 naming the limit and how to raise it, and nothing deploys.
#[test]
fn bluegreen_max_upload_sets_the_local_platforms_upload_limit() {
    let mut f = Fixture::new("");
    let mut noise = std::fs::File::open("/dev/urandom").unwrap().take(3 << 20);
    let mut bits = std::fs::File::create(f.root.path().join("app/assets.bin")).unwrap();
    assert_eq!(std::io::copy(&mut noise, &mut bits).unwrap(), 3 << 20);
    f.restart_platform_with(&[("BLUEGREEN_MAX_UPLOAD", "1MiB")]);
    let out = exits(f.deploy("v1"), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 413")
            && err.contains("upload limit of 1MiB")
            && err.contains("BLUEGREEN_MAX_UPLOAD=SIZE"),
        "{err}"
    );
    // Nothing serves: the route has no color (`status` exits 5).
    exits(f.run(&["status"]), 5);
}

/// The migration task's `PGOPTIONS`: `-c lock_timeout=5000ms` by default,
/// plus `statement_timeout` when `migrate.statement_timeout` is set.
#[test]
fn the_migration_gets_the_default_lock_timeout_and_the_statement_timeout() {
    let f = Fixture::new("");
    std::fs::write(
        f.root.path().join("app/migrate.py"),
        "import os\nopen(os.environ['MIGRATION_LOG'], 'a').write(os.environ.get('PGOPTIONS', '-') + '\\n')\n",
    )
    .unwrap();
    let log = f.migration_log();
    crate::deploy::write_file(
        &f,
        "",
        "migrate: { command: python3 migrate.py, kind: sql }\n",
    );
    succeeded(f.deploy("v1"));
    crate::deploy::write_file(
        &f,
        "",
        "migrate: { command: python3 migrate.py, kind: sql, statement_timeout: 10m }\n",
    );
    std::fs::write(
        f.root.path().join("app/migrations/0002_more.up.sql"),
        "ALTER TABLE items ADD COLUMN note text;\n",
    )
    .unwrap();
    succeeded(f.deploy("v2"));
    let runs = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        runs.lines().collect::<Vec<_>>(),
        [
            "-c lock_timeout=5000ms",
            "-c lock_timeout=5000ms -c statement_timeout=600000ms"
        ],
        "{runs}"
    );
}

/// 60 migrations `migration-guard` finds fault with: 50 findings print
/// under the step, with a line saying how many there are, and `--json`
/// carries them all.
#[test]
fn at_most_50_findings_print_under_a_step_and_json_has_them_all() {
    let f = Fixture::new("");
    succeeded(f.deploy("v1"));
    for n in 2..62 {
        std::fs::write(
            f.root
                .path()
                .join(format!("app/migrations/{n:04}_index_{n}.up.sql")),
            format!("CREATE INDEX items_{n} ON items (id);\n"),
        )
        .unwrap();
    }
    f.plugins(&["migration-guard"]);
    f.write_file("plugins: { dir: plugins }\n");
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    let hook = events(&out)
        .into_iter()
        .find(|e| e["event"] == "hook" && e["plugin"] == "migration-guard")
        .unwrap_or_else(|| panic!("no hook event: {}", text(&out)));
    let all = hook["findings"].as_array().unwrap().len();
    assert!(all >= 60, "one finding or more per migration: {hook}");

    let out = f.run(&["deploy", "--release", "v2"]);
    assert_eq!(out.status.code(), Some(3), "blocked: {}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    let listed = shown
        .lines()
        .map(str::trim_start)
        .filter(|l| {
            ["error[", "warning[", "info["]
                .iter()
                .any(|s| l.starts_with(s))
        })
        .count();
    assert_eq!(listed, 50, "{}", text(&out));
    assert!(
        shown.contains(&format!(
            "({all} findings; the first 50 follow, `--json` has them all)"
        )),
        "{}",
        text(&out)
    );
    f.assert_serving("v1");
}

/// A plugin call without a `timeout` of its own is stopped after 5 s
/// (`plugins.config.<name>.timeout`, "default: 5s").
#[test]
fn a_plugin_call_stops_after_the_default_5_s() {
    let f = Fixture::new("");
    f.plugins(&["hostile"]);
    f.write_file(
        "plugins: { dir: plugins, config: { hostile: { settings: { attack: loop } } } }\n",
    );
    let out = exits(f.run(&["deploy", "--release", "v1", "--json"]), 1);
    let failed = events(&out)
        .into_iter()
        .find(|e| e["event"] == "step" && e["step"] == "pre-deploy" && e["status"] == "failed")
        .unwrap_or_else(|| panic!("no failed pre-deploy step: {}", text(&out)));
    let took = Duration::from_millis(failed["duration_ms"].as_f64().unwrap() as u64);
    assert!(
        took >= Duration::from_millis(4900) && took <= Duration::from_millis(7500),
        "stopped after {took:?}: {failed}"
    );
    assert_eq!(
        failed["error"], "plugin `hostile` at hook `pre-deploy` timed out after 5s",
        "{failed}"
    );
}

/// "An app that crashes as it starts fails the health step as soon as an
/// instance has crashed 3 times, or stayed crashed for 3 s across the
/// checks …; the error ends with its last 20 lines of output, escaped."
/// Either, by the machine's speed: this app crashes within milliseconds of
/// each restart, and a busy machine's checks (every 50 ms) can miss the
/// moments it was up, so it looks crashed throughout. Both are well before
/// the health check's 10 s.
#[test]
fn a_crashing_app_fails_after_3_crashes_with_its_last_20_lines() {
    let f = Fixture::new("");
    std::fs::write(
        f.root.path().join("app/app.py"),
        "for i in range(1, 31):\n    print('line %d of 30 \\x1b[31m' % i, flush=True)\nraise SystemExit(1)\n",
    )
    .unwrap();
    let out = exits(f.deploy("v1"), 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("crashed 3 times") || err.contains("crashed and stayed down for 3"),
        "{err}"
    );
    let within = err
        .split_once(" within ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|d| humantime::parse_duration(d).ok())
        .unwrap_or_else(|| panic!("no `within` duration: {err}"));
    assert!(within < Duration::from_secs(10), "{within:?}: {err}");
    let (_, tail) = err
        .split_once("Its last 20 lines of output")
        .unwrap_or_else(|| panic!("{err}"));
    let shown: Vec<&str> = tail.lines().filter(|l| l.starts_with("    | ")).collect();
    assert_eq!(shown.len(), 20, "{err}");
    assert!(
        shown
            .iter()
            .any(|l| l.contains("line 30 of 30 \\u{1b}[31m")),
        "the newest lines, escaped: {err}"
    );
    assert!(!err.contains('\x1b'), "{err}");
}

/// "Plugin text (reasons, findings, log lines) is shown … cut at 2,000
/// characters": a plugin blocking with 5,000 characters everywhere.
#[test]
fn plugin_text_is_cut_at_2000_characters() {
    let f = Fixture::new("");
    f.plugins(&["hostile"]);
    let long = "y".repeat(5000);
    f.write_file(&format!(
        "plugins: {{ dir: plugins, config: {{ hostile: {{ settings: {{ attack: text, answer: block, text: {long} }} }} }} }}\n"
    ));
    let out = exits(f.run(&["deploy", "--release", "v1"]), 3);
    let all = text(&out);
    let cut = format!("{}… (cut)", "y".repeat(2000));
    assert!(all.contains(&cut), "{all}");
    assert!(
        !all.contains(&"y".repeat(2001)),
        "a text longer than 2,000: {all}"
    );
}

/// `http-probe`'s `request-timeout-ms` ("connect and first byte, default
/// `2000`"): a candidate that answers after 3 s is given up on at 2 s,
/// each call a "not ready yet".
#[test]
fn http_probe_gives_up_on_a_request_after_the_default_2000_ms() {
    let f = Fixture::new("");
    std::fs::write(
        f.root.path().join("app/app.py"),
        crate::util::py_app(
            r#"time.sleep(3) if self.path == "/slow" else None"#,
            "200",
            r#""ok\n""#,
        ),
    )
    .unwrap();
    f.plugins(&["http-probe"]);
    f.write_file(
        "plugins: { dir: plugins, config: { http-probe: { allow_http: [candidate], \
         settings: { paths: /slow } } } }\n",
    );
    let out = exits(f.run(&["deploy", "--release", "v1", "--json"]), 1);
    let calls: Vec<serde_json::Value> = events(&out)
        .into_iter()
        .filter(|e| e["hook"] == "health-check" && e["plugin"] == "http-probe")
        .collect();
    assert!(!calls.is_empty(), "{}", text(&out));
    for call in &calls {
        assert_eq!(call["verdict"], "retry-after", "{call}");
        let took = call["duration_ms"].as_f64().unwrap();
        assert!(
            (1900.0..2900.0).contains(&took),
            "a call took {took} ms: {call}"
        );
    }
}
