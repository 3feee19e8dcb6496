//! The first-party plugins built into the binary (issue «19»): listed with
//! the sha256 a policy pins them by, usable by name from a deploy file and
//! required by an org policy with no plugin files anywhere, and the same
//! components `plugins/` builds (so the tests of those plugins hold for
//! what ships).

use crate::deploy::{Fixture, text};
use crate::util::component;
use serde_json::Value;

fn drop_items(f: &Fixture) {
    std::fs::write(
        f.root.path().join("app/migrations/0002_drop_items.up.sql"),
        "DROP TABLE items;\n",
    )
    .unwrap();
}

#[test]
fn plugin_list_names_each_builtin_with_the_digest_of_the_built_component() {
    let f = Fixture::new("");
    let out = f
        .cmd(&["platform", "status"])
        .args(["--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(["plugin", "list", "--json"])
        .env("BLUEGREEN_HOME", f.home())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let listed: Vec<Value> = crate::deploy::json_lines(&out.stdout);
    let names: Vec<&str> = listed.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["migration-guard", "http-probe", "notify", "slo-check"]
    );
    for p in &listed {
        let built = std::fs::read(component(p["name"].as_str().unwrap())).unwrap();
        assert_eq!(p["sha256"], bluegreen::plugin::sha256_hex(&built), "{p}");
        assert_eq!(p["use"], format!("builtin:{}", p["name"].as_str().unwrap()));
    }
}

#[test]
fn a_builtin_guard_blocks_by_name_and_an_org_policy_requires_it_pinned() {
    let f = Fixture::new("plugins: { builtin: [migration-guard] }\n");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    drop_items(&f);
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("drop-table"), "{}", text(&out));

    // No plugin files: the org's policy names the built-in and pins it.
    f.write_file("");
    let sha = bluegreen::plugin::builtin::find("migration-guard")
        .unwrap()
        .sha256();
    let policy = f.root.path().join("policy.yaml");
    let pinned = |sha: &str| {
        format!(
            "required_plugins:\n  migration-guard:\n    path: builtin:migration-guard\n    \
             sha256: {sha}\n    settings: {{ mode: block }}\n"
        )
    };
    std::fs::write(&policy, pinned(&sha)).unwrap();
    let p = policy.to_str().unwrap();
    let out = f.run(&["deploy", "--release", "v2", "--policy", p]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("drop-table"), "{}", text(&out));
    // Pinned to another build: refused, naming both digests.
    std::fs::write(&policy, pinned(&"0".repeat(64))).unwrap();
    let out = f.run(&["deploy", "--release", "v2", "--policy", p]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains(&sha), "{}", text(&out));
    // A name that is not built in.
    f.write_file("plugins: { builtin: [migration-gaurd] }\n");
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("there are: migration-guard"),
        "{}",
        text(&out)
    );
}
