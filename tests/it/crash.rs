//! Crashes of the platform's own daemon: what it left running is stopped
//! at its next start, and the apps come back once, not twice.

use crate::deploy::{Fixture, get};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z'))
}

/// Processes whose working directory is inside `home` (the apps' droplets).
fn processes_under(home: &Path) -> Vec<u32> {
    let home = home.canonicalize().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| alive(*pid))
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&home))
        })
        .collect()
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let t = Instant::now();
    while !done() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Defect 12 of «7 · Hardening»: a daemon killed with SIGKILL left its app
/// process groups running, and its next start ran second copies beside them.
#[test]
fn defect_12_a_killed_daemons_apps_are_stopped_at_its_next_start_not_doubled() {
    let mut f = Fixture::new("");
    assert_eq!(f.deploy("v1").status.code(), Some(0));
    let before = processes_under(f.home());
    assert_eq!(before.len(), 2, "one process per color: {before:?}");
    let endpoint: Value =
        serde_json::from_slice(&std::fs::read(f.home().join("platform/daemon.json")).unwrap())
            .unwrap();
    let daemon = endpoint["pid"].as_u64().unwrap() as u32;
    // SAFETY: signalling the test's own daemon.
    unsafe { libc::kill(daemon as i32, libc::SIGKILL) };
    wait_until("the daemon dies", Duration::from_secs(10), || {
        !alive(daemon)
    });
    assert!(
        before.iter().all(|p| alive(*p)),
        "the apps outlive their daemon (the case this covers)"
    );

    f.start_platform();
    wait_until(
        "the old app processes stop",
        Duration::from_secs(15),
        || before.iter().all(|p| !alive(*p)),
    );
    wait_until("both colors serve again", Duration::from_secs(30), || {
        let s = f.status();
        s["colors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["healthy"] == true && c["mapped"] == true)
    });
    let after = processes_under(f.home());
    assert_eq!(after.len(), 2, "no second copies: {after:?}");
    assert!(after.iter().all(|p| !before.contains(p)));
    let (status, body) = get(f.router_port, "shop", "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.starts_with("release v1 "), "{body}");
}
