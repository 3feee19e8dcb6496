//! `policy.md`: "The system policy, `/etc/bluegreen/policy.yaml` (or
//! `$BLUEGREEN_SYSTEM_POLICY` on a machine without that file), always
//! applies; it must not be writable by group or others." Checked at that
//! very path, in a mount namespace of its own (`unshare`) where `/etc` is an
//! overlay: the machine's `/etc`, and every other test, see nothing of it.

use crate::deploy::text;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// `bluegreen policy check -f DIR/bluegreen.yaml` with `policy` at
/// `/etc/bluegreen/policy.yaml` (mode `mode`), and `BLUEGREEN_SYSTEM_POLICY`
/// naming another file.
fn check_with_etc_policy(dir: &Path, policy: &str, mode: u32) -> Output {
    std::fs::write(dir.join("bluegreen.yaml"), "app: shop\npath: .\n").unwrap();
    let etc = dir.join("etc-policy.yaml");
    std::fs::write(&etc, policy).unwrap();
    std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(mode)).unwrap();
    let other = dir.join("variable-policy.yaml");
    std::fs::write(
        &other,
        "overrides: { allowed: true, require_reason: false }\n",
    )
    .unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
    for d in ["upper", "work"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    // `cp -p` keeps the mode the test chose.
    let script = format!(
        "set -e; mount -t overlay overlay -o lowerdir=/etc,upperdir={d}/upper,workdir={d}/work /etc; \
         mkdir -p /etc/bluegreen; cp -p {d}/etc-policy.yaml /etc/bluegreen/policy.yaml; \
         exec \"$0\" policy check -f {d}/bluegreen.yaml",
        d = dir.display()
    );
    Command::new("unshare")
        .args(["--map-root-user", "--mount", "sh", "-c", &script])
        .arg(env!("CARGO_BIN_EXE_bluegreen"))
        .env("BLUEGREEN_HOME", dir.join("home"))
        .env("BLUEGREEN_SYSTEM_POLICY", &other)
        .env_remove("BLUEGREEN_POLICY")
        .env("NO_COLOR", "1")
        .output()
        .expect("running unshare (util-linux)")
}

#[test]
fn the_system_policy_at_etc_bluegreen_applies_before_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_with_etc_policy(dir.path(), "overrides: { allowed: false }\n", 0o644);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("Effective policy /etc/bluegreen/policy.yaml (from the system policy)"),
        "{t}"
    );
    assert!(t.contains("overrides (--allow): not allowed"), "{t}");
    assert!(!t.contains("variable-policy.yaml"), "{t}");
}

#[test]
fn a_system_policy_at_etc_bluegreen_that_others_may_write_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = check_with_etc_policy(dir.path(), "overrides: { allowed: false }\n", 0o666);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("/etc/bluegreen/policy.yaml") && t.contains("writable by group or others"),
        "{t}"
    );
}
