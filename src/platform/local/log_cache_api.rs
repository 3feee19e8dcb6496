//! log-cache's read, `GET /api/v1/read/:source_id`, on the API's own
//! origin (the root document links it as `log_cache`), behind the same
//! bearer check: so a CF client reads a local app's per-request timers as
//! it reads gorouter's on CF (`crate::platform::log_cache`), from the
//! router's bounded record of each request (`router/requests.rs`).
//!
//! The answer is what log-cache's gateway writes (cloudfoundry/log-cache-
//! release `src/README.md`, `src/internal/gateway/gateway.go`): proto names
//! in snake_case, int64s as JSON strings, empty maps present. Parameters as
//! its `LocalStoreReader` takes them: `start_time` (inclusive) and
//! `end_time` (exclusive, default now) in ns, `envelope_types` (repeatable;
//! only `TIMER`s are kept here), `limit` (default 100, at most 1000),
//! `descending`. A bad one is refused with gRPC-gateway's status body
//! (`{"code": 3, "message", "details": []}`) and 400; log-cache itself
//! answers a `limit` over 1000 or a `start_time` past `end_time` with a 500,
//! which would make a client's mistake look like an outage.

use super::api::blocking;
use super::records::AppRec;
use super::router::{Record, Window};
use super::state::Platform;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

pub const PATH: &str = "/api/v1/read/{source_id}";
pub const PARAMETERS: &[&str] = &[
    "start_time",
    "end_time",
    "envelope_types",
    "limit",
    "descending",
];
const MAX_LIMIT: i64 = 1000;
const DEFAULT_LIMIT: i64 = 100;
/// log-cache's envelope types, by their proto enum names and numbers.
const TYPES: &[&str] = &["ANY", "LOG", "COUNTER", "GAUGE", "TIMER", "EVENT"];

pub fn routes() -> Router<Arc<Platform>> {
    Router::new().route(PATH, axum::routing::get(read))
}

/// A refused parameter, as gRPC-gateway answers `InvalidArgument`.
fn refuse(message: String) -> Response {
    let body = json!({ "code": 3, "message": message, "details": [] });
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn read(
    State(p): State<Arc<Platform>>,
    Path(source_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let Some(pairs) = super::uaa::decode_form(query.as_bytes()) else {
        return refuse("the query is not URL-encoded".into());
    };
    let (window, timers) = match parse(&pairs) {
        Ok(parsed) => parsed,
        Err(why) => return refuse(why),
    };
    // Only an app's guid names a source here; anything else holds nothing,
    // as log-cache answers for a source it never saw.
    let guid = source_id.clone();
    let app = blocking(&p, move |p| Ok(p.app(&guid).ok())).await;
    let Ok(Some(app)) = app else {
        return Json(json!({ "envelopes": { "batch": [] } })).into_response();
    };
    let records = if timers {
        p.router.requests(&app.app.guid, &window)
    } else {
        Vec::new()
    };
    let batch: Vec<Value> = records.iter().map(|r| envelope(&app, r)).collect();
    Json(json!({ "envelopes": { "batch": batch } })).into_response()
}

/// The window asked for, and whether timers are among the types asked for.
fn parse(pairs: &[(String, String)]) -> Result<(Window, bool), String> {
    let one = |name: &str| -> Result<Option<&str>, String> {
        let mut given = pairs.iter().filter(|(k, _)| k == name);
        let first = given.next().map(|(_, v)| v.as_str());
        if given.next().is_some() {
            return Err(format!("{name} is given more than once"));
        }
        Ok(first)
    };
    let int = |name: &str| -> Result<i64, String> {
        one(name)?.map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| format!("{name} ({v}) is not a whole number of nanoseconds"))
        })
    };
    let start = int("start_time")?;
    let end = int("end_time")?;
    if end != 0 && start > end {
        return Err(format!(
            "StartTime ({start}) must be before EndTime ({end})"
        ));
    }
    let limit = match one("limit")? {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<i64>()
            .map_err(|_| format!("limit ({v}) is not a whole number"))?,
    };
    if limit > MAX_LIMIT {
        return Err(format!("Limit ({limit}) must be {MAX_LIMIT} or less"));
    }
    if limit < 0 {
        return Err(format!("Limit ({limit}) must be greater than zero"));
    }
    let descending = match one("descending")? {
        None => false,
        Some("true" | "True" | "TRUE" | "t" | "T" | "1") => true,
        Some("false" | "False" | "FALSE" | "f" | "F" | "0") => false,
        Some(v) => return Err(format!("descending ({v}) is not true or false")),
    };
    let mut types = Vec::new();
    for (_, v) in pairs.iter().filter(|(k, _)| k == "envelope_types") {
        let named = TYPES.iter().position(|t| t == v);
        let numbered = v.parse::<usize>().ok().filter(|&n| n < TYPES.len());
        match named.or(numbered) {
            Some(0) => {}
            Some(n) => types.push(TYPES[n]),
            None => {
                return Err(format!(
                    "envelope_types ({v}) is not one of {}",
                    TYPES.join(", ")
                ));
            }
        }
    }
    let window = Window {
        start,
        end: (end != 0).then_some(end),
        limit: if limit == 0 { DEFAULT_LIMIT } else { limit } as usize,
        descending,
    };
    Ok((window, types.is_empty() || types.contains(&"TIMER")))
}

/// One request as gorouter's `http` timer, with the tags its envelopes
/// carry (cloudfoundry/go-loggregator `conversion/http_test.go`, and the
/// app, process and instance a loggregator agent adds).
fn envelope(app: &AppRec, r: &Record) -> Value {
    let app_id = app.app.guid.as_str();
    let index = r.index.to_string();
    json!({
        "timestamp": r.stop.to_string(),
        "source_id": app_id,
        "instance_id": index,
        "deprecated_tags": {},
        "tags": {
            "__v1_type": "HttpStartStop",
            "origin": "gorouter",
            "peer_type": "Client",
            "method": r.method.as_str(),
            "uri": &*r.uri,
            "status_code": r.status.to_string(),
            "instance_index": index,
            "instance_id": index,
            "source_id": app_id,
            "app_id": app_id,
            "app_name": app.app.name,
            "process_id": super::supervisor::process_guid(&app.process.guid, &r.generation),
            "process_type": app.process.kind,
            "process_instance_id": instance_guid(app_id, r),
        },
        "timer": {
            "name": "http",
            "start": r.start.to_string(),
            "stop": r.stop.to_string(),
        },
    })
}

/// A GUID for one run of an instance (its app, index and port), as Diego
/// gives each instance a new one when it starts again.
fn instance_guid(app_guid: &str, r: &Record) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{app_guid}/{}/{}", r.index, r.port));
    let h = hex::encode(&digest[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(query: &str) -> Result<(Window, bool), String> {
        parse(&super::super::uaa::decode_form(query.as_bytes()).unwrap())
    }

    #[test]
    fn parameters_as_log_cache_takes_them() {
        let (w, timers) = q("").unwrap();
        assert_eq!(
            (w.start, w.end, w.limit, w.descending),
            (0, None, 100, false)
        );
        assert!(timers);
        let (w, timers) =
            q("start_time=5&end_time=9&limit=1000&descending=true&envelope_types=TIMER").unwrap();
        assert_eq!(
            (w.start, w.end, w.limit, w.descending),
            (5, Some(9), 1000, true)
        );
        assert!(timers);
        let (_, timers) = q("envelope_types=LOG&envelope_types=GAUGE").unwrap();
        assert!(!timers, "no timer asked for");
        assert!(q("envelope_types=LOG&envelope_types=4").unwrap().1);
        assert!(q("envelope_types=ANY").unwrap().1);
        assert_eq!(q("limit=0").unwrap().0.limit, 100);

        for bad in [
            "limit=1001",
            "limit=-1",
            "limit=ten",
            "start_time=9&end_time=5",
            "start_time=yesterday",
            "descending=yes",
            "envelope_types=timer",
            "envelope_types=6",
            "limit=1&limit=2",
        ] {
            assert!(q(bad).is_err(), "{bad}");
        }
        assert_eq!(
            q("limit=1001").unwrap_err(),
            "Limit (1001) must be 1000 or less"
        );
    }
}
