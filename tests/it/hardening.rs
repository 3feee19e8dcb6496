//! Regression tests for the defects of «7 · Hardening», each named after its
//! defect and written to fail on the code before the fix.

use crate::util::TestServer;
use bluegreen::config::Health;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

/// Answers every request with a redirect to `to`.
fn redirector(to: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(50) {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.1 302 Found\r\nlocation: {to}/health\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    url
}

#[tokio::test]
async fn defect_5_the_health_probe_does_not_follow_redirects() {
    let healthy = TestServer::start(200, "ok");
    let candidate = redirector(healthy.url());
    let health = Health {
        path: "/health".into(),
        body: Some("ok".into()),
        interval: Duration::from_millis(50),
        ..Health::default()
    };
    let deadline = Instant::now() + Duration::from_millis(400);
    let err = bluegreen::deploy::health::probe(&candidate, &health, deadline)
        .await
        .expect_err("a redirect to a healthy host is not the candidate being healthy");
    assert!(err.last.contains("302"), "{}", err.last);
    assert_eq!(healthy.hits(), 0, "the probe never reached the other host");
    // The healthy host itself passes: the probe is not simply failing.
    assert!(
        bluegreen::deploy::health::probe(
            &healthy.url(),
            &health,
            Instant::now() + Duration::from_secs(2)
        )
        .await
        .is_ok()
    );
}

use crate::util::py_app;

/// Writes bytes that are not UTF-8, and one very long line, to stdout on
/// every request before answering.
fn noisy_app() -> String {
    py_app(
        r#"sys.stdout.buffer.write(b"bad \xff\xfe bytes\n" + b"x" * 100000 + b"\nafter the long line\n"); sys.stdout.buffer.flush()"#,
        "200",
        r#""release %s x\n" % os.environ.get("BLUEGREEN_RELEASE")"#,
    )
}

#[test]
fn defect_6_output_that_is_not_utf8_neither_stops_the_log_nor_kills_the_app() {
    let f = crate::deploy::Fixture::new("");
    std::fs::write(f.root.path().join("app/app.py"), noisy_app()).unwrap();
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", crate::deploy::text(&out));
    for i in 0..20 {
        let (status, body) = crate::deploy::get(f.router_port, "shop", "/").unwrap();
        assert_eq!(status, 200, "request {i}: {body}");
    }
    let logs = crate::util::succeeded(f.run(&["platform", "logs", "shop-blue"]));
    let log = String::from_utf8_lossy(&logs.stdout);
    assert!(
        log.contains("bad \u{FFFD}\u{FFFD} bytes"),
        "replaced, not fatal"
    );
    assert!(
        log.contains("[line cut at 16384 bytes]"),
        "long lines are cut"
    );
    assert!(
        log.contains("after the long line"),
        "the log goes on after it"
    );
    assert!(
        log.lines().all(|l| l.len() < 17 << 10),
        "no line over the cap"
    );
    assert!(!log.contains("restarting"), "the app never crashed:\n{log}");
}

/// A listener that records every request head it is sent.
fn recorder() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let heads = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(20) {
            let Ok(s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut head = String::new();
            let mut reader = BufReader::new(s);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                head.push_str(&line);
                line.clear();
            }
            heads.lock().unwrap().push(head);
        }
    });
    (url, seen)
}

/// What the `recorder` at `url` received before now: it handles its
/// connections in turn, so once it has recorded a request sent now
/// (waited for, bounded), whatever was sent to it before is recorded too.
fn recorded_before_now(url: &str, seen: &std::sync::Mutex<Vec<String>>) -> Vec<String> {
    const MARK: &str = "GET /recorded-before-now ";
    let mut own = std::net::TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    write!(own, "{MARK}HTTP/1.1\r\n\r\n").unwrap();
    crate::util::wait_until(
        "the recorder read a request of its own",
        Duration::from_secs(30),
        || seen.lock().unwrap().iter().any(|h| h.starts_with(MARK)),
    );
    seen.lock()
        .unwrap()
        .iter()
        .filter(|h| !h.starts_with(MARK))
        .cloned()
        .collect()
}

#[test]
fn defect_2_the_token_never_goes_to_a_stale_port_and_changes_per_start() {
    let f = crate::deploy::Fixture::new("");
    let dir = f.home().join("platform");
    let token = || std::fs::read_to_string(dir.join("token")).unwrap();
    let first = token();
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
    assert_eq!(
        f.run(&["platform", "start", "--router-port", "0"])
            .status
            .code(),
        Some(0)
    );
    let second = token();
    assert_ne!(first, second, "a fresh token per start");
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));

    // A stale daemon.json: its process is gone and its port is someone else's.
    let (url, seen) = recorder();
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = gone.id();
    gone.wait().unwrap();
    let stale =
        serde_json::json!({"pid": dead_pid, "started": 1, "api_url": url, "router_port": 1});
    std::fs::write(dir.join("daemon.json"), stale.to_string()).unwrap();
    let out = f.run(&["platform", "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", crate::deploy::text(&out));
    let heads = recorded_before_now(&url, &seen);
    assert!(
        heads.iter().all(|h| !h.contains(token().trim())),
        "the token reached a stranger: {heads:?}"
    );
    assert!(heads.is_empty(), "nothing was sent at all: {heads:?}");

    // A pid reused by another process is not signalled by `platform stop`.
    let mut bystander = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let reused =
        serde_json::json!({"pid": bystander.id(), "started": 1, "api_url": url, "router_port": 1});
    std::fs::write(dir.join("daemon.json"), reused.to_string()).unwrap();
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the bystander lives"
    );
    // Nor when the file predates start times (no `started`).
    let legacy = serde_json::json!({"pid": bystander.id(), "api_url": url, "router_port": 1});
    std::fs::write(dir.join("daemon.json"), legacy.to_string()).unwrap();
    assert_eq!(f.run(&["platform", "stop"]).status.code(), Some(0));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "the bystander lives"
    );
    bystander.kill().unwrap();
    bystander.wait().unwrap();

    // A daemon started by an older bluegreen (no `started` in its file) is
    // still found and stopped after an upgrade.
    let out = f.run(&["platform", "start", "--router-port", "0"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::deploy::text(&out));
    let mut endpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("daemon.json")).unwrap()).unwrap();
    let pid = endpoint["pid"].as_u64().unwrap() as i32;
    endpoint.as_object_mut().unwrap().remove("started");
    std::fs::write(dir.join("daemon.json"), endpoint.to_string()).unwrap();
    let out = f.run(&["platform", "stop"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("local platform stopped"),
        "{}",
        crate::deploy::text(&out)
    );
    // Gone, or a zombie its parent has not reaped yet.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = state
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .next();
    assert!(
        matches!(state, None | Some("Z")),
        "the old daemon is gone: {state:?}"
    );
}

#[tokio::test]
async fn defect_12_the_cf_client_sends_its_token_only_to_the_apis_origin() {
    use axum::routing::get;
    let (elsewhere, seen) = recorder();
    let page1 = std::fs::read_to_string(format!(
        "{}/tests/fixtures/cf/apps_list_page1.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut page1: serde_json::Value = serde_json::from_str(&page1).unwrap();
    // A response (tampered, or a misconfigured proxy) names another host.
    page1["pagination"]["next"]["href"] = format!("{elsewhere}/v3/apps?page=2").into();
    let app = axum::Router::new().route(
        "/v3/apps",
        get(move || {
            let body = page1.to_string();
            async move { ([("content-type", "application/json")], body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = bluegreen::platform::client::CfClient::with_token(&api, "s3cret-token");
    let err = client
        .list::<bluegreen::platform::v3::App>("/v3/apps")
        .await
        .expect_err("a next link to another origin is refused");
    assert!(
        err.to_string().contains("refusing to send credentials"),
        "{err}"
    );
    assert!(!err.to_string().contains("s3cret-token"), "{err}");
    let reached = recorded_before_now(&elsewhere, &seen);
    assert!(
        reached.is_empty(),
        "nothing reached the other host: {reached:?}"
    );
}

/// Answers with the request headers it received, one per line.
fn echo_app() -> String {
    py_app(
        "pass",
        "200",
        r#""".join("%s: %s\n" % (k.lower(), v) for k, v in self.headers.items())"#,
    )
}

#[test]
fn defect_12_the_router_sets_forwarding_headers_and_drops_hop_by_hop_ones() {
    use std::io::Read;
    let f = crate::deploy::Fixture::new("");
    std::fs::write(f.root.path().join("app/app.py"), echo_app()).unwrap();
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(0), "{}", crate::deploy::text(&out));

    let mut s = std::net::TcpStream::connect(("127.0.0.1", f.router_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nhost: shop.apps.localhost\r\nx-forwarded-for: 6.6.6.6\r\n\
         x-forwarded-host: evil.example\r\nconnection: close, x-internal-token\r\n\
         x-internal-token: s3cret\r\nkeep-alive: timeout=99\r\nx-kept: yes\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let seen = reply.split_once("\r\n\r\n").unwrap().1;
    assert!(seen.contains("x-forwarded-for: 127.0.0.1\n"), "{seen}");
    assert!(
        !seen.contains("6.6.6.6"),
        "a client's XFF is not trusted: {seen}"
    );
    assert!(seen.contains("x-forwarded-proto: http\n"), "{seen}");
    assert!(
        seen.contains("x-forwarded-host: shop.apps.localhost\n"),
        "{seen}"
    );
    assert!(
        !seen.contains("s3cret") && !seen.contains("timeout=99"),
        "{seen}"
    );
    assert!(
        seen.contains("x-kept: yes"),
        "end-to-end headers pass: {seen}"
    );

    // A client that never finishes its headers is cut off, not kept forever.
    let mut slow = std::net::TcpStream::connect(("127.0.0.1", f.router_port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    write!(slow, "GET / HTTP/1.1\r\nhost: shop.apps.localhost\r\n").unwrap();
    let t = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "closed after the header timeout, not the client's: {:?}",
        t.elapsed()
    );
}

/// Defect 3 of «7 · Hardening»: a deploy whose lease was taken went on
/// acting beside the new holder.
#[tokio::test(flavor = "multi_thread")]
async fn defect_3_a_deploy_that_loses_its_lock_stops_before_its_next_step() {
    use bluegreen::platform::lease::unix_now;
    let f = crate::deploy::Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    f.gate("sleep-ms: \"400\"");
    let child = f.spawn(&["deploy", "--release", "v2", "--json"]);
    let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    // Wait until the deploy is under way (bounded), then take its lock.
    let t = Instant::now();
    while client.lease_holder_local("shop").await.unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the deploy never took the lock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(client.release_local("shop", None).await.unwrap());
    let intruder = crate::util::lease("intruder", "shop", unix_now() + 60);
    assert!(client.lease_local(&intruder, None).await.unwrap().acquired);
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("lost the deploy lock of `shop`: deploy intruder"),
        "{stderr}"
    );
    // Nothing ran after the loss: the last event is a finished step.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let last = events.iter().rfind(|e| e["event"] == "step").unwrap();
    assert_ne!(last["status"], "started", "{last}");
    assert_eq!(
        client.lease_holder_local("shop").await.unwrap().unwrap().id,
        "intruder",
        "the loser did not release the winner's lock"
    );
    // Once the other holder is done, recover puts things right.
    assert!(
        client
            .release_local("shop", Some("intruder"))
            .await
            .unwrap()
    );
    let out = f.run(&["recover"]);
    assert_eq!(out.status.code(), Some(0), "{}", crate::deploy::text(&out));
    let s = f.status();
    for c in crate::deploy::both_colors(&s) {
        assert_eq!(
            (&c["mapped"], &c["healthy"]),
            (&true.into(), &true.into()),
            "{s}"
        );
    }
}

/// Defect 3: `recover` took over the lease of a deploy whose runner was
/// still at work, then deleted its lease and journal.
#[test]
fn defect_3_recover_leaves_a_live_deploy_alone() {
    let f = crate::deploy::Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    f.gate("sleep-ms: \"300\"");
    let child = f.spawn(&["deploy", "--release", "v2"]);
    let t = Instant::now();
    while !f.journal().exists() {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the deploy never began"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = f.run(&["recover"]);
    assert_eq!(out.status.code(), Some(4), "{}", crate::deploy::text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is locked by deploy"),
        "{}",
        crate::deploy::text(&out)
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the live deploy finished undisturbed"
    );
    f.assert_serving("v2");
}

/// Defect 7 of «7 · Hardening»: a FIFO in a granted directory blocked the
/// plugin's `open()` past its timeout, and the command never exited.
#[test]
fn defect_7_a_plugin_stuck_on_a_fifo_times_out_and_the_command_exits() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bluegreen"))
        .arg("plugin")
        .arg("run")
        .arg(crate::util::component("hostile"))
        .args(["--hook", "pre-deploy", "--timeout", "1s"])
        .args(["--setting", "attack=read-file", "--setting", "path=/g/pipe"])
        .arg("--grant-dir")
        .arg(format!("{}:/g", dir.path().display()))
        .env("BLUEGREEN_CACHE_DIR", crate::util::shared_cache_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if t.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = status.expect("the command exits after the plugin's timeout");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("timeout") || err.contains("timed out"),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

/// Defect 10 of «7 · Hardening»: a block at post-deploy (after both colors
/// switched) was recorded as if nothing had changed, so the history
/// disagreed with `status` and the next deploy sent the same migrations
/// again as pending.
#[test]
fn defect_10_a_block_at_post_deploy_records_the_release_that_serves() {
    let f = crate::deploy::Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    f.gate("block-at: \"post-deploy\"");
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(3), "{}", crate::deploy::text(&out));
    f.assert_serving("v2");
    let last = f.last_history();
    assert_eq!(last["result"], "done", "{last}");
    assert_eq!(last["releases"]["blue"], "v2", "{last}");
    assert_eq!(last["releases"]["green"], "v2", "{last}");
    assert_eq!(last["applied"], serde_json::json!(["0001"]), "{last}");
    assert!(
        last["message"].as_str().unwrap().contains("post-deploy"),
        "{last}"
    );
}

/// Unhealthy when `SICK=1` is set unless its bits carry a `V2` file: the
/// old release, restarted with the new deploy file's environment, fails
/// its probe.
/// Sick when `$SICK_DIR/<its color>` exists and its bits are not v2's: a
/// change outside the app (as a migration is) that only the new release
/// can take.
fn sick_app() -> String {
    py_app(
        r#"sick = os.path.exists(os.path.join(os.environ.get("SICK_DIR", "/nonexistent"), os.environ.get("BLUEGREEN_COLOR", "?"))) and not os.path.exists("V2")"#,
        "500 if sick else 200",
        r#""release %s %s\n" % (os.environ.get("BLUEGREEN_RELEASE"), os.environ.get("BLUEGREEN_COLOR"))"#,
    )
}

/// Defect 9 of «7 · Hardening»: a color whose restore probe failed stayed
/// mapped, so the route kept an unhealthy color that we had mapped.
#[test]
fn defect_9_a_color_that_fails_its_restore_probe_leaves_the_route() {
    let f = crate::deploy::Fixture::new("");
    std::fs::write(f.root.path().join("app/app.py"), sick_app()).unwrap();
    let sick_dir = f.root.path().join("sick");
    std::fs::create_dir_all(&sick_dir).unwrap();
    let yaml = std::fs::read_to_string(&f.file).unwrap().replace(
        "env: {",
        &format!("env: {{ SICK_DIR: \"{}\",", sick_dir.display()),
    );
    std::fs::write(&f.file, yaml).unwrap();
    crate::util::succeeded(f.deploy("v1"));
    // v2 is healthy and blocks after blue is mapped; meanwhile something
    // outside the app changed that blue's old release cannot take.
    std::fs::write(sick_dir.join("blue"), "").unwrap();
    std::fs::write(f.root.path().join("app/V2"), "").unwrap();
    f.gate("block-at: \"post-map:blue\"");
    let yaml = std::fs::read_to_string(&f.file)
        .unwrap()
        .replace("50ms, timeout: 10s", "50ms, timeout: 5s");
    std::fs::write(&f.file, yaml).unwrap();
    let out = f.deploy("v2");
    assert_eq!(out.status.code(), Some(3), "{}", crate::deploy::text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("blue could not be restored")
            && err.contains("off the route while green serves"),
        "{err}"
    );
    let s = f.status();
    for c in crate::deploy::both_colors(&s) {
        let (mapped, healthy) = (
            c["mapped"].as_bool().unwrap(),
            c["healthy"].as_bool().unwrap(),
        );
        assert!(!mapped || healthy, "an unhealthy color is mapped: {s}");
    }
    for _ in 0..10 {
        let (status, body) = crate::deploy::get(f.router_port, "shop", "/").unwrap();
        assert_eq!((status, body.as_str()), (200, "release v1 green\n"));
    }
}
