//! The examples deploy as their README says, on a real local platform with
//! real Ruby processes (CI installs ruby, ruby-rack and ruby-webrick). The
//! Rails example has its own module, `rails.rs`.
//!
//! The CI examples (`examples/ci/`) are checked the same way: their YAML has
//! the shape each CI system needs, every `bluegreen` command in them exists
//! with the flags used (asked of the real binary's `--help`), and their deploy
//! scripts, run by bash as the CI runs them, deploy on the local platform and
//! keep bluegreen's exit code and the events file for the artifact.

use crate::deploy::{Fixture, get, json_lines, text};
use crate::util::shared_cache_dir;
use serde_yaml::Value as Yaml;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_rack_app_deploys_and_says_hello() {
    let f = Fixture::example("rack-app", |y| y);
    let out = f.deploy("r1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Both colors run r1; the route says hello from either (the app names
    // neither release nor color, so ask a few times: the router takes turns).
    f.assert_colors("r1");
    for _ in 0..4 {
        let (status, body) = get(f.router_port, "rack-app", "/").unwrap();
        assert_eq!((status, body.as_str()), (200, "Hello, world!\n"));
    }
}

/// One CI example: its deploy script, the directory (under the checkout
/// root) the script runs in, and the artifact path (under the root).
struct Ci {
    file: &'static str,
    scripts: Vec<String>,
    deploy: String,
    workdir: String,
    artifact: String,
}

fn read_yaml(rel: &str) -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn s(v: &Yaml) -> &str {
    v.as_str().unwrap_or_default()
}

fn github() -> Ci {
    let file = "examples/ci/github-actions.yml";
    let doc = read_yaml(file);
    assert!(doc.get("on").is_some(), "{file}: no `on` trigger");
    let jobs = doc["jobs"].as_mapping().expect("jobs");
    assert_eq!(jobs.len(), 1, "{file}: one job");
    let job = jobs.values().next().unwrap();
    assert!(job.get("runs-on").is_some(), "{file}: runs-on");
    let steps = job["steps"].as_sequence().expect("steps");
    let uses = |prefix: &str| {
        steps
            .iter()
            .position(|st| s(&st["uses"]).starts_with(prefix))
    };
    assert!(uses("actions/checkout@").is_some(), "{file}: a checkout");
    let run = |st: &Yaml| s(&st["run"]).to_string();
    let deploy = steps
        .iter()
        .position(|st| run(st).contains("bluegreen deploy"))
        .expect("a deploy step");
    let upload = uses("actions/upload-artifact@").expect("an artifact upload");
    assert!(upload > deploy, "{file}: the upload comes after the deploy");
    assert_eq!(
        s(&steps[upload]["if"]),
        "always()",
        "{file}: upload on failure too"
    );
    let scripts: Vec<String> = steps.iter().map(run).filter(|r| !r.is_empty()).collect();
    for r in &scripts {
        // Expressions inside a script are an injection risk (GitHub's own
        // hardening guide); values come in through `env:`.
        assert!(
            !r.contains("${{"),
            "{file}: an expression in a run script:\n{r}"
        );
    }
    Ci {
        file,
        deploy: run(&steps[deploy]),
        workdir: s(&steps[deploy]["working-directory"]).to_string(),
        artifact: s(&steps[upload]["with"]["path"]).to_string(),
        scripts,
    }
}

fn gitlab() -> Ci {
    let file = "examples/ci/gitlab-ci.yml";
    let doc = read_yaml(file);
    let (_, job) = doc
        .as_mapping()
        .expect("a mapping")
        .iter()
        .find(|(_, j)| j.get("script").is_some())
        .expect("a job with a script");
    let lines = |key: &str| -> Vec<String> {
        job.get(key)
            .and_then(|v| v.as_sequence())
            .map(|l| l.iter().map(|x| s(x).to_string()).collect())
            .unwrap_or_default()
    };
    let deploy = lines("script").join("\n");
    assert!(
        deploy.contains("bluegreen deploy"),
        "{file}: deploy in `script`"
    );
    let artifacts = &job["artifacts"];
    assert_eq!(
        s(&artifacts["when"]),
        "always",
        "{file}: artifacts on failure too"
    );
    let paths = artifacts["paths"].as_sequence().expect("artifacts.paths");
    let mut scripts = lines("before_script");
    scripts.push(deploy.clone());
    scripts.extend(lines("after_script"));
    Ci {
        file,
        deploy,
        workdir: ".".into(),
        artifact: s(&paths[0]).to_string(),
        scripts,
    }
}

/// The words of each simple command in a shell script (quotes removed;
/// split at unquoted `| ; & ( )` and newlines; comments dropped).
fn shell_commands(script: &str) -> Vec<Vec<String>> {
    let (mut cmds, mut words, mut word) = (Vec::new(), Vec::new(), None::<String>);
    let mut quote = None;
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => word.get_or_insert_default().extend(chars.next()),
            (Some(_), c) => word.get_or_insert_default().push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_default();
            }
            (None, '\\') if chars.peek() == Some(&'\n') => {
                chars.next();
            }
            (None, '\\') => word.get_or_insert_default().extend(chars.next()),
            (None, '#') if word.is_none() => while chars.next_if(|&c| c != '\n').is_some() {},
            (None, c) if c.is_whitespace() || "|;&()".contains(c) => {
                words.extend(word.take());
                // A blank separates words; anything else here ends a command.
                let ends_command = c != ' ' && c != '\t';
                if ends_command && !words.is_empty() {
                    cmds.push(std::mem::take(&mut words));
                }
            }
            (None, c) => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    if !words.is_empty() {
        cmds.push(words);
    }
    cmds
}

/// The arguments of every `bluegreen` command in the scripts.
fn bluegreen_commands(scripts: &[String]) -> Vec<Vec<String>> {
    let keyword = |w: &str| ["if", "then", "else", "elif", "do", "!", "time", "exec"].contains(&w);
    let mut out = Vec::new();
    for cmd in scripts.iter().flat_map(|s| shell_commands(s)) {
        let mut w = cmd.iter().skip_while(|w| keyword(w) || w.contains('='));
        if w.next()
            .is_some_and(|p| p == "bluegreen" || p.ends_with("/bluegreen"))
        {
            out.push(w.cloned().collect());
        }
    }
    out
}

/// Runs `cmd` with its output in a file, killed after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration) -> (Option<i32>, String) {
    let out = tempfile::NamedTempFile::new().unwrap();
    cmd.stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(out.reopen().unwrap());
    let mut child = cmd.spawn().expect("spawning");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code(), std::fs::read_to_string(out.path()).unwrap())
}

#[test]
fn the_ci_examples_use_real_subcommands_and_flags() {
    for ci in [github(), gitlab()] {
        let commands = bluegreen_commands(&ci.scripts);
        assert!(
            commands
                .iter()
                .any(|c| c[0] == "deploy"
                    && ["-f", "--json"].iter().all(|f| c.iter().any(|w| w == f))),
            "{}: no `bluegreen deploy -f ... --json` in {commands:?}",
            ci.file
        );
        assert!(ci.deploy.contains("set -o pipefail"), "{}", ci.file);
        let tee = shell_commands(&ci.deploy)
            .into_iter()
            .find(|c| c[0] == "tee")
            .expect("the events go through tee");
        let name = |p: &str| Path::new(p).file_name().map(|n| n.to_owned());
        assert_eq!(
            name(&tee[1]),
            name(&ci.artifact),
            "{}: tee writes the artifact",
            ci.file
        );
        for args in commands {
            let sub: Vec<&String> = args.iter().take_while(|w| !w.starts_with('-')).collect();
            let mut help = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
            help.args(&sub).arg("--help");
            let (code, text) = run_bounded(help, Duration::from_secs(30));
            assert_eq!(
                code,
                Some(0),
                "{}: `bluegreen {sub:?} --help`: {text}",
                ci.file
            );
            for flag in args.iter().filter(|w| w.starts_with('-')) {
                let flag = flag.split('=').next().unwrap();
                let listed = text.match_indices(flag).any(|(i, _)| {
                    let after = text[i + flag.len()..].chars().next();
                    after.is_none_or(|c| !(c.is_alphanumeric() || c == '-'))
                });
                assert!(
                    listed,
                    "{}: `bluegreen {sub:?}` has no flag {flag}:\n{text}",
                    ci.file
                );
            }
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// The deploy script of each example, run by bash with the flags both CI
/// systems use (`-eo pipefail`), in a checkout laid out as the example
/// expects: a deploy, a plugin's block and a bad deploy file each end the
/// job with bluegreen's own exit code, say which, and leave the events where
/// the artifact upload looks.
#[test]
fn the_ci_deploy_scripts_keep_the_exit_code_and_the_events() {
    let f = Fixture::new("");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_bluegreen")).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    for (case, code, status, says) in [
        ("deploy", 0, "done", "bluegreen: deployed"),
        ("block", 3, "blocked", "blocked (exit 3)"),
        ("bad file", 2, "bad-input", "bad input (exit 2)"),
    ] {
        if case == "block" {
            f.gate("block-at: pre-deploy");
        }
        for ci in [github(), gitlab()] {
            let root = tempfile::tempdir().unwrap();
            // Outside the checkout: the GitLab script keeps its events there
            // until the deploy ends.
            let tmp = tempfile::tempdir().unwrap();
            let workdir: PathBuf = root.path().join(&ci.workdir);
            copy_dir(f.root.path(), &workdir);
            if case == "bad file" {
                std::fs::write(workdir.join("bluegreen.yaml"), "app: shop\ncolour: blue\n")
                    .unwrap();
            }
            let mut bash = Command::new("bash");
            bash.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &ci.deploy])
                .current_dir(&workdir)
                .env("PATH", &path)
                .env("BLUEGREEN_HOME", f.home())
                .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
                .env("NO_COLOR", "1")
                .env("TMPDIR", tmp.path())
                .env("CI_PROJECT_DIR", root.path());
            let (exit, output) = run_bounded(bash, Duration::from_secs(180));
            let what = format!("{} ({case}): exit {exit:?}\n{output}", ci.file);
            assert_eq!(exit, Some(code), "{what}");
            assert!(output.contains(says), "{what}");
            let events = std::fs::read(root.path().join(&ci.artifact))
                .unwrap_or_else(|e| panic!("{what}\nthe artifact {}: {e}", ci.artifact));
            let last = json_lines(&events)
                .into_iter()
                .rfind(|e| e["event"] == "deploy")
                .unwrap_or_else(|| panic!("{what}\nno deploy event in the artifact"));
            assert_eq!(last["status"], status, "{what}");
            if code != 0 {
                assert_eq!(last["exit_code"], code, "{what}");
            }
        }
    }
}
