//! Item 6: processes that leave an app's process group (`setsid`, an
//! orphan with a scrubbed environment) die with a restart of the app,
//! `platform stop`, and the next start after the daemon was killed; with
//! cgroups where the daemon can make them, and without.

use crate::deploy::{Fixture, text};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Pids an app's `escape.sh` wrote (one file per escapee), killed at the
/// end whatever happened, so no test leaves a process behind.
struct Escapees {
    dir: tempfile::TempDir,
}

impl Escapees {
    /// `(file name, pid, start time)` of each escapee written so far.
    fn all(&self) -> Vec<(String, u32, u64)> {
        let mut found: Vec<(String, u32, u64)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let pid: u32 = std::fs::read_to_string(e.path())
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((name, pid, started(pid)?))
            })
            .filter(|(name, ..)| !name.ends_with(".tmp"))
            .collect();
        found.sort();
        found
    }

    /// Waits (bounded) until `n` escapees named other than in `old` exist.
    fn wait_for(&self, n: usize, old: &[(String, u32, u64)]) -> Vec<(String, u32, u64)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let new: Vec<_> = self
                .all()
                .into_iter()
                .filter(|e| !old.contains(e))
                .collect();
            if new.len() >= n || Instant::now() > deadline {
                return new;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Escapees {
    fn drop(&mut self) {
        let mark = self.dir.path().to_string_lossy().to_string();
        for (_, pid, _) in self.all() {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&mark) {
                // SAFETY: a process this test's app started (its cmdline names our dir).
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
    }
}

/// When `pid` started (ticks since boot), if it exists and is no zombie.
fn started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    (fields[0] != "Z").then(|| fields[19].parse().ok())?
}

/// Waits (bounded) until none of `these` exists any more; returns those left.
fn gone(these: &[(String, u32, u64)]) -> Vec<(String, u32, u64)> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left: Vec<_> = these
            .iter()
            .filter(|(_, pid, t)| {
                std::path::Path::new(&format!("/proc/{pid}")).exists()
                    && started(*pid).is_none_or(|now| now == *t)
            })
            .cloned()
            .collect();
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Two escapees per app instance: a `setsid` child that keeps its
/// environment, and an orphan in a session of its own with a scrubbed one.
const ESCAPE: &str = r#"
d="$ESCAPES/$BLUEGREEN_APP_NAME-$CF_INSTANCE_INDEX"
w='import os, sys, time
open(sys.argv[1] + ".tmp", "w").write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(300)'
setsid python3 -c "$w" "$d.setsid" &
( env -i /usr/bin/setsid /usr/bin/python3 -c "$w" "$d.scrubbed" & )
"#;

/// Whether the daemon put `pid` in one of its cgroups (where it can make
/// them, an orphan with a scrubbed environment is found per instance too).
fn in_cgroup(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains("/bluegreen-"))
}

/// A platform (with cgroups unless `cgroups` is false) that deployed an app
/// whose every instance starts two escapees; they are running.
fn deployed(cgroups: bool) -> (Fixture, Escapees, Vec<(String, u32, u64)>) {
    let mut f = Fixture::new("");
    if !cgroups {
        assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
        let out = f
            .cmd(&["platform", "start", "--router-port", "0"])
            .env("BLUEGREEN_CGROUPS", "off")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        f.router_port = endpoint(&f)["router_port"].as_u64().unwrap() as u16;
    }
    let escapees = Escapees {
        dir: tempfile::tempdir().unwrap(),
    };
    let app = f.root.path().join("app");
    std::fs::write(app.join("escape.sh"), ESCAPE).unwrap();
    std::fs::write(
        app.join("Procfile"),
        "web: sh escape.sh; exec python3 app.py\n",
    )
    .unwrap();
    let yaml = format!(
        "app: shop\npath: app\nhealth: {{ path: /health, interval: 50ms, timeout: 10s }}\n\
         drain: 2s\nenv: {{ MIGRATION_LOG: {}, ESCAPES: {} }}\n\
         migrate: {{ command: python3 migrate.py, kind: sql }}\n",
        f.migration_log().display(),
        escapees.dir.path().display()
    );
    std::fs::write(&f.file, yaml).unwrap();
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let first = escapees.wait_for(4, &[]);
    assert_eq!(first.len(), 4, "two colors, two escapees each: {first:?}");
    if !cgroups {
        assert!(!first.iter().any(|e| in_cgroup(e.1)), "{first:?}");
    }
    (f, escapees, first)
}

fn endpoint(f: &Fixture) -> Value {
    serde_json::from_slice(&std::fs::read(f.home().join("platform/daemon.json")).unwrap()).unwrap()
}

async fn escapees_die_with_a_restart_and_platform_stop(cgroups: bool) {
    let (f, escapees, first) = deployed(cgroups);

    // A restart through the API stops all of one app's processes: those
    // that kept the marker always, the scrubbed orphan where cgroups are.
    let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    let apps: Vec<bluegreen::platform::v3::App> = client.list("/v3/apps").await.unwrap();
    let restarted = apps.iter().find(|a| a.name.starts_with("shop")).unwrap();
    client.app_action(&restarted.guid, "restart").await.unwrap();
    let theirs: Vec<_> = first
        .iter()
        .filter(|(name, ..)| name.starts_with(&format!("{}-", restarted.name)))
        .filter(|(name, pid, _)| name.ends_with(".setsid") || in_cgroup(*pid))
        .cloned()
        .collect();
    assert!(!theirs.is_empty(), "{first:?}");
    assert_eq!(
        gone(&theirs),
        [],
        "left running by a restart of {}",
        restarted.name
    );
    let second = escapees.wait_for(2, &first);
    assert_eq!(second.len(), 2, "the restarted instance's own: {second:?}");

    // `platform stop` stops everything any app started, cgroups or not.
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
    let every: Vec<_> = first.into_iter().chain(second).collect();
    assert_eq!(gone(&every), [], "left running by platform stop");
    drop(f);
    drop(escapees);
}

#[tokio::test(flavor = "multi_thread")]
async fn defect_6_setsid_children_die_with_a_restart_and_platform_stop() {
    escapees_die_with_a_restart_and_platform_stop(true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn defect_6_without_cgroups_the_marker_and_the_subreaper_find_them() {
    escapees_die_with_a_restart_and_platform_stop(false).await;
}

/// A daemon killed with SIGKILL cannot stop anything: its next start stops
/// what the killed one's apps left, those outside their groups included
/// (by the marker its records name, and by its cgroups where it had them).
#[test]
fn defect_6_a_killed_daemons_setsid_children_are_stopped_at_its_next_start() {
    let (mut f, escapees, first) = deployed(true);
    let pid = endpoint(&f)["pid"].as_u64().unwrap() as i32;
    // SAFETY: the daemon this test started (daemon.json in its own home).
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        first.iter().all(|(_, pid, t)| started(*pid) == Some(*t)),
        "the escapees outlive a killed daemon: {first:?}"
    );
    f.start_platform();
    let theirs: Vec<_> = first
        .iter()
        .filter(|(name, pid, _)| name.ends_with(".setsid") || in_cgroup(*pid))
        .cloned()
        .collect();
    assert_eq!(gone(&theirs), [], "left running after the next start");
    drop(f);
    drop(escapees);
}
