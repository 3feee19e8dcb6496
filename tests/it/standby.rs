//! `scale_down_delay`, the warm standby: only the idle color gets the new
//! release, the old color keeps serving the previous one off the route, and
//! `rollback` maps it again without a push; when its time ends it is
//! stopped, and a rollback then replays the release instead. A real daemon,
//! real app processes and real HTTP through the router, as in `deploy.rs`.

use crate::deploy::{Fixture, both_colors, get, text};
use crate::util::*;
use bluegreen::platform::v3;
use serde_json::Value;
use std::io::Write;
use std::time::{Duration, Instant};

/// One color of `status --json`.
fn color<'a>(s: &'a Value, name: &str) -> &'a Value {
    both_colors(s)
        .into_iter()
        .find(|c| c["color"] == name)
        .unwrap_or_else(|| panic!("no {name} in {s}"))
}

/// `name` in `status`: (release, mapped, healthy, state).
fn seen(s: &Value, name: &str) -> (Value, Value, Value, String) {
    let c = color(s, name);
    (
        c["release"].clone(),
        c["mapped"].clone(),
        c["healthy"].clone(),
        c["state"].as_str().unwrap_or_default().to_lowercase(),
    )
}

fn on(release: &str, mapped: bool, healthy: bool, state: &str) -> (Value, Value, Value, String) {
    (release.into(), mapped.into(), healthy.into(), state.into())
}

/// Asks the platform directly (not through `bluegreen`).
fn platform<T>(
    f: &Fixture,
    ask: impl AsyncFnOnce(bluegreen::platform::client::CfClient) -> T,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_, client) = bluegreen::platform::local::connect(&f.home().join("platform"))
            .await
            .expect("the daemon answers");
        ask(client).await
    })
}

/// How many droplets the color apps have: every push to a color makes one
/// (staged, or copied from the other color), a switch back none.
fn droplets(f: &Fixture) -> usize {
    platform(f, async |c| {
        let apps = c.list::<v3::App>("/v3/apps").await.unwrap();
        let mut n = 0;
        for app in apps.iter().filter(|a| a.name.starts_with("shop-")) {
            let path = format!("/v3/apps/{}/droplets", app.guid);
            n += c.list::<v3::Droplet>(&path).await.unwrap().len();
        }
        n
    })
}

/// What the color app `name` answers on its own port, past the router.
fn own(f: &Fixture, name: &str) -> String {
    let port = platform(f, async |c| {
        let apps = c.list::<v3::App>("/v3/apps").await.unwrap();
        let app = apps.iter().find(|a| a.name == name).expect("the app");
        let process = c.web_process(&app.guid).await.unwrap();
        let stats = c.process_stats(&process.guid).await.unwrap();
        stats
            .iter()
            .find(|s| s.state == "RUNNING")
            .and_then(|s| s.instance_ports.first())
            .map(|p| p.internal)
            .expect("a running instance")
    });
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
}

/// Every answer of the route is `release R COLOR`.
fn route_serves_only(f: &Fixture, body: &str) {
    for i in 0..20 {
        let (status, got) = get(f.router_port, "shop", "/").unwrap();
        assert_eq!((status, got.as_str()), (200, body), "request {i}");
    }
}

#[test]
fn the_old_color_stays_up_off_the_route_and_rollback_maps_it_without_a_push() {
    let f = Fixture::new("scale_down_delay: 30m\n");
    succeeded(f.deploy("v1"));
    // A first deploy: one color, nothing to keep.
    let s = f.status();
    assert_eq!(seen(&s, "blue"), on("v1", true, true, "started"), "{s}");
    assert_eq!(color(&s, "green")["mapped"], false, "{s}");
    assert_eq!(f.migrations(), 1);

    let out = succeeded(f.deploy("v2"));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!said.contains("push to blue"), "{said}");
    let s = f.status();
    assert_eq!(seen(&s, "green"), on("v2", true, true, "started"), "{s}");
    assert_eq!(seen(&s, "blue"), on("v1", false, true, "started"), "{s}");
    let standby = &color(&s, "blue")["standby"];
    assert_eq!(standby["release"], "v1", "{s}");
    assert_eq!(standby["expired"], false, "{s}");
    assert!(standby["until"].is_string(), "{s}");
    route_serves_only(&f, "release v2 green\n");
    assert_eq!(own(&f, "shop-blue"), "release v1 blue\n");
    let shown = text(&f.run(&["status"]));
    assert!(
        shown.contains("standby on release v1 until ") && shown.contains("`bluegreen rollback`"),
        "{shown}"
    );

    let before = droplets(&f);
    let load = f.load();
    let t = Instant::now();
    let out = succeeded(f.run(&["rollback"]));
    let took = t.elapsed();
    let (n, failures, _) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {n} failed: {failures:?}",
        failures.len()
    );
    let said = text(&out);
    assert!(
        said.contains("Rollback to the standby: shop-blue runs release v1"),
        "{said}"
    );
    assert!(!said.contains("push to"), "{said}");
    assert_eq!(droplets(&f), before, "no droplet made: {said}");
    let s = f.status();
    assert_eq!(seen(&s, "blue"), on("v1", true, true, "started"), "{s}");
    assert_eq!(seen(&s, "green"), on("v2", false, true, "started"), "{s}");
    assert_eq!(color(&s, "green")["standby"]["release"], "v2", "{s}");
    assert_eq!(color(&s, "blue")["standby"], Value::Null, "{s}");
    route_serves_only(&f, "release v1 blue\n");
    let last = f.last_history();
    assert_eq!(
        (
            &last["kind"],
            &last["result"],
            &last["releases"]["blue"],
            &last["releases"]["green"]
        ),
        (
            &"rollback".into(),
            &"done".into(),
            &"v1".into(),
            &"v2".into()
        ),
        "{last}"
    );
    // The history keeps only v1's own droplet under v1.
    assert!(last["droplets"].get("green").is_none(), "{last}");
    // The target: under one second locally. A switch with no push
    // or restart measured 16-52 ms, so a loaded machine stays far below it.
    let steps_ms = last["duration_ms"].as_u64().unwrap();
    assert!(
        steps_ms < 1000,
        "standby rollback took {steps_ms} ms of steps"
    );
    let _ = writeln!(
        std::io::stderr(),
        "standby rollback: {} ms of steps, {:.0} ms for the whole `bluegreen rollback` \
         process; no push; {n} requests through the route meanwhile, none failed",
        last["duration_ms"],
        took.as_secs_f64() * 1e3
    );

    // The next deploy goes to the idle color, the standby (green), and
    // blue becomes the standby on v1.
    succeeded(f.deploy("v3"));
    let s = f.status();
    assert_eq!(seen(&s, "green"), on("v3", true, true, "started"), "{s}");
    assert_eq!(seen(&s, "blue"), on("v1", false, true, "started"), "{s}");
    assert_eq!(color(&s, "blue")["standby"]["release"], "v1", "{s}");
    route_serves_only(&f, "release v3 green\n");
    assert_eq!(
        f.migrations(),
        3,
        "each deploy migrates once, the rollback never"
    );
}

/// The standby is stopped by the local daemon once its time is over, with
/// no command running; a rollback then says so and replays the release on
/// the idle color from its kept droplet (a restart, no staging).
#[test]
fn an_expired_standby_is_stopped_and_rollback_replays_instead() {
    let f = Fixture::new("scale_down_delay: 2s\n");
    succeeded(f.deploy("v1"));
    succeeded(f.deploy("v2"));
    let s = f.status();
    assert_eq!(seen(&s, "blue"), on("v1", false, true, "started"), "{s}");
    wait_until(
        "the daemon stops the standby",
        Duration::from_secs(20),
        || {
            let s = f.status();
            color(&s, "blue")["state"] == "STOPPED"
                && color(&s, "blue")["standby"]["ended"].is_string()
        },
    );
    let s = f.status();
    assert_eq!(seen(&s, "green"), on("v2", true, true, "started"), "{s}");
    let blue = color(&s, "blue");
    assert_eq!(blue["processes"][0]["running"], 0, "{s}");
    assert!(text(&f.run(&["status"])).contains("standby ended at "));

    let before = droplets(&f);
    let t = Instant::now();
    let out = succeeded(f.run(&["rollback"]));
    let took = t.elapsed();
    let said = text(&out);
    assert!(
        said.contains("No standby to switch back to (blue's standby time ended at ")
            && said.contains("replaying the release on the idle color"),
        "{said}"
    );
    assert!(
        said.contains("push to blue: switch back to release v1"),
        "{said}"
    );
    assert!(!said.contains("push to green"), "{said}");
    assert_eq!(droplets(&f), before, "no droplet made: {said}");
    let s = f.status();
    assert_eq!(seen(&s, "blue"), on("v1", true, true, "started"), "{s}");
    assert_eq!(color(&s, "green")["release"], "v2", "{s}");
    assert_eq!(color(&s, "green")["mapped"], false, "{s}");
    route_serves_only(&f, "release v1 blue\n");
    let _ = writeln!(
        std::io::stderr(),
        "replay rollback with a standby file (expired standby): {} ms of steps, {:.0} ms for \
         the whole process",
        f.last_history()["duration_ms"],
        took.as_secs_f64() * 1e3
    );
}

/// Today's rollback without a standby, on the same app: both colors get the
/// earlier release in turn. For the comparison in the operator docs.
#[test]
fn a_replay_rollback_without_a_standby_for_comparison() {
    let f = Fixture::new("");
    succeeded(f.deploy("v1"));
    succeeded(f.deploy("v2"));
    let t = Instant::now();
    let out = succeeded(f.run(&["rollback"]));
    let took = t.elapsed();
    assert!(text(&out).contains("push to green: switch back to release v1"));
    f.assert_serving("v1");
    let _ = writeln!(
        std::io::stderr(),
        "replay rollback (no standby, both colors): {} ms of steps, {:.0} ms for the whole process",
        f.last_history()["duration_ms"],
        took.as_secs_f64() * 1e3
    );
}

#[test]
fn a_bad_scale_down_delay_exits_2_naming_the_line() {
    let f = Fixture::new("scale_down_delay: soon\n");
    let out = exits(f.deploy("v1"), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bluegreen.yaml:7:"), "{err}");
    assert!(
        err.contains("write durations like `500ms`, `5s` or `2m`"),
        "{err}"
    );
    f.write_file("strategy: canary\nsteps: [50, 100]\nscale_down_delay: 30m\n");
    let out = exits(f.deploy("v1"), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bluegreen.yaml:9:1: field `scale_down_delay`: `strategy: canary` moves the route in steps"),
        "{err}"
    );
    assert!(err.contains("use `strategy: blue-green`"), "{err}");
    // Nothing changed on the platform (`status` needs a valid file).
    f.write_file("");
    let out = f.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not deployed yet"),
        "{}",
        text(&out)
    );
}

/// The same on the Cloud Foundry path: the local platform speaking CF v3
/// over TLS, as `platform: cf` deploys to a foundation.
#[test]
fn on_cloud_foundry_rollback_maps_the_standby_without_a_push() {
    let f = Fixture::new_cf("scale_down_delay: 30m\n");
    succeeded(f.deploy("v1"));
    succeeded(f.deploy("v2"));
    let s = f.status();
    assert_eq!(seen(&s, "green"), on("v2", true, true, "started"), "{s}");
    assert_eq!(seen(&s, "blue"), on("v1", false, true, "started"), "{s}");
    route_serves_only(&f, "release v2 green\n");
    let before = droplets(&f);
    let t = Instant::now();
    let out = succeeded(f.run(&["rollback"]));
    let took = t.elapsed();
    assert!(
        text(&out).contains("Rollback to the standby"),
        "{}",
        text(&out)
    );
    assert_eq!(droplets(&f), before);
    let s = f.status();
    assert_eq!(seen(&s, "blue"), on("v1", true, true, "started"), "{s}");
    assert_eq!(seen(&s, "green"), on("v2", false, true, "started"), "{s}");
    route_serves_only(&f, "release v1 blue\n");
    // Over TLS to the API: 70-140 ms measured; never a push's seconds.
    let steps_ms = f.last_history()["duration_ms"].as_u64().unwrap();
    assert!(
        steps_ms < 3000,
        "standby rollback as cf took {steps_ms} ms of steps"
    );
    let _ = writeln!(
        std::io::stderr(),
        "as cf: standby rollback {} ms of steps, {:.0} ms for the whole process",
        f.last_history()["duration_ms"],
        took.as_secs_f64() * 1e3
    );
}

/// Cloud Foundry has no daemon to stop a standby on time: with the local
/// platform's own sweeper off, as on a foundation, the standby runs past
/// its time, `status` says who stops it, and the next `rollback` stops it,
/// says so, and replays the release instead.
#[test]
fn on_cloud_foundry_the_next_command_stops_an_expired_standby() {
    use bluegreen::platform::local::faults;
    let mut f = Fixture::new_cf("scale_down_delay: 2s\n");
    f.restart_platform_with(&[(faults::ENV, "1")]);
    platform(&f, async |c| {
        let plan = serde_json::json!({ "no_standby_sweep": true });
        c.call::<_, Value>(reqwest::Method::PUT, faults::PATH, Some(&plan))
            .await
            .expect("the daemon was started with fault injection")
    });
    succeeded(f.deploy("v1"));
    succeeded(f.deploy("v2"));
    wait_until(
        "the standby's time is over",
        Duration::from_secs(20),
        || color(&f.status(), "blue")["standby"]["expired"] == true,
    );
    let s = f.status();
    assert_eq!(seen(&s, "blue"), on("v1", false, true, "started"), "{s}");
    let shown = text(&f.run(&["status"]));
    assert!(
        shown.contains("its time ended at ")
            && shown.contains("the next `bluegreen deploy`, `rollback` or `recover` stops it"),
        "{shown}"
    );
    let out = succeeded(f.run(&["rollback"]));
    let said = text(&out);
    assert!(
        said.contains("Stopped shop-blue (blue, release v1): its standby time ended at "),
        "{said}"
    );
    assert!(
        said.contains("No standby to switch back to (blue's standby time ended at "),
        "{said}"
    );
    let s = f.status();
    assert_eq!(seen(&s, "blue"), on("v1", true, true, "started"), "{s}");
    assert_eq!(color(&s, "green")["mapped"], false, "{s}");
    route_serves_only(&f, "release v1 blue\n");
}

/// A release that never turns healthy on the idle color (the standby)
/// stops the deploy there: the color serving keeps the route alone, and the
/// idle color, which now holds the failed release, is off the route and
/// stopped rather than mapped back beside it (two releases serving).
#[test]
fn a_failed_deploy_leaves_the_live_color_alone_and_stops_the_idle_one() {
    let f = Fixture::new("scale_down_delay: 30m\n");
    succeeded(f.deploy("v1"));
    succeeded(f.deploy("v2"));
    std::fs::write(f.root.path().join("app/UNHEALTHY"), "").unwrap();
    let load = f.load();
    let out = exits(f.deploy("v3"), 1);
    let (n, failures, _) = load.finish();
    assert!(
        failures.is_empty(),
        "{} of {n} failed: {failures:?}",
        failures.len()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("blue ran the new release off the route") && err.contains("it was stopped"),
        "{err}"
    );
    let s = f.status();
    assert_eq!(seen(&s, "green"), on("v2", true, true, "started"), "{s}");
    assert_eq!(color(&s, "blue")["mapped"], false, "{s}");
    assert_eq!(color(&s, "blue")["state"], "STOPPED", "{s}");
    route_serves_only(&f, "release v2 green\n");
    assert_eq!(f.last_history()["result"], "failed");
}

/// The same with the idle color mapped when the deploy stops: blue, on v3
/// (600 ms per answer) beside green, is blocked at its `post-map` with
/// POSTs in flight to it. It leaves the route and finishes them before it
/// stops; stopped at once, it cut them.
#[test]
fn a_color_parked_by_an_undo_finishes_its_requests_before_it_stops() {
    let f = Fixture::new("scale_down_delay: 30m\n");
    succeeded(f.deploy("v1"));
    succeeded(f.deploy("v2"));
    crate::adopt::slow_and_blocked_at_post_map(&f, "blue", "scale_down_delay: 30m\n");
    let posters = crate::adopt::Posters::start(&f, 4);
    let out = exits(f.deploy("v3"), 3);
    let (failures, by_release) = posters.finish();
    assert!(failures.is_empty(), "{failures:?}\n{}", text(&out));
    assert!(
        by_release.contains_key("v3"),
        "blue answered no POST: {by_release:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("blue ran the new release off the route") && err.contains("it was stopped"),
        "{err}"
    );
    let s = f.status();
    assert_eq!(color(&s, "blue")["state"], "STOPPED", "{s}");
    route_serves_only(&f, "release v2 green\n");
}
