//! log-cache, as a deploy's traffic analysis reads it on Cloud Foundry: the
//! link in the API's root document, the API's token sent along (over https
//! or, as here, at the API's own origin), TIMER reads paged 1,000 at a
//! time, and the router's timers counted into the numbers the analysis
//! judges. The fakes serve the documented
//! shapes only: the root document (`root.json`) and a TIMER read
//! (`log_cache_read_timers.json`), sources in tests/fixtures/cf/README.md.

use super::{fixture, json};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use bluegreen::platform::client::CfClient;
use bluegreen::platform::log_cache::{LogCache, Unavailable};
use bluegreen::platform::traffic::Snapshot;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const TOKEN: &str = "log-cache-test-token";
const APP: &str = "b3015d69-09cd-476d-aace-ad2d824d5ab7";
/// A moment on the platform's clock, in nanoseconds.
const T0: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;

#[derive(Default)]
struct Fake {
    /// The root document's log_cache link; none leaves it out.
    link: Option<String>,
    /// Envelopes log-cache holds for APP.
    held: Vec<Value>,
    /// The query of every read, in order.
    reads: Vec<HashMap<String, String>>,
}

type F = State<Arc<Mutex<Fake>>>;

/// The documented root document, linking the fake log-cache (or not).
async fn root(State(f): F) -> Response {
    let mut root: Value = serde_json::from_str(&fixture("root.json")).unwrap();
    let links = root["links"].as_object_mut().unwrap();
    match &f.lock().unwrap().link {
        Some(url) => links.insert("log_cache".into(), json!({ "href": url })),
        None => links.remove("log_cache"),
    };
    json(StatusCode::OK, root.to_string())
}

/// `GET /api/v1/read/:source-id` as log-cache-release documents it:
/// `start_time` inclusive, `limit` at most 1000, `descending`.
async fn read(
    State(f): F,
    Path(source): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if headers.get("authorization").and_then(|h| h.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"unauthorized"}"#.into(),
        );
    }
    let mut f = f.lock().unwrap();
    f.reads.push(q.clone());
    let limit: usize = q.get("limit").map_or(100, |l| l.parse().unwrap());
    if limit > 1000 {
        return json(StatusCode::BAD_REQUEST, r#"{"error":"limit"}"#.into());
    }
    let start: i64 = q.get("start_time").map_or(0, |s| s.parse().unwrap());
    let mut batch: Vec<&Value> = f
        .held
        .iter()
        .filter(|e| source == APP && ts(e) >= start)
        .collect();
    batch.sort_by_key(|e| ts(e));
    if q.get("descending").map(String::as_str) == Some("true") {
        batch.reverse();
    }
    batch.truncate(limit);
    json(
        StatusCode::OK,
        json!({ "envelopes": { "batch": batch } }).to_string(),
    )
}

fn ts(e: &Value) -> i64 {
    e["timestamp"].as_str().unwrap().parse().unwrap()
}

/// The fixture's first timer (a router's `Client` side), at `stop` and
/// taking `ms`, answered `status`, from the router's `side`.
fn timer(stop: i64, ms: i64, status: u16, side: &str) -> Value {
    let read: Value = serde_json::from_str(&fixture("log_cache_read_timers.json")).unwrap();
    let mut e = read["envelopes"]["batch"][0].clone();
    e["timestamp"] = stop.to_string().into();
    e["timer"]["start"] = (stop - ms * MS).to_string().into();
    e["timer"]["stop"] = stop.to_string().into();
    e["tags"]["status_code"] = status.to_string().into();
    e["tags"]["peer_type"] = side.into();
    e
}

/// An API and its log-cache. A real foundation serves log-cache on a host
/// of its own over https; over plain http (all a test has here) the client
/// sends the token only to the API's own origin, so the fake log-cache sits
/// there, under `/log-cache`. (`hostile_text::defect_7_…` links one on
/// another origin.)
async fn serve(fake: Fake) -> (Arc<Mutex<Fake>>, String, String) {
    let fake = Arc::new(Mutex::new(fake));
    let app = axum::Router::new()
        .route("/", get(root))
        .route("/log-cache/api/v1/read/{source}", get(read))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let lc = format!("{api}/log-cache");
    if fake.lock().unwrap().link.is_some() {
        fake.lock().unwrap().link = Some(lc.clone());
    }
    (fake, api, lc)
}

#[tokio::test]
async fn log_cache_is_found_from_the_root_read_with_the_token_and_paged() {
    let (fake, api, lc) = serve(Fake {
        link: Some(String::new()),
        // Before the window: not the candidate's.
        held: vec![timer(T0 - 5_000 * MS, 1, 500, "Client")],
        ..Fake::default()
    })
    .await;
    let client = CfClient::with_token(&api, TOKEN);
    let cache = LogCache::discover(&client).await.unwrap();
    assert_eq!(cache.url(), lc);
    let mut follow = cache.follow(APP).await.unwrap();

    // 2,500 requests in the window: every 25th a 503, every 50th 40 ms;
    // the router's other side of every 10th; and a newest one, 10 s later,
    // too fresh to count yet (late envelopes from other routers may still
    // come before it).
    {
        let mut f = fake.lock().unwrap();
        for i in 0..2500 {
            let status = if i % 25 == 0 { 503 } else { 200 };
            let ms = if i % 50 == 1 { 40 } else { 1 };
            f.held.push(timer(T0 + i * MS, ms, status, "Client"));
            if i % 10 == 0 {
                f.held.push(timer(T0 + i * MS + 1, ms + 1, 500, "Server"));
            }
        }
        f.held.push(timer(T0 + 10_000 * MS, 1, 200, "Client"));
    }
    let m = cache
        .read(&mut follow)
        .await
        .unwrap()
        .since(&Snapshot::default());
    assert_eq!(
        (m.requests, m.status_2xx, m.status_5xx),
        (2500, 2400, 100),
        "{m:?}"
    );
    assert!((m.p50_ms - 1.0).abs() < 0.07, "{m:?}");
    assert!((m.p99_ms - 40.0).abs() < 2.5, "{m:?}");

    // One read for the newest timer, then 2,751 envelopes in pages of 1,000,
    // each starting past the last one of the page before.
    {
        let f = fake.lock().unwrap();
        let reads: Vec<_> = f.reads.iter().collect();
        assert_eq!(reads.len(), 4, "{reads:?}");
        assert!(reads.iter().all(|q| q["envelope_types"] == "TIMER"));
        assert_eq!(
            (reads[0]["descending"].as_str(), reads[0]["limit"].as_str()),
            ("true", "1")
        );
        let mut after: Vec<i64> = f.held.iter().map(ts).filter(|&t| t >= T0).collect();
        after.sort();
        for (page, q) in reads[1..].iter().enumerate() {
            assert_eq!(q["limit"], "1000");
            let start: i64 = q["start_time"].parse().unwrap();
            let expected = match page {
                0 => T0 - 5_000 * MS + 1,
                n => after[n * 1000 - 1] + 1,
            };
            assert_eq!(start, expected, "page {page}");
        }
    }
    // A read within a second answers from the counters.
    let again = cache.read(&mut follow).await.unwrap();
    assert_eq!(again.since(&Snapshot::default()), m);
    assert_eq!(fake.lock().unwrap().reads.len(), 4);

    // Without the token, log-cache refuses, and the analysis hears why.
    let stranger = CfClient::with_token(&api, "some-other-token");
    let refused = LogCache::discover(&stranger)
        .await
        .unwrap()
        .follow(APP)
        .await
        .err()
        .expect("refused");
    assert!(refused.to_string().contains("401"), "{refused}");
}

#[tokio::test]
async fn no_link_or_a_logs_only_stub_is_reported_unavailable() {
    let (_fake, api, _) = serve(Fake::default()).await;
    let client = CfClient::with_token(&api, TOKEN);
    let err = LogCache::discover(&client).await.err().expect("no link");
    assert!(matches!(err, Unavailable::NoLink), "{err}");
    assert!(err.to_string().contains("log_cache"), "{err}");

    // Korifi's log-cache answers a TIMER read with the app's logs.
    let log = json!({
        "timestamp": T0.to_string(), "source_id": APP, "instance_id": "0",
        "deprecated_tags": {}, "tags": {"source_type": "APP/PROC/WEB"},
        "log": {"payload": "aGVsbG8=", "type": "OUT"}
    });
    let (_fake, api, _) = serve(Fake {
        link: Some(String::new()),
        held: vec![log],
        ..Fake::default()
    })
    .await;
    let client = CfClient::with_token(&api, TOKEN);
    let cache = LogCache::discover(&client).await.unwrap();
    let err = cache.follow(APP).await.err().expect("a stub");
    assert!(
        matches!(err, Unavailable::Stub { kind: "LOG", .. }),
        "{err}"
    );
}
