//! Routes and their destinations: the endpoints a blue-green switch drives
//! (add the new color, remove the old, or replace the lot). Which hosts are
//! free and what a destination change means is `Platform`'s
//! (`state/routes.rs`); each change reaches the router before the answer.

use super::api::{blocking, filter, page};
use super::records::*;
use super::state::{ApiErr, ApiResult, Platform};
use crate::platform::v3;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type S = State<Arc<Platform>>;
type Q = Query<HashMap<String, String>>;

pub fn routes() -> Router<Arc<Platform>> {
    use axum::routing::{delete, get};
    Router::new()
        .route("/v3/routes", get(list_routes).post(create_route))
        .route("/v3/routes/{guid}", get(get_route))
        .route("/v3/apps/{guid}/routes", get(app_routes))
        .route(
            "/v3/routes/{guid}/destinations",
            get(get_dests).post(add_dests).patch(replace_dests),
        )
        .route("/v3/routes/{guid}/destinations/{dest}", delete(remove_dest))
}

async fn list_routes(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let routes: Vec<v3::Route> = blocking(&p, |p| p.all::<v3::Route>(ROUTE))
        .await?
        .into_iter()
        .filter(|r| {
            filter(&q, "hosts", &r.host)
                && filter(&q, "domain_guids", DOMAIN_GUID)
                && filter(&q, "space_guids", SPACE_GUID)
        })
        .collect();
    page(&p, "/v3/routes", &q, routes)
}

/// `GET /v3/apps/:guid/routes`: the routes with a destination to the app.
async fn app_routes(State(p): S, Path(guid): Path<String>, Query(q): Q) -> ApiResult<Json<Value>> {
    let app = guid.clone();
    let routes: Vec<v3::Route> = blocking(&p, move |p| {
        p.app(&app)?;
        p.all::<v3::Route>(ROUTE)
    })
    .await?
    .into_iter()
    .filter(|r| r.destinations.iter().any(|d| d.app.guid == guid) && filter(&q, "hosts", &r.host))
    .collect();
    page(&p, &format!("/v3/apps/{guid}/routes"), &q, routes)
}

#[derive(Deserialize)]
struct CreateRoute {
    host: String,
    relationships: BTreeMap<String, v3::ToOne>,
}

async fn create_route(
    State(p): S,
    Json(body): Json<CreateRoute>,
) -> ApiResult<(StatusCode, Json<v3::Route>)> {
    let domain = body.relationships.get("domain").and_then(|r| r.guid());
    if domain != Some(DOMAIN_GUID) {
        return Err(ApiErr::unprocessable(format!(
            "Invalid domain. The local platform has one domain, {}.",
            super::router::DOMAIN
        )));
    }
    let route = blocking(&p, move |p| p.create_route(&body.host)).await?;
    Ok((StatusCode::CREATED, Json(route)))
}

async fn get_route(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Route>> {
    Ok(Json(blocking(&p, move |p| p.get(ROUTE, &guid)).await?))
}

async fn get_dests(
    State(p): S,
    Path(guid): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<v3::Destinations>> {
    let route: v3::Route = blocking(&p, move |p| p.get(ROUTE, &guid)).await?;
    let destinations = route
        .destinations
        .into_iter()
        .filter(|d| filter(&q, "app_guids", &d.app.guid))
        .collect();
    Ok(Json(v3::Destinations { destinations }))
}

async fn change_dests(
    p: &Arc<Platform>,
    guid: String,
    body: v3::Destinations,
    replace: bool,
) -> ApiResult<Json<v3::Destinations>> {
    let destinations = blocking(p, move |p| {
        p.change_destinations(&guid, body.destinations, replace)
    })
    .await?;
    Ok(Json(v3::Destinations { destinations }))
}

async fn add_dests(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<v3::Destinations>,
) -> ApiResult<Json<v3::Destinations>> {
    change_dests(&p, guid, body, false).await
}

async fn replace_dests(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<v3::Destinations>,
) -> ApiResult<Json<v3::Destinations>> {
    change_dests(&p, guid, body, true).await
}

async fn remove_dest(
    State(p): S,
    Path((guid, dest)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    blocking(&p, move |p| p.remove_destination(&guid, &dest)).await?;
    Ok(StatusCode::NO_CONTENT)
}
