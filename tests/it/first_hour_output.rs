//! «19 · The first hour», a short deploy output: 14 of a trivial deploy's
//! 26 lines were `hook …: no plugins`. Those hooks are folded away (their
//! step numbers skipped, so `[27/28]` still means the plan's step 27); `-v`
//! shows them, `--json` and `plan` keep every step.

use crate::deploy::{Fixture, events, text};
use serde_json::{Value, json};

/// The plan's steps and which of them are hooks without plugins.
fn plan(f: &Fixture) -> (usize, usize) {
    let out = f.run(&["plan", "--json", "--release", "x"]);
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let bare = steps
        .iter()
        .filter(|s| s["step"] == "hook" && s["plugins"] == json!([]))
        .count();
    (steps.len(), bare)
}

fn step_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("✓ [")).collect()
}

#[test]
fn a_trivial_deploy_folds_hooks_without_plugins_and_v_shows_them() {
    let f = Fixture::new("");
    let (total, bare) = plan(&f);
    assert!(bare >= 12, "{bare} of {total}");

    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains("no plugins"), "{stdout}");
    assert_eq!(step_lines(&stdout).len(), total - bare, "{stdout}");
    // The steps and a line before and after: nothing else.
    assert_eq!(stdout.lines().count(), total - bare + 2, "{stdout}");
    assert!(
        stdout.contains(&format!("[{}/{total}] record the release", total - 1)),
        "the plan's numbers: {stdout}"
    );
    eprintln!(
        "a trivial deploy prints {} lines ({bare} hooks without plugins folded):\n{stdout}",
        stdout.lines().count()
    );

    // -v: every step.
    let out = f.run(&["deploy", "--release", "v2", "-v"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(step_lines(&stdout).len(), total, "{stdout}");
    assert!(stdout.contains("hook pre-deploy: no plugins"), "{stdout}");

    // --json: every step, folded or not.
    let out = f.run(&["deploy", "--release", "v3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let ev = events(&out);
    let done = |kind: &str| {
        ev.iter()
            .filter(|e| e["event"] == "step" && e["status"] == "done" && e["step"] == kind)
            .count()
    };
    assert_eq!(done("pre-deploy"), 1);
    assert_eq!(done("pre-map"), 2);

    // A hook with a plugin keeps its line, with the plugin's verdict.
    f.plugins(&["hello"]);
    let out = f.deploy("v4");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hook pre-push (blue): hello"), "{stdout}");
    assert!(stdout.contains("hello → proceed"), "{stdout}");
    assert!(!stdout.contains("no plugins"), "{stdout}");
}
