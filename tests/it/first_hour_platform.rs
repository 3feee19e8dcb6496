//! «19 · The first hour», starting the local platform: a router port in use
//! took 15 s to report and printed its cause twice without naming
//! `--router-port`; `platform start --router-port N` on a running platform
//! kept the old port and exited 0. Now the first is said at once, once,
//! with the fix, and the second says where the platform runs and exits 2.

use crate::deploy::{Fixture, text};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `bluegreen ARGS` with its own home and no port from the environment.
fn bluegreen(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .args(args)
        .env("BLUEGREEN_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("BLUEGREEN_ROUTER_PORT")
        .stdin(Stdio::null())
        .output()
        .expect("running bluegreen")
}

/// Stops the platform of `home` on the way out, should a start succeed.
struct Stop<'a>(&'a std::path::Path);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        let _ = bluegreen(self.0, &["platform", "stop"]);
    }
}

#[test]
fn a_router_port_in_use_is_reported_at_once_once_naming_router_port() {
    let home = tempfile::tempdir().unwrap();
    let _stop = Stop(home.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for foreground in [false, true] {
        let mut args = vec!["platform", "start", "--router-port", &port];
        if foreground {
            args.push("--foreground");
        }
        let t = Instant::now();
        let out = bluegreen(home.path(), &args);
        let took = t.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(took < Duration::from_millis(1500), "{args:?}: {took:?}");
        assert!(
            err.contains(&format!(
                "cannot listen on 127.0.0.1:{port} (the router's port): another program \
                 (or another local platform) already listens on it"
            )),
            "{err}"
        );
        assert_eq!(err.matches("already listens").count(), 1, "once: {err}");
        assert!(!err.contains("os error"), "{err}");
        assert!(
            err.contains(
                "`bluegreen platform start --router-port N` (or `BLUEGREEN_ROUTER_PORT=N`"
            ),
            "{err}"
        );
        eprintln!("{args:?} with the port taken, in {took:?}:\n{err}");
    }
    let out = bluegreen(home.path(), &["platform", "status"]);
    assert_eq!(out.status.code(), Some(1), "nothing runs: {}", text(&out));
    drop(taken);
}

#[test]
fn platform_start_on_another_port_says_where_it_runs_and_exits_2() {
    let f = Fixture::new("");
    let running = f.router_port.to_string();
    let other = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let start = |args: &[&str]| {
        let mut all = vec!["platform", "start"];
        all.extend_from_slice(args);
        f.cmd(&all)
            .env_remove("BLUEGREEN_ROUTER_PORT")
            .output()
            .unwrap()
    };
    let out = start(&["--router-port", &other]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the local platform is already running (pid ")
            && err.contains(&format!(
                "its router on port {running}, not {other}: a running platform keeps its port. \
             To move it, `bluegreen platform stop` first, then `bluegreen platform start \
             --router-port {other}`"
            )),
        "{err}"
    );
    let out = start(&["--router-port", &other, "--foreground"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // The port it runs on, any port, or none asked: it runs, exit 0.
    for args in [
        &["--router-port", running.as_str()][..],
        &["--router-port", "0"],
        &[],
    ] {
        let out = start(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains(&format!("router http://*.apps.localhost:{running}")),
            "{shown}"
        );
    }
}
