//! log-cache's read on the local platform («14», issue 23): the router's
//! per-request timers in log-cache's JSON, read with a token from the
//! platform's UAA; the window, order and limit log-cache honours; bad
//! parameters refused; bluegreen's own log-cache client counting the same
//! requests. And no implicit route: right after `POST /v3/apps` the app's
//! own name is a route a client may create.

use crate::platform::{push, route_to, start, via_router};
use crate::uaa::{get, token};
use crate::util::py_app;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Answers `/status/<code>/<n>` with that status, anything else with 200.
fn status_app() -> String {
    py_app(
        "parts = self.path.split('/')",
        "int(parts[2]) if len(parts) > 2 and parts[1] == 'status' else 200",
        "self.path",
    )
}

/// A GET over HTTP/1.0, which the router hands to hyper: its other path.
async fn http10(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let path = path.to_string();
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.0\r\nHost: shop.apps.localhost\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_whitespace().nth(1).unwrap().parse().unwrap()
    })
    .await
    .unwrap()
}

fn batch(v: &Value) -> Vec<Value> {
    v["envelopes"]["batch"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Which requests (by the `<n>` of their path) a read brought, in order.
fn numbers(v: &Value) -> Vec<usize> {
    batch(v)
        .iter()
        .map(|e| {
            let uri = e["tags"]["uri"].as_str().unwrap();
            uri.rsplit('/').next().unwrap().parse().unwrap()
        })
        .collect()
}

fn int64(v: &Value) -> i64 {
    v.as_str()
        .expect("an int64 as a JSON string")
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn log_cache_serves_the_routers_timers_and_an_app_gets_no_implicit_route() {
    use bluegreen::platform::{PlatformError, local};
    let tmp = tempfile::tempdir().unwrap();
    let (running, client) = start(tmp.path()).await;
    let api = running.endpoint.api_url.clone();
    let http = reqwest::Client::new();
    let org = crate::platform::local_org(&client).await;
    let space = client.find_space(&org, "local").await.unwrap().unwrap();
    let domain = client.find_domain(local::DOMAIN).await.unwrap().unwrap();

    // No implicit route: right after `POST /v3/apps` the app's own name is
    // a route to create; a second one is CF's 422, and nothing is routed
    // before a destination is mapped.
    client
        .create_app(&space.guid, "own", &Default::default())
        .await
        .unwrap();
    let own = client
        .create_route(&domain.guid, &space.guid, "own")
        .await
        .unwrap();
    assert_eq!(own.url, "own.apps.localhost");
    let err = client
        .create_route(&domain.guid, &space.guid, "own")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PlatformError::Api { status: 422, code: 10008, detail, .. }
            if detail.contains("Route already exists with host 'own'")),
        "{err}"
    );
    assert_eq!(
        via_router(&http, &running, "own", "/").await.unwrap().0,
        503
    );

    // Ten requests through the router, one of them on hyper's path.
    let dir = tmp.path().join("shop");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.py"), status_app()).unwrap();
    std::fs::write(dir.join("Procfile"), "web: exec python3 app.py\n").unwrap();
    let guid = push(&client, "shop", &dir, "1").await;
    route_to(&client, "shop", &guid).await;
    let codes = [200u16, 200, 404, 200, 503, 201, 200, 404, 503, 404];
    for (n, code) in codes.iter().enumerate() {
        let path = format!("/status/{code}/{n}");
        let status = if n == 5 {
            http10(running.endpoint.router_port, &path).await
        } else {
            via_router(&http, &running, "shop", &path).await.unwrap().0
        };
        assert_eq!(status, *code, "{path}");
    }

    // Read as a CF client does: with the access token UAA gave it.
    let admin = [
        ("grant_type", "password"),
        ("username", "admin"),
        ("password", running.token.as_str()),
    ];
    let (_, login) = token(&api, Some(("cf", "")), &admin).await;
    let bearer = login["access_token"].as_str().unwrap().to_string();
    let read = |query: String| {
        let (api, bearer, guid) = (api.clone(), bearer.clone(), guid.clone());
        async move { get(&api, Some(&bearer), &format!("/api/v1/read/{guid}?{query}")).await }
    };
    let (status, all) = read("envelope_types=TIMER&limit=1000".into()).await;
    assert_eq!(status, 200, "{all}");
    let envelopes = batch(&all);
    assert_eq!(envelopes.len(), codes.len(), "{all}");
    let mut stamps = Vec::new();
    for (n, (e, code)) in envelopes.iter().zip(codes).enumerate() {
        let tags = &e["tags"];
        assert_eq!(tags["status_code"], code.to_string(), "{e}");
        assert_eq!(
            tags["uri"],
            format!("http://shop.apps.localhost/status/{code}/{n}")
        );
        assert_eq!(
            (&tags["method"], &tags["peer_type"]),
            (&json!("GET"), &json!("Client"))
        );
        for k in ["app_id", "source_id", "process_id"] {
            assert_eq!(tags[k], guid.as_str(), "{k}: {e}");
        }
        assert_eq!(
            (&tags["instance_id"], &e["instance_id"]),
            (&json!("0"), &json!("0"))
        );
        assert_eq!(e["source_id"], guid.as_str());
        assert_eq!(
            tags["process_instance_id"].as_str().unwrap().len(),
            36,
            "{e}"
        );
        assert_eq!(e["timer"]["name"], "http");
        let (start, stop) = (int64(&e["timer"]["start"]), int64(&e["timer"]["stop"]));
        assert!(start <= stop, "{e}");
        assert_eq!(int64(&e["timestamp"]), stop);
        stamps.push(stop);
    }
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(
        (now_ns - 60_000_000_000..=now_ns).contains(&stamps[0]),
        "the wall clock in ns"
    );

    // The window, the order and the limit, as log-cache takes them.
    let s = |i: usize| stamps[i];
    for (query, want) in [
        ("limit=3".to_string(), vec![0, 1, 2]),
        ("descending=true&limit=1".into(), vec![9]),
        ("descending=true&limit=3".into(), vec![9, 8, 7]),
        (format!("start_time={}", s(4)), (4..10).collect()),
        (format!("end_time={}", s(3)), vec![0, 1, 2]),
        (
            format!("start_time={}&end_time={}", s(2), s(5)),
            vec![2, 3, 4],
        ),
        (
            "envelope_types=TIMER&envelope_types=LOG".into(),
            (0..10).collect(),
        ),
        ("envelope_types=LOG".into(), vec![]),
    ] {
        let (status, got) = read(query.clone()).await;
        assert_eq!((status, numbers(&got)), (200, want), "{query}: {got}");
    }
    let (status, nothing) = get(&api, Some(&bearer), "/api/v1/read/no-such-app").await;
    assert_eq!((status, batch(&nothing).len()), (200, 0), "{nothing}");
    let (status, _) = get(&api, None, &format!("/api/v1/read/{guid}")).await;
    assert_eq!(status, 401);
    for query in [
        "limit=1001",
        "limit=-1",
        "start_time=yesterday",
        "descending=maybe",
        "start_time=5&end_time=4",
        "envelope_types=METRIC",
    ] {
        let (status, body) = read(query.into()).await;
        assert_eq!((status, &body["code"]), (400, &json!(3)), "{query}: {body}");
        assert!(body["message"].is_string(), "{body}");
    }
    let (status, body) = read("name_filter=x".into()).await;
    assert_eq!(status, 400, "not implemented, so refused: {body}");
    assert_eq!(body["errors"][0]["title"], "CF-BadQueryParameter");

    // bluegreen's own log-cache client, as a `platform: cf` deploy's
    // analysis reads it: it finds the link, follows the app from now on and
    // counts the settled timers.
    use bluegreen::platform::log_cache::{LogCache, SETTLE};
    let cache = LogCache::discover(&client).await.unwrap();
    assert_eq!(cache.url(), api);
    let mut follow = cache.follow(&guid).await.unwrap();
    for (n, code) in [200, 500, 200, 204].iter().enumerate() {
        let path = format!("/status/{code}/{}", 10 + n);
        assert_eq!(
            via_router(&http, &running, "shop", &path).await.unwrap().0,
            *code
        );
    }
    tokio::time::sleep(SETTLE + Duration::from_millis(300)).await;
    via_router(&http, &running, "shop", "/status/200/14")
        .await
        .unwrap();
    let counted = cache.read(&mut follow).await.unwrap();
    assert_eq!(counted.status, [0, 3, 0, 0, 1], "{counted:?}");
    running.shutdown().await;
}
