//! The org policy against an app's deploy file: every way to remove, weaken
//! or pre-empt a required plugin is refused (exit 3) with what was tried; a
//! tampered plugin fails its digest; overrides follow the policy's rules and
//! are recorded with who and why.

use crate::deploy::{Fixture, text};
use crate::util::*;
use sha2::{Digest, Sha256};
use std::process::Command;

fn sha(name: &str) -> String {
    hex::encode(Sha256::digest(std::fs::read(component(name)).unwrap()))
}

/// A directory with an app, a deploy file and a policy; `policy check` runs there.
struct Repo {
    dir: tempfile::TempDir,
}

impl Drop for Repo {
    /// A refused deploy starts nothing; one that did anyway (the failure
    /// a test here reports) leaves no daemon behind.
    fn drop(&mut self) {
        let home = self.dir.path().join("home");
        if home.join("platform").exists() {
            stop_platform(&home);
        }
    }
}

impl Repo {
    fn new(deploy_extra: &str, policy: &str) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("app")).unwrap();
        std::fs::create_dir_all(dir.path().join("plugins")).unwrap();
        std::fs::write(
            dir.path().join("bluegreen.yaml"),
            format!("app: shop\npath: app\nmigrate: {{ command: migrate }}\nplugins: {{ dir: plugins }}\n{deploy_extra}"),
        )
        .unwrap();
        std::fs::write(dir.path().join("policy.yaml"), policy).unwrap();
        Repo { dir }
    }

    fn plugin(&self, component_name: &str, as_name: &str) {
        std::fs::copy(
            component(component_name),
            self.dir.path().join(format!("plugins/{as_name}.wasm")),
        )
        .unwrap();
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        self.run_with(args, &[])
    }

    /// `run` with these environment variables set.
    fn run_with(&self, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> std::process::Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_bluegreen"));
        c.args(args)
            .current_dir(self.dir.path())
            .env("BLUEGREEN_HOME", self.dir.path().join("home"))
            .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
            .env_remove("BLUEGREEN_POLICY")
            .env_remove("BLUEGREEN_SYSTEM_POLICY");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn check(&self) -> (i32, String) {
        let out = self.run(&["policy", "check", "--policy", "policy.yaml"]);
        (out.status.code().unwrap(), text(&out))
    }
}

/// Prepares a repo for one weakening attempt.
type Setup<'a> = &'a dyn Fn(&Repo);

fn guard_policy(extra: &str) -> String {
    format!(
        "required_plugins:\n  migration-guard:\n    sha256: {}\n    settings: {{ mode: block, inline-overrides: ignore }}\nrequired_hooks: [migration-safety-check]\n{extra}",
        sha("migration-guard")
    )
}

#[test]
fn a_complying_deploy_file_passes_and_required_plugins_run_first() {
    let repo = Repo::new("", &guard_policy(""));
    repo.plugin("migration-guard", "migration-guard");
    // Named to sort first: still runs after the required plugin.
    repo.plugin("hello", "aaa-hello");
    let (code, out) = repo.check();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("required plugin migration-guard") && out.contains("ok, from"),
        "{out}"
    );
    assert!(
        out.contains("locked settings: inline-overrides=ignore, mode=block"),
        "{out}"
    );
    assert!(out.contains("complies"), "{out}");
    let plan = repo.run(&["plan", "--policy", "policy.yaml", "--release", "r1"]);
    let plan = text(&plan);
    assert!(
        plan.contains("hook migration-safety-check: migration-guard, aaa-hello"),
        "{plan}"
    );
    assert!(
        plan.contains("required plugins (run first) migration-guard"),
        "{plan}"
    );
}

#[test]
fn every_weakening_attempt_is_refused_with_what_was_tried() {
    let attempts: [(&str, Setup, &str); 7] = [
        (
            "",
            &|_| {},
            "has no `migration-guard.wasm`: add the org's build",
        ),
        (
            "",
            &|r| r.plugin("hello", "migration-guard"),
            "is not the approved build (tampered or outdated)",
        ),
        (
            "  config:\n    migration-guard: { settings: { mode: warn } }\n",
            &|r| r.plugin("migration-guard", "migration-guard"),
            "`plugins.config.migration-guard.settings.mode: warn` would weaken a required plugin; the policy locks it to `block`",
        ),
        (
            "  config:\n    migration-guard: { on_error: warn }\n",
            &|r| r.plugin("migration-guard", "migration-guard"),
            "`plugins.config.migration-guard.on_error: warn` would let a required plugin's failure pass",
        ),
        (
            "  config:\n    migration-guard: { settings: { inline-overrides: allow } }\n",
            &|r| r.plugin("migration-guard", "migration-guard"),
            "settings.inline-overrides: allow` would weaken a required plugin",
        ),
        // Defect 4 of «7 · Hardening»: the org's code reading `/` and
        // talking to any origin, on the deploy file's say-so.
        (
            "  config:\n    migration-guard: { grant_dirs: [/], allow_http: [\"http://127.0.0.1:9\"] }\n",
            &|r| r.plugin("migration-guard", "migration-guard"),
            "grant_dirs, allow_http, timeout and memory of a required plugin are the policy's",
        ),
        (
            "  config:\n    migration-guard: { timeout: 1ms }\n",
            &|r| r.plugin("migration-guard", "migration-guard"),
            "grant_dirs, allow_http, timeout and memory of a required plugin are the policy's",
        ),
    ];
    for (extra, setup, expected) in attempts {
        // The plugins section is the deploy file's last; `extra` extends it.
        let repo = Repo::new("", &guard_policy(""));
        if !extra.is_empty() {
            let file = repo.dir.path().join("bluegreen.yaml");
            let yaml = std::fs::read_to_string(&file).unwrap().replace(
                "plugins: { dir: plugins }\n",
                &format!("plugins:\n  dir: plugins\n{extra}"),
            );
            std::fs::write(file, yaml).unwrap();
        }
        setup(&repo);
        let (code, out) = repo.check();
        assert_eq!(code, 3, "{out}");
        assert!(out.contains(expected), "expected `{expected}` in:\n{out}");
        // A deploy is refused the same way, before touching any platform.
        let deploy = repo.run(&["deploy", "--policy", "policy.yaml"]);
        assert_eq!(deploy.status.code(), Some(3), "{}", text(&deploy));
        assert!(text(&deploy).contains(expected), "{}", text(&deploy));
        assert!(
            !repo.dir.path().join("home/platform").exists(),
            "nothing started"
        );
    }
    // A hook the policy requires, with no plugin on it.
    let repo = Repo::new(
        "",
        &guard_policy("").replace(
            "[migration-safety-check]",
            "[migration-safety-check, pre-deploy]",
        ),
    );
    repo.plugin("migration-guard", "migration-guard");
    let (code, out) = repo.check();
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("requires a plugin on `pre-deploy`"), "{out}");
}

#[test]
fn the_deploy_files_own_policy_cannot_replace_the_orgs() {
    let repo = Repo::new("policy: lax.yaml\n", &guard_policy(""));
    std::fs::write(repo.dir.path().join("lax.yaml"), "required_plugins: {}\n").unwrap();
    // No --policy: the environment's policy wins over the deploy file's.
    let out = Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(["policy", "check"])
        .current_dir(repo.dir.path())
        .env("BLUEGREEN_POLICY", repo.dir.path().join("policy.yaml"))
        .env("BLUEGREEN_CACHE_DIR", shared_cache_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("(from BLUEGREEN_POLICY)"),
        "{}",
        text(&out)
    );
    // Without one, the deploy file's applies.
    let out = repo.run(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("lax.yaml (from the deploy file's `policy`)"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_org_supplied_plugin_is_loaded_from_the_policy_and_cannot_be_shadowed() {
    let org = tempfile::tempdir().unwrap();
    std::fs::copy(component("migration-guard"), org.path().join("guard.wasm")).unwrap();
    let policy = guard_policy("").replace(
        "    settings:",
        &format!(
            "    path: {}\n    settings:",
            org.path().join("guard.wasm").display()
        ),
    );
    let repo = Repo::new("", &policy);
    let (code, out) = repo.check();
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "ok, from {}",
            org.path().join("guard.wasm").display()
        )),
        "{out}"
    );
    repo.plugin("hello", "migration-guard");
    let (code, out) = repo.check();
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("is not the org's pinned build; remove it"),
        "{out}"
    );
}

fn destructive(f: &Fixture) {
    std::fs::write(
        f.root.path().join("app/migrations/0002_drop_items.up.sql"),
        "-- bluegreen:allow drop-table the old code never reads items\nDROP TABLE items;\n",
    )
    .unwrap();
}

#[test]
fn overrides_follow_the_policy_and_are_recorded() {
    let f = Fixture::new("plugins: { dir: plugins }\n");
    f.plugins(&["migration-guard"]);
    crate::util::succeeded(f.deploy("v1"));
    destructive(&f);
    let policy = f.root.path().join("policy.yaml");
    let deploy = |policy_text: &str, args: &[&str]| {
        std::fs::write(&policy, policy_text).unwrap();
        let mut all = vec![
            "deploy",
            "--release",
            "v2",
            "--policy",
            policy.to_str().unwrap(),
        ];
        all.extend(args);
        f.run(&all)
    };

    // The inline override is ignored: the policy locks inline-overrides.
    let out = deploy(&guard_policy(""), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("drop-table (migrations/0002_drop_items.up.sql:2)"),
        "{}",
        text(&out)
    );
    // Overrides forbidden: refused before anything runs.
    let out = deploy(
        &guard_policy("overrides: { allowed: false }\n"),
        &["--allow", "drop-table", "--reason", "x"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("does not allow overrides"),
        "{}",
        text(&out)
    );
    // A reason required and missing: bad input.
    let out = deploy(&guard_policy(""), &["--allow", "drop-table"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("needs --reason TEXT: the org policy ")
            && text(&out)
                .contains("requires a reason for every override (overrides.require_reason)"),
        "{}",
        text(&out)
    );
    // An allowed rule that is not the one blocking changes nothing.
    let out = deploy(&guard_policy(""), &["--allow", "truncate", "--reason", "x"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // With a reason: the deploy goes through, and the override is on record.
    let out = deploy(
        &guard_policy(""),
        &[
            "--allow",
            "drop-table",
            "--reason",
            "items moved to the catalog service",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("overridden by"), "{}", text(&out));
    f.assert_serving("v2");
    let history = std::fs::read_to_string(f.home().join("deploys/shop/history.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(history.lines().last().unwrap()).unwrap();
    let o = &last["overrides"][0];
    assert_eq!(o["rules"], serde_json::json!(["drop-table"]));
    assert_eq!(o["reason"], "items moved to the catalog service");
    assert_eq!(o["plugin"], "migration-guard");
    assert!(o["by"].as_str().unwrap().contains('@'), "{o}");
    // Without a policy, a migration's own allow comment counts.
    std::fs::write(
        f.root.path().join("app/migrations/0003_drop_column.up.sql"),
        "-- bluegreen:allow remove-column no release reads legacy since v1\nALTER TABLE users DROP COLUMN legacy;\n",
    )
    .unwrap();
    let out = f.run(&["deploy", "--release", "v3", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("allowed by an override (no release reads legacy since v1)"),
        "{}",
        text(&out)
    );
}

/// Defect 4 of «7 · Hardening»: a required hook was satisfied by any
/// plugin, even the app's own no-op, and a deploy file without `migrate`
/// skipped the migration check entirely.
#[test]
fn defect_4_a_required_hook_needs_the_orgs_plugin_and_a_migrate_section() {
    // The policy requires the hook but pins no plugin for it; the app
    // brings its own (hello handles every hook, and proceeds).
    let repo = Repo::new("", "required_hooks: [migration-safety-check]\n");
    repo.plugin("hello", "hello");
    let (code, out) = repo.check();
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("none of its required plugins handles it")
            && out.contains("cannot stand in for the org's"),
        "{out}"
    );

    // The org's guard is there, but the deploy file has no `migrate`.
    let repo = Repo::new("", &guard_policy(""));
    repo.plugin("migration-guard", "migration-guard");
    let file = repo.dir.path().join("bluegreen.yaml");
    let yaml = std::fs::read_to_string(&file)
        .unwrap()
        .replace("migrate: { command: migrate }\n", "");
    std::fs::write(&file, yaml).unwrap();
    let (code, out) = repo.check();
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("add one (its `command`, `dirs`)"), "{out}");
}

/// Defect 4 of «7 · Hardening»: a migration with an old timestamp (merged
/// late from a long-lived branch) was not pending, so the guard never saw
/// it, though `db:migrate` runs it.
#[test]
fn defect_4_a_late_migration_with_an_old_version_is_still_checked() {
    let f = Fixture::new("");
    f.plugins(&["migration-guard"]);
    crate::util::succeeded(f.deploy("v1"));
    std::fs::write(
        f.root.path().join("app/migrations/0000_drop_items.up.sql"),
        "DROP TABLE items;\n",
    )
    .unwrap();
    let out = f.run(&["deploy", "--release", "v2", "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("drop-table"),
        "{}",
        text(&out)
    );
    // Once it is gone, the next deploy goes through; the history records
    // the set of versions applied, which the next deploy subtracts.
    std::fs::remove_file(f.root.path().join("app/migrations/0000_drop_items.up.sql")).unwrap();
    crate::util::succeeded(f.deploy("v3"));
    let last = f.last_history();
    assert_eq!(last["applied"], serde_json::json!(["0001"]), "{last}");
}

/// Defect 4 of «7 · Hardening»: `--policy` and `BLUEGREEN_POLICY` used to
/// replace the system policy, so a CI job could deploy under an empty one.
/// Now they are layered on it and can only add.
#[test]
fn defect_4_the_system_policy_outranks_the_flag_and_the_environment() {
    let repo = Repo::new(
        "",
        "required_plugins: {}\noverrides: { allowed: true, require_reason: false }\n",
    );
    let system = repo.dir.path().join("system.yaml");
    std::fs::write(&system, guard_policy("overrides: { allowed: false }\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut all: Vec<(&str, &std::ffi::OsStr)> =
            vec![("BLUEGREEN_SYSTEM_POLICY", system.as_os_str())];
        all.extend(env.iter().map(|(k, v)| (*k, std::ffi::OsStr::new(*v))));
        repo.run_with(args, &all)
    };
    for (args, env) in [
        (&["policy", "check", "--policy", "policy.yaml"][..], &[][..]),
        (
            &["policy", "check"][..],
            &[("BLUEGREEN_POLICY", "policy.yaml")][..],
        ),
    ] {
        let out = run(args, env);
        assert_eq!(out.status.code(), Some(3), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains("has no `migration-guard.wasm`"), "{t}");
        assert!(
            t.contains("(from the system policy) plus policy.yaml")
                && t.contains("which can only add to it"),
            "{t}"
        );
        assert!(t.contains("overrides (--allow): not allowed"), "{t}");
    }
    // A deploy under the lax layer is refused before anything starts.
    let out = run(&["deploy", "--policy", "policy.yaml"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(!repo.dir.path().join("home/platform").exists());
    // A system policy anyone may rewrite protects nothing: refused.
    std::fs::set_permissions(&system, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run(&["policy", "check"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("writable by group or others"),
        "{}",
        text(&out)
    );
}

/// The policy's own grants must stay inside the app's directory.
#[test]
fn defect_4_a_policy_grant_outside_the_app_is_bad_input() {
    let policy = guard_policy("").replace(
        "    settings:",
        "    grant_dirs: [../../etc]\n    settings:",
    );
    let repo = Repo::new("", &policy);
    repo.plugin("migration-guard", "migration-guard");
    let (code, out) = repo.check();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("field `required_plugins.migration-guard.grant_dirs`: `../../etc` leaves the app's directory"),
        "{out}"
    );
}

#[test]
fn an_override_without_a_reason_says_where_the_rule_comes_from() {
    // No org policy here (none in this fixture's home, none at the system
    // path on this machine): the rule is the default, and the message says
    // so in a sentence that reads.
    let f = crate::deploy::Fixture::new("");
    let out = f.run(&["deploy", "--release", "v1", "--allow", "remove-column"]);
    assert_eq!(out.status.code(), Some(2), "{}", crate::deploy::text(&out));
    assert!(
        crate::deploy::text(&out).contains(
            "--allow remove-column needs --reason TEXT: with no org policy, every override is \
             recorded with who and why"
        ),
        "{}",
        crate::deploy::text(&out)
    );
}
