//! Apps' endpoints: the apps themselves (metadata included), their
//! environment, start and stop, their tasks, and local-only views a
//! deploy uses (`/bluegreen/v1/apps/:guid/inflight`, `/traffic`, `/logs`). Their
//! droplets are in `packages_api.rs`, their processes in `process_api.rs`.

use super::api::{blocking, completed_job, filter, page};
use super::records::*;
use super::state::{ApiErr, ApiResult, Platform};
use crate::platform::v3;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type S = State<Arc<Platform>>;
type Q = Query<HashMap<String, String>>;

pub fn routes() -> Router<Arc<Platform>> {
    use axum::routing::{get, post};
    Router::new()
        .route("/v3/apps", get(list_apps).post(create_app))
        .route(
            "/v3/apps/{guid}",
            get(get_app).patch(update_app).delete(delete_app),
        )
        .route(
            "/v3/apps/{guid}/environment_variables",
            get(get_env).patch(patch_env),
        )
        .route("/v3/apps/{guid}/env", get(app_env))
        .route("/v3/apps/{guid}/actions/{action}", post(app_action))
        .route("/v3/apps/{guid}/tasks", post(create_task))
        .route("/v3/tasks/{guid}", get(get_task))
        .route("/bluegreen/v1/apps/{guid}/inflight", get(inflight))
        .route("/bluegreen/v1/apps/{guid}/traffic", get(traffic))
        .route("/bluegreen/v1/apps/{guid}/logs", get(logs))
}

async fn list_apps(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let apps: Vec<v3::App> = blocking(&p, |p| p.all::<AppRec>(APP))
        .await?
        .into_iter()
        .map(|r| r.app)
        .filter(|a| {
            filter(&q, "names", &a.name)
                && filter(&q, "guids", &a.guid)
                && filter(&q, "space_guids", SPACE_GUID)
        })
        .collect();
    page(&p, "/v3/apps", &q, apps)
}

#[derive(Deserialize)]
struct CreateApp {
    name: String,
    relationships: BTreeMap<String, v3::ToOne>,
    #[serde(default)]
    environment_variables: BTreeMap<String, String>,
    #[serde(default)]
    metadata: v3::Metadata,
}

async fn create_app(
    State(p): S,
    Json(body): Json<CreateApp>,
) -> ApiResult<(StatusCode, Json<v3::App>)> {
    let space = body.relationships.get("space").and_then(|r| r.guid());
    if space != Some(SPACE_GUID) {
        return Err(ApiErr::unprocessable(
            "Invalid space. Ensure that the space exists and you have access to it.".into(),
        ));
    }
    let rec = blocking(&p, move |p| {
        p.create_app_with(&body.name, body.environment_variables, body.metadata)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(rec.app)))
}

async fn get_app(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::App>> {
    Ok(Json(blocking(&p, move |p| p.app(&guid)).await?.app))
}

#[derive(Deserialize)]
struct UpdateApp {
    #[serde(default)]
    metadata: Option<v3::Metadata>,
}

async fn update_app(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<UpdateApp>,
) -> ApiResult<Json<v3::App>> {
    let app = blocking(&p, move |p| p.update_metadata(&guid, body.metadata)).await?;
    Ok(Json(app))
}

async fn delete_app(State(p): S, Path(guid): Path<String>) -> ApiResult<Response> {
    p.delete_app(&guid).await?;
    Ok(completed_job(&p, "app.delete"))
}

async fn get_env(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    let env = blocking(&p, move |p| p.app(&guid)).await?.env;
    Ok(Json(json!({ "var": env })))
}

/// `GET /v3/apps/:guid/env`: what the app's processes see, in CF's shape
/// (its own variables, the bound services' `VCAP_SERVICES`, and
/// `VCAP_APPLICATION`).
async fn app_env(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    let (rec, bound) = blocking(&p, move |p| Ok((p.app(&guid)?, p.binding_env(&guid)?))).await?;
    let services: Value = bound
        .get("VCAP_SERVICES")
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_else(|| json!({}));
    Ok(Json(json!({
        "staging_env_json": {},
        "running_env_json": {},
        "environment_variables": rec.env,
        "system_env_json": { "VCAP_SERVICES": services },
        "application_env_json": { "VCAP_APPLICATION": {
            "application_id": rec.app.guid,
            "application_name": rec.app.name,
            "name": rec.app.name,
            "space_id": SPACE_GUID,
            "space_name": SPACE_NAME,
            "organization_id": ORG_GUID,
            "organization_name": ORG_NAME,
        }},
    })))
}

async fn patch_env(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let env = blocking(&p, move |p| p.patch_env(&guid, body)).await?;
    Ok(Json(json!({ "var": env })))
}

async fn app_action(
    State(p): S,
    Path((guid, action)): Path<(String, String)>,
) -> ApiResult<Json<v3::App>> {
    let (app, act) = (guid.clone(), action.clone());
    blocking(&p, move |p| p.revise_on_start(&app, &act)).await?;
    let app = p.set_state(&guid, &action).await?.app;
    // A deployment the app's stop left where it was goes on (as CC's
    // updater would once the app runs again).
    if action != "stop" {
        super::rollout::kick(&p, &guid);
    }
    Ok(Json(app))
}

#[derive(Deserialize)]
struct CreateTask {
    command: String,
    #[serde(default)]
    name: Option<String>,
    /// CC's `droplet_guid`: run on this droplet of the app instead of its
    /// current one (a migration on a release not yet serving).
    #[serde(default)]
    droplet_guid: Option<String>,
}

async fn create_task(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<CreateTask>,
) -> ApiResult<(StatusCode, Json<v3::Task>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(p.start_task(&guid, &body.command, body.name, body.droplet_guid)?),
    ))
}

async fn get_task(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Task>> {
    let rec = blocking(&p, move |p| p.get::<TaskRec>(TASK, &guid)).await?;
    Ok(Json(rec.task))
}

async fn inflight(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    let guid = blocking(&p, move |p| p.app(&guid)).await?.app.guid;
    Ok(Json(json!({ "inflight": p.router.inflight(&guid) })))
}

async fn traffic(
    State(p): S,
    Path(guid): Path<String>,
) -> ApiResult<Json<crate::platform::traffic::Snapshot>> {
    let guid = blocking(&p, move |p| p.app(&guid)).await?.app.guid;
    Ok(Json(p.router.traffic(&guid)))
}

async fn logs(State(p): S, Path(guid): Path<String>) -> ApiResult<String> {
    blocking(&p, move |p| p.logs(&guid)).await
}
