//! Apps of real size: packages stream to the daemon's disk (never whole in
//! its memory), and one over the limit gets a 413 that says how to raise it.

use crate::deploy::{Fixture, text};
use std::io::Read;
use std::path::Path;

/// `size` bytes that do not compress, like the images and bundles in real apps.
fn random_file(path: &Path, size: u64) {
    let mut src = std::fs::File::open("/dev/urandom").unwrap().take(size);
    let mut dst = std::fs::File::create(path).unwrap();
    assert_eq!(std::io::copy(&mut src, &mut dst).unwrap(), size);
}

/// The daemon's peak resident set (VmHWM), in bytes.
fn daemon_peak_rss(f: &Fixture) -> u64 {
    let endpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(f.home().join("platform/daemon.json")).unwrap())
            .unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", endpoint["pid"])).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn a_200_mb_app_deploys_and_the_daemon_memory_stays_flat() {
    let f = Fixture::new("");
    const SIZE: u64 = 200 << 20;
    random_file(&f.root.path().join("app/assets.bin"), SIZE);
    let before = daemon_peak_rss(&f);
    let t = std::time::Instant::now();
    let out = f.deploy("big");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let took = t.elapsed();
    let after = daemon_peak_rss(&f);
    f.assert_serving("big");
    let growth = after.saturating_sub(before);
    eprintln!(
        "200 MB app: deploy {took:?}; daemon peak RSS {} MB -> {} MB (+{} MB)",
        before >> 20,
        after >> 20,
        growth >> 20
    );
    assert!(growth < 64 << 20, "peak RSS grew by {} MB", growth >> 20);
    // The bits arrived whole in the droplet the colors run.
    let droplets = f.home().join("platform/droplets");
    let sizes: Vec<u64> = std::fs::read_dir(&droplets)
        .unwrap()
        .map(|d| {
            std::fs::metadata(d.unwrap().path().join("assets.bin"))
                .unwrap()
                .len()
        })
        .collect();
    assert_eq!(sizes, [SIZE], "one droplet, shared by both colors");
    let packages = std::fs::read_dir(f.home().join("platform/packages"))
        .unwrap()
        .count();
    assert_eq!(packages, 0, "the staged package's zip is gone");
}

#[test]
fn a_package_over_the_limit_is_refused_with_how_to_raise_it() {
    let mut f = Fixture::new("");
    random_file(&f.root.path().join("app/assets.bin"), 40 << 20);
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
    let out = f
        .cmd(&[
            "platform",
            "start",
            "--router-port",
            "0",
            "--max-upload",
            "1MiB",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HTTP 413")
            && err.contains("upload limit of 1MiB")
            && err.contains("--max-upload SIZE"),
        "{err}"
    );

    // The default limit takes a 40 MB app (3 MB used to fail at 2 MiB).
    // (Restarted through the fixture: the router's new port is the one
    // the route is asked on.)
    f.restart_platform_with(&[]);
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    f.assert_serving("v2");
}
