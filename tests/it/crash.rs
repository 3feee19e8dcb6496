//! Crashes of the platform's own daemon: what it left running is stopped
//! at its next start, and the apps come back once, not twice.

use crate::deploy::{Fixture, get};
use crate::util::{Seed, alive, processes_under, wait_until};
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

/// Defect 12 of «7 · Hardening»: a daemon killed with SIGKILL left its app
/// process groups running, and its next start ran second copies beside them.
#[test]
fn defect_12_a_killed_daemons_apps_are_stopped_at_its_next_start_not_doubled() {
    let mut f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
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
        crate::deploy::both_colors(&s)
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

/// Both colors mapped, healthy and on one release; returns it.
fn one_release(f: &Fixture, why: &str) -> String {
    let s = f.status();
    let colors = crate::deploy::both_colors(&s);
    for c in colors {
        assert_eq!(
            (&c["mapped"], &c["healthy"]),
            (&true.into(), &true.into()),
            "{why}: {s}"
        );
    }
    assert_eq!(colors[0]["release"], colors[1]["release"], "{why}: {s}");
    colors[0]["release"].as_str().unwrap().to_string()
}

/// A small xorshift: the soak's moments vary per run, and the seed is
/// printed so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The runner SIGKILLed at 50 random moments of a deploy under load, then
/// `recover`: every time one release serves, and no request fails.
#[test]
fn kill_soak_the_runner_killed_at_50_random_moments_loses_no_request() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v0"));
    // Printed with how to replay it should the test fail.
    let replay =
        Seed::new("crash::kill_soak_the_runner_killed_at_50_random_moments_loses_no_request");
    let seed = replay.value;
    let mut rng = Rng(seed);
    let load = f.load();
    let (mut mid_deploy, mut forward) = (0, 0);
    for k in 0..50 {
        let release = format!("s{k}");
        let mut child = f.spawn(&["deploy", "--release", &release]);
        let after = Duration::from_millis(rng.below(1000));
        std::thread::sleep(after);
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        child.wait().unwrap();
        let interrupted = f.journal().exists();
        let out = f.run(&["recover"]);
        let why = format!("kill {k} after {after:?} (seed {seed})");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{why}: {}",
            crate::deploy::text(&out)
        );
        let serving = one_release(&f, &why);
        if interrupted {
            mid_deploy += 1;
            forward += usize::from(serving == release);
        }
        assert!(!f.journal().exists(), "{why}");
    }
    let (requests, failures, _) = load.finish();
    // Straight to stderr, past the test harness's capture: the counts
    // belong in every run's log.
    let _ = writeln!(
        std::io::stderr(),
        "kill soak (seed {seed}): 50 kills, {mid_deploy} mid-deploy ({forward} rolled forward), \
         {requests} requests, {} failed",
        failures.len()
    );
    assert!(failures.is_empty(), "seed {seed}: {failures:?}");
    assert!(
        mid_deploy >= 15,
        "only {mid_deploy} kills landed mid-deploy"
    );
}

/// The daemon SIGKILLed mid-deploy: the runner fails (exit 1, its platform
/// is gone); the next start stops and restarts the apps once, and the next
/// deploy — with the dead runner's lock taken over, not waited out — puts
/// one release on both colors.
#[test]
fn the_daemon_killed_mid_deploy_comes_back_and_the_next_deploy_finishes() {
    let mut f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    f.gate("sleep-ms: \"150\"");
    let child = f.spawn(&["deploy", "--release", "v2"]);
    wait_until("the first color is pushed", Duration::from_secs(30), || {
        std::fs::read_to_string(f.journal())
            .unwrap_or_default()
            .contains("\"droplet\"")
    });
    let endpoint: Value =
        serde_json::from_slice(&std::fs::read(f.home().join("platform/daemon.json")).unwrap())
            .unwrap();
    let daemon = endpoint["pid"].as_u64().unwrap() as u32;
    // SAFETY: signalling the test's own daemon.
    unsafe { libc::kill(daemon as i32, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0), "{}", crate::deploy::text(&out));

    f.start_platform();
    let t = Instant::now();
    let out = f.deploy("v3");
    assert_eq!(out.status.code(), Some(0), "{}", crate::deploy::text(&out));
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "waited out a lease: {:?}",
        t.elapsed()
    );
    assert_eq!(one_release(&f, "after the daemon's crash"), "v3");
    assert_eq!(processes_under(f.home()).len(), 2, "one process per color");
}
