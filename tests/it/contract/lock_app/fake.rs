//! The fake Cloud Foundry of the lock-app contract tests: one space, the
//! lock app as the documented app object, CF's answers for a create of a
//! name taken, a `PATCH` or `DELETE` of an app that is gone, and a
//! deletion job; every answer dated by the fake's clock.

use super::super::{fixture, json};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, patch};
use bluegreen::platform::client::CfClient;
use bluegreen::platform::lease::{ANNOTATION, Lease};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

pub const SPACE: &str = "2f35885d-0c9d-4423-83ad-fd05066f8576";

#[derive(Default)]
pub struct Fake {
    /// The lock app, as the fake serves it.
    pub app: Option<Value>,
    /// How far the fake's clock (its `Date`) is ahead of ours.
    pub offset: i64,
    /// Another runner's create that lands just before the next one.
    pub rival: Option<Lease>,
    /// The next create fails with a 500: after making the app (`true`, the
    /// answer lost) or without (`false`).
    pub fail_create: Option<bool>,
    /// Method and path of every call but reads.
    pub writes: Vec<String>,
}

type F = State<Arc<Mutex<Fake>>>;

fn dated(offset: i64, mut r: Response) -> Response {
    let by = Duration::from_secs(offset.unsigned_abs());
    let t = if offset >= 0 {
        SystemTime::now() + by
    } else {
        SystemTime::now() - by
    };
    let date = httpdate::fmt_http_date(t).parse().unwrap();
    r.headers_mut().insert("date", date);
    r
}

/// The documented app, renamed, with a new guid and this metadata.
pub fn app(name: &str, metadata: &Value) -> Value {
    let mut app: Value = serde_json::from_str(&fixture("app.json")).unwrap();
    app["guid"] = uuid::Uuid::new_v4().to_string().into();
    app["name"] = name.into();
    app["state"] = "STOPPED".into();
    app["metadata"] = metadata.clone();
    app
}

async fn list(State(f): F, uri: axum::http::Uri) -> Response {
    let f = f.lock().unwrap();
    let query = uri.query().unwrap_or_default();
    assert!(query.contains(&format!("space_guids={SPACE}")), "{query}");
    let found = f.app.iter().filter(|a| {
        let name = a["name"].as_str().unwrap();
        query.contains(&format!("names={name}&"))
    });
    let mut page: Value = serde_json::from_str(&fixture("apps_list_page2.json")).unwrap();
    page["resources"] = found.cloned().collect::<Vec<_>>().into();
    dated(f.offset, json(StatusCode::OK, page.to_string()))
}

async fn create(State(f): F, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap();
    let mut f = f.lock().unwrap();
    f.writes.push("POST /v3/apps".into());
    assert_eq!(body["relationships"]["space"]["data"]["guid"], SPACE);
    let name = body["name"].as_str().unwrap();
    if let Some(rival) = f.rival.take() {
        let meta = serde_json::json!({"labels": {}, "annotations":
            {ANNOTATION: serde_json::to_string(&rival).unwrap()}});
        f.app = Some(app(name, &meta));
    }
    if let Some(made) = f.fail_create.take() {
        if made {
            f.app = Some(app(name, &body["metadata"]));
        }
        return dated(
            f.offset,
            json(StatusCode::INTERNAL_SERVER_ERROR, String::new()),
        );
    }
    if f.app.is_some() {
        let error = fixture("error_uniqueness.json");
        return dated(f.offset, json(StatusCode::UNPROCESSABLE_ENTITY, error));
    }
    let made = app(name, &body["metadata"]);
    f.app = Some(made.clone());
    dated(f.offset, json(StatusCode::CREATED, made.to_string()))
}

fn is_it(f: &Fake, guid: &str) -> bool {
    f.app.as_ref().is_some_and(|a| a["guid"] == guid)
}

async fn update(State(f): F, Path(guid): Path<String>, body: String) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap();
    let mut f = f.lock().unwrap();
    f.writes.push(format!("PATCH {guid}"));
    if !is_it(&f, &guid) {
        return dated(
            f.offset,
            json(StatusCode::NOT_FOUND, fixture("error_not_found.json")),
        );
    }
    let app = f.app.as_mut().unwrap();
    for (k, v) in body["metadata"]["annotations"].as_object().unwrap() {
        app["metadata"]["annotations"][k] = v.clone();
    }
    let answer = app.to_string();
    dated(f.offset, json(StatusCode::OK, answer))
}

async fn delete(State(f): F, Path(guid): Path<String>) -> Response {
    let mut f = f.lock().unwrap();
    f.writes.push(format!("DELETE {guid}"));
    if !is_it(&f, &guid) {
        return dated(
            f.offset,
            json(StatusCode::NOT_FOUND, fixture("error_not_found.json")),
        );
    }
    f.app = None;
    let mut r = json(StatusCode::ACCEPTED, String::new());
    r.headers_mut()
        .insert("location", format!("/v3/jobs/{guid}").parse().unwrap());
    dated(f.offset, r)
}

async fn job() -> Response {
    json(StatusCode::OK, fixture("job_complete.json"))
}

pub async fn fake() -> (Arc<Mutex<Fake>>, CfClient) {
    let state = Arc::new(Mutex::new(Fake::default()));
    let router = axum::Router::new()
        .route("/v3/apps", get(list).post(create))
        .route("/v3/apps/{guid}", patch(update).delete(delete))
        .route("/v3/jobs/{guid}", get(job))
        .with_state(state.clone());
    let base = crate::util::serve(router).await;
    (state, CfClient::with_token(&base, "token"))
}

/// The lease on the fake's lock app, as stored (server time).
pub fn stored(f: &Arc<Mutex<Fake>>) -> Option<Lease> {
    let f = f.lock().unwrap();
    let a = f.app.as_ref()?;
    Some(serde_json::from_str(a["metadata"]["annotations"][ANNOTATION].as_str().unwrap()).unwrap())
}
