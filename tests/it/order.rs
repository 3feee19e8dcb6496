//! Defects 9 and 10 of «7 · Hardening»: which color leaves the route, when,
//! and what a deploy stopped on its second color leaves behind. The rule:
//! at every moment a healthy color we checked is on the route, and when a
//! deploy stops, one release serves it.

use crate::deploy::{Fixture, get, text};
use bluegreen::config::DeployFile;
use bluegreen::deploy::site::Site;
use bluegreen::plugin::context::Color;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

/// Both colors on the route, healthy, on `release`; the history agrees.
fn assert_one_release(f: &Fixture, release: &str) {
    let s = f.status();
    for c in crate::deploy::both_colors(&s) {
        assert_eq!(
            (&c["mapped"], &c["healthy"], &c["release"]),
            (&true.into(), &true.into(), &release.into()),
            "{s}"
        );
    }
    let last = f.last_history();
    for c in ["blue", "green"] {
        assert_eq!(last["releases"][c], release, "{last}");
    }
    for _ in 0..20 {
        let (status, body) = get(f.router_port, "shop", "/").unwrap();
        assert_eq!(status, 200);
        assert!(body.starts_with(&format!("release {release} ")), "{body}");
    }
}

/// A block after the first color switched used to leave blue on v2 and
/// green on v1, the route alternating between them and the history saying
/// v1 on both.
#[test]
fn defect_10_a_block_on_the_second_color_brings_the_first_back() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    for at in ["pre-unmap:green", "pre-map:green", "post-map:green"] {
        f.gate(&format!("block-at: \"{at}\""));
        let load = f.load();
        let out = f.deploy("v2");
        let (n, failures, _) = load.finish();
        assert_eq!(out.status.code(), Some(3), "{at}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("rolled blue back to v1") && err.contains("one release serves"),
            "{at}: {err}"
        );
        assert!(n > 10 && failures.is_empty(), "{at}: {n} {failures:?}");
        assert_one_release(&f, "v1");
        assert_eq!(f.last_history()["result"], "blocked");
    }
}

/// The first deploy has no earlier release to go back to: a block on the
/// second color leaves the first serving the new release, and the history
/// says so rather than claiming nothing serves.
#[test]
fn defect_10_without_an_earlier_release_the_first_color_keeps_serving() {
    let f = Fixture::new("");
    f.gate("block-at: \"pre-map:green\"");
    let out = f.deploy("v1");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("blue keeps serving release v1"),
        "{}",
        text(&out)
    );
    let last = f.last_history();
    assert_eq!(last["releases"]["blue"], "v1", "{last}");
    assert!(last["releases"].get("green").is_none(), "{last}");
    let (status, body) = get(f.router_port, "shop", "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "release v1 blue\n"));
}

/// `/health` fails on release v2 once the file `$SICK_FILE` exists: the
/// first color passes its probe, is mapped, then turns sick.
fn turns_sick() -> String {
    crate::util::py_app(
        r#"sick = os.environ.get("BLUEGREEN_RELEASE") == "v2" and os.path.exists(os.environ["SICK_FILE"])"#,
        r#"500 if sick and self.path == "/health" else 200"#,
        r#""release %s %s\n" % (os.environ.get("BLUEGREEN_RELEASE"), os.environ.get("BLUEGREEN_COLOR"))"#,
    )
}

/// The second color used to be unmapped on the strength of the first
/// color's probe minutes earlier.
#[test]
fn defect_9_the_second_color_leaves_the_route_only_while_the_first_is_healthy() {
    let f = Fixture::new("");
    let sick = f.root.path().join("sick");
    std::fs::write(f.root.path().join("app/app.py"), turns_sick()).unwrap();
    crate::util::succeeded(f.deploy("v1"));
    f.gate("sleep-ms: \"300\"");
    let yaml = std::fs::read_to_string(&f.file)
        .unwrap()
        .replace("env: {", &format!("env: {{ SICK_FILE: {},", sick.display()));
    std::fs::write(&f.file, yaml).unwrap();
    let mut child = f.spawn(&["deploy", "--release", "v2", "--json"]);
    // Blue goes first; once it is mapped, it turns sick.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let t = Instant::now();
    let mut line = String::new();
    loop {
        line.clear();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "the deploy ended");
        assert!(t.elapsed() < Duration::from_secs(60));
        let e: Value = serde_json::from_str(&line).unwrap_or_default();
        if e["step"] == "map" && e["color"] == "blue" && e["status"] == "done" {
            std::fs::write(&sick, "").unwrap();
            break;
        }
    }
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("blue must serve while green is off the route, and it is not healthy now"),
        "{err}"
    );
    // Green never left the route; blue went back to v1, which is healthy.
    let ev = crate::deploy::json_lines(&rest);
    assert!(
        !ev.iter()
            .any(|e| e["step"] == "unmap" && e["color"] == "green" && e["status"] == "done"),
        "{ev:?}"
    );
    assert_one_release(&f, "v1");
}

/// Green runs the newest release but is off the route: the deploy used to
/// unmap blue first, the only color serving, and the route went dark.
#[tokio::test(flavor = "multi_thread")]
async fn defect_9_the_only_color_serving_leaves_the_route_last() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let (endpoint, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
        .await
        .expect("the daemon answers");
    let file = DeployFile::load(&f.file).unwrap();
    let site = Site::open(&file, client.clone(), endpoint.router_port, false)
        .await
        .unwrap()
        .unwrap();
    client
        .unmap_route(&site.route.guid, &site.app(Color::Green).guid)
        .await
        .unwrap();
    assert_eq!(site.newest(), Some(Color::Green));
    let load = f.load();
    let out = tokio::task::spawn_blocking({
        let cmd = f.cmd(&["deploy", "--release", "v2", "--json"]);
        let mut cmd = cmd;
        move || cmd.output().unwrap()
    })
    .await
    .unwrap();
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(n > 10 && failures.is_empty(), "{n} {failures:?}");
    assert_eq!(seen, ["v1", "v2"]);
    let first_unmap = crate::deploy::json_lines(&out.stdout)
        .into_iter()
        .find(|e| e["step"] == "unmap")
        .unwrap();
    assert_eq!(first_unmap["color"], "green", "{first_unmap}");
    assert_one_release(&f, "v2");
}
