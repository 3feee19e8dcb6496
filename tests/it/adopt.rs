//! Adopting an app pushed before bluegreen (`cf push shop`): the colors
//! deploy beside it on its route; once both serve it leaves the route,
//! finishes what it is answering and stops. Every app that leaves the route
//! on the way, the pushed one or a color undone, is drained before it
//! stops: the input that would fool the step is a request it is still
//! answering, and these tests keep some in flight on purpose.

use crate::deploy::{Fixture, text};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// `cf push shop` as a team did before bluegreen: one app on the route.
fn cf_push(f: &Fixture) {
    cf_push_with(f, &[]);
}

/// `cf push shop`, its environment with `extra` added.
fn cf_push_with(f: &Fixture, extra: &[(&str, &str)]) {
    let client = crate::cf_native::api(f);
    let zip = bluegreen::platform::package::zip_dir(&f.root.path().join("app")).unwrap();
    crate::cf_native::block_on(async {
        let t = Duration::from_secs(60);
        let space = crate::cf_native::space(&client).await;
        let mut env: std::collections::BTreeMap<String, String> =
            [("BLUEGREEN_RELEASE".to_string(), "pushed".to_string())].into();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let app = client.create_app(&space, "shop", &env).await.unwrap();
        let pkg = client.create_package(&app.guid).await.unwrap();
        client.upload_package(&pkg.guid, &zip, t).await.unwrap();
        let droplet = client.stage(&pkg.guid, t).await.unwrap();
        client
            .set_current_droplet(&app.guid, &droplet)
            .await
            .unwrap();
        client.app_action(&app.guid, "start").await.unwrap();
        let domain = client
            .find_domain(bluegreen::platform::local::DOMAIN)
            .await
            .unwrap()
            .unwrap();
        let route = client
            .create_route(&domain.guid, &space, "shop")
            .await
            .unwrap();
        client.map_route(&route.guid, &app.guid).await.unwrap();
    });
    crate::util::wait_until("the pushed app serving", Duration::from_secs(30), || {
        crate::deploy::get(f.router_port, "shop", "/")
            .is_ok_and(|(s, b)| s == 200 && b.starts_with("release pushed"))
    });
}

#[test]
fn a_cf_pushed_app_is_adopted_and_stopped_once_both_colors_serve() {
    let f = Fixture::new_cf("");
    cf_push(&f);
    let plan = f.run(&["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(
        text(&plan).contains("adopt the route from `shop`"),
        "{}",
        text(&plan)
    );
    let load = f.load();
    let out = f.deploy("v1");
    let (n, failures, seen) = load.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        failures.is_empty(),
        "{} of {n}: {failures:?}",
        failures.len()
    );
    assert_eq!(seen.first().map(String::as_str), Some("pushed"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("v1"), "{seen:?}");
    f.assert_serving("v1");
    let client = crate::cf_native::api(&f);
    let state = crate::cf_native::block_on(async {
        let space = crate::cf_native::space(&client).await;
        client
            .find_app(&space, "shop")
            .await
            .unwrap()
            .unwrap()
            .state
    });
    assert_eq!(state, "STOPPED", "kept, stopped");
}

/// The deploy file: a release taking 600 ms per answer, `extra`, and a gate
/// plugin blocking at `post-map` of `color` (after 300 ms in every hook, so
/// requests reach the color once mapped).
pub fn slow_and_blocked_at_post_map(f: &Fixture, color: &str, extra: &str) {
    f.gate(&format!(
        "block-at: \"post-map:{color}\", sleep-ms: \"300\""
    ));
    let file = std::fs::read_to_string(&f.file).unwrap();
    let plugins = file.lines().find(|l| l.starts_with("plugins:")).unwrap();
    crate::deploy::write_file(f, ", SLOW_MS: \"600\"", &format!("{extra}{plugins}\n"));
}

/// Clients POSTing to the route `shop` without pause until stopped (at
/// most two minutes): a POST cut after it was sent is never sent again, so
/// every one cut shows.
pub struct Posters {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<(Vec<String>, Vec<String>)>>,
}

impl Posters {
    pub fn start(f: &Fixture, n: usize) -> Posters {
        let stop = Arc::new(AtomicBool::new(false));
        let port = f.router_port;
        let clients = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let (mut failures, mut releases) = (Vec::new(), Vec::new());
                    let until = Instant::now() + Duration::from_secs(120);
                    while !stop.load(Ordering::SeqCst) && Instant::now() < until {
                        match crate::deploy::send(port, "shop", "POST", "/orders", Some("{}")) {
                            Ok((200, body)) => releases
                                .push(body.split_whitespace().nth(1).unwrap_or("").to_string()),
                            other => failures.push(format!("{other:?}")),
                        }
                    }
                    (failures, releases)
                })
            })
            .collect();
        Posters { stop, clients }
    }

    /// Stops them; the failed answers, and how many each release answered.
    pub fn finish(self) -> (Vec<String>, std::collections::BTreeMap<String, usize>) {
        self.stop.store(true, Ordering::SeqCst);
        let (mut failures, mut by_release) = (Vec::new(), std::collections::BTreeMap::new());
        for c in self.clients {
            let (f, releases) = c.join().unwrap();
            failures.extend(f);
            for r in releases {
                *by_release.entry(r).or_insert(0) += 1;
            }
        }
        (failures, by_release)
    }
}

/// Each answer of the pushed app takes 600 ms and four clients POST without
/// pause, so some are in flight to it when it retires: they finish, within
/// the deploy's drain (2 s). Stopped the moment it left the route, it cut
/// all four (`HTTP 502: the app closed the connection before answering`).
#[test]
fn a_retired_app_finishes_the_requests_it_is_answering_before_it_stops() {
    let f = Fixture::new("");
    cf_push_with(&f, &[("SLOW_MS", "600")]);
    let posters = Posters::start(&f, 4);
    let out = f.deploy("v1");
    let (failures, by_release) = posters.finish();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(failures.is_empty(), "{failures:?}\n{}", text(&out));
    assert!(by_release.contains_key("pushed"), "{by_release:?}");
    assert!(!text(&out).contains("still in flight"), "{}", text(&out));
    f.assert_serving("v1");
}

/// The same for a color undone on the first deploy (no earlier release to
/// go back to): blue serves beside the pushed app, 600 ms per answer, when
/// a plugin blocks at its `post-map`. It leaves the route and finishes its
/// answers before it stops; the pushed app serves on. It used to be stopped
/// first and unmapped after, cutting them.
#[test]
fn a_color_undone_beside_the_pushed_app_finishes_its_requests_before_it_stops() {
    let f = Fixture::new("");
    cf_push(&f);
    slow_and_blocked_at_post_map(&f, "blue", "");
    let posters = Posters::start(&f, 4);
    let out = f.deploy("v1");
    let (failures, by_release) = posters.finish();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("blue had no earlier release: stopped and left off the route"),
        "{}",
        text(&out)
    );
    assert!(failures.is_empty(), "{failures:?}\n{}", text(&out));
    assert!(
        by_release.contains_key("v1"),
        "blue answered no POST: {by_release:?}"
    );
    let (status, body) = crate::deploy::get(f.router_port, "shop", "/").unwrap();
    assert_eq!((status, body.as_str()), (200, "release pushed ?\n"));
}
