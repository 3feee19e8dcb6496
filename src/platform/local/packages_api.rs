//! From bits to a running release, over HTTP: packages and their upload,
//! builds (staging), droplets, an app's droplets and its current one, and
//! droplet copies. The upload streams to disk through the blocking pool and
//! staging runs there too: neither holds an async worker while the disk
//! works.

use super::api::{blocking, page};
use super::records::*;
use super::state::{ApiErr, ApiResult, Platform};
use crate::platform::v3;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

mod upload;

type S = State<Arc<Platform>>;
type Q = Query<HashMap<String, String>>;

pub fn routes() -> Router<Arc<Platform>> {
    use axum::routing::{get, post};
    Router::new()
        .route("/v3/packages", post(create_package))
        .route("/v3/packages/{guid}", get(get_package))
        .route(
            "/v3/packages/{guid}/upload",
            // The handler enforces the platform's own limit while streaming.
            post(upload_package).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v3/builds", post(create_build))
        .route("/v3/builds/{guid}", get(get_build))
        .route("/v3/droplets", post(copy_droplet))
        .route("/v3/droplets/{guid}", get(get_droplet))
        .route("/v3/apps/{guid}/droplets", get(app_droplets))
        .route("/v3/apps/{guid}/droplets/current", get(current_droplet))
        .route(
            "/v3/apps/{guid}/relationships/current_droplet",
            get(current_rel).patch(set_current),
        )
}

/// The guid in `relationships.<key>`, or a 422 saying it is required.
fn related(rel: &BTreeMap<String, v3::ToOne>, key: &str, missing: &str) -> ApiResult<String> {
    rel.get(key)
        .and_then(|r| r.guid())
        .map(String::from)
        .ok_or_else(|| ApiErr::unprocessable(missing.into()))
}

#[derive(Deserialize)]
struct CreatePackage {
    #[serde(rename = "type")]
    kind: String,
    relationships: BTreeMap<String, v3::ToOne>,
}

async fn create_package(
    State(p): S,
    Json(body): Json<CreatePackage>,
) -> ApiResult<(StatusCode, Json<v3::Package>)> {
    if body.kind != "bits" {
        return Err(ApiErr::unprocessable(format!(
            "package type `{}` is not supported; use bits",
            body.kind
        )));
    }
    let app = related(
        &body.relationships,
        "app",
        "an app relationship is required",
    )?;
    let package = blocking(&p, move |p| p.create_package(&app)).await?;
    Ok((StatusCode::CREATED, Json(package)))
}

async fn get_package(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Package>> {
    let rec = blocking(&p, move |p| p.get::<PackageRec>(PACKAGE, &guid)).await?;
    Ok(Json(rec.package))
}

async fn upload_package(
    State(p): S,
    Path(guid): Path<String>,
    headers: HeaderMap,
    form: Multipart,
) -> ApiResult<Json<v3::Package>> {
    Ok(Json(upload::receive(p, guid, headers, form).await?))
}

#[derive(Deserialize)]
struct CreateBuild {
    package: v3::Guid,
}

async fn create_build(
    State(p): S,
    Json(body): Json<CreateBuild>,
) -> ApiResult<(StatusCode, Json<v3::Build>)> {
    // Unzipping a large app takes a while: keep it off the async workers.
    let rec = blocking(&p, move |p| p.stage(&body.package.guid)).await?;
    Ok((StatusCode::CREATED, Json(rec.build)))
}

async fn get_build(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Build>> {
    let rec = blocking(&p, move |p| p.get::<BuildRec>(BUILD, &guid)).await?;
    Ok(Json(rec.build))
}

async fn get_droplet(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Droplet>> {
    let rec = blocking(&p, move |p| p.get::<DropletRec>(DROPLET, &guid)).await?;
    Ok(Json(rec.droplet))
}

async fn app_droplets(
    State(p): S,
    Path(guid): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    let app = guid.clone();
    let mut droplets: Vec<v3::Droplet> = blocking(&p, move |p| {
        p.app(&app)?;
        p.all::<DropletRec>(DROPLET)
    })
    .await?
    .into_iter()
    .filter(|d| d.app_guid == guid)
    .map(|d| d.droplet)
    .collect();
    // CF lists oldest first unless asked for `order_by=-created_at`.
    if q.get("order_by").map(String::as_str) == Some("-created_at") {
        droplets.reverse();
    }
    page(&p, &format!("/v3/apps/{guid}/droplets"), &q, droplets)
}

async fn current_droplet(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Droplet>> {
    let rec = blocking(&p, move |p| {
        let d = p
            .app(&guid)?
            .current_droplet
            .ok_or_else(|| ApiErr::not_found("Droplet"))?;
        p.get::<DropletRec>(DROPLET, &d)
    })
    .await?;
    Ok(Json(rec.droplet))
}

async fn current_rel(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::ToOne>> {
    let rec = blocking(&p, move |p| p.app(&guid)).await?;
    Ok(Json(v3::ToOne {
        data: Some(v3::GuidRef {
            guid: rec.current_droplet,
        }),
    }))
}

async fn set_current(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<v3::ToOne>,
) -> ApiResult<Json<v3::ToOne>> {
    let droplet = body.guid().map(String::from);
    blocking(&p, move |p| {
        p.app(&guid)?;
        let droplet =
            droplet.ok_or_else(|| ApiErr::unprocessable("a droplet guid is required".into()))?;
        p.set_current_droplet(&guid, &droplet)
    })
    .await?;
    Ok(Json(body))
}

#[derive(Deserialize)]
struct CopyDroplet {
    relationships: BTreeMap<String, v3::ToOne>,
}

/// `POST /v3/droplets?source_guid=G`: the droplet for another app.
async fn copy_droplet(
    State(p): S,
    Query(q): Q,
    Json(body): Json<CopyDroplet>,
) -> ApiResult<(StatusCode, Json<v3::Droplet>)> {
    let source = q
        .get("source_guid")
        .cloned()
        .ok_or_else(|| ApiErr::unprocessable("source_guid is required".into()))?;
    let app = related(&body.relationships, "app", "relationships.app is required")?;
    // Blocking: the copy may prune the app's oldest droplets from disk.
    let droplet = blocking(&p, move |p| p.copy_droplet(&source, &app)).await?;
    Ok((StatusCode::CREATED, Json(droplet)))
}
