//! The services' HTTP endpoints. The v3 ones (`/v3/service_instances`,
//! `/v3/service_credential_bindings`) are those the client also uses on a
//! real CF; creating and deleting an instance is local-only
//! (`/bluegreen/v1/services`), since CF does that through brokers and plans
//! this platform has no use for.

use super::api::{blocking, completed_job, filter, page};
use super::postgres;
use super::records::SPACE_GUID;
use super::services::{BINDING, BindingRec, SERVICE, ServiceRec};
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
    use axum::routing::{delete, get};
    Router::new()
        .route("/v3/service_instances", get(list_instances))
        .route(
            "/v3/service_credential_bindings",
            get(list_bindings).post(create_binding),
        )
        .route(
            "/v3/service_credential_bindings/{guid}",
            delete(delete_binding),
        )
        .route("/bluegreen/v1/services", get(list_services).post(create))
        .route("/bluegreen/v1/services/{name}", delete(remove))
}

async fn list_instances(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let all: Vec<v3::ServiceInstance> = blocking(&p, |p| p.all::<ServiceRec>(SERVICE))
        .await?
        .into_iter()
        .map(|s| s.instance)
        .filter(|i| filter(&q, "names", &i.name) && filter(&q, "space_guids", SPACE_GUID))
        .collect();
    page(&p, "/v3/service_instances", &q, all)
}

async fn list_bindings(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let all: Vec<v3::ServiceCredentialBinding> = blocking(&p, |p| p.all::<BindingRec>(BINDING))
        .await?
        .into_iter()
        .filter(|b| {
            filter(&q, "app_guids", &b.app_guid)
                && filter(&q, "service_instance_guids", &b.service_guid)
                && filter(&q, "type", "app")
        })
        .map(|b| b.binding)
        .collect();
    page(&p, "/v3/service_credential_bindings", &q, all)
}

#[derive(Deserialize)]
struct CreateBinding {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    relationships: BTreeMap<String, v3::ToOne>,
}

async fn create_binding(
    State(p): S,
    Json(body): Json<CreateBinding>,
) -> ApiResult<(StatusCode, Json<v3::ServiceCredentialBinding>)> {
    if body.kind != "app" {
        return Err(ApiErr::unprocessable(format!(
            "binding type `{}` is not supported here; use app",
            body.kind
        )));
    }
    let rel = |k: &str| {
        body.relationships
            .get(k)
            .and_then(|r| r.guid())
            .map(String::from)
            .ok_or_else(|| ApiErr::unprocessable(format!("relationships.{k} is required")))
    };
    let (app_guid, service_guid) = (rel("app")?, rel("service_instance")?);
    let binding = blocking(&p, move |p| p.bind(&app_guid, &service_guid, body.name)).await?;
    Ok((StatusCode::CREATED, Json(binding)))
}

async fn delete_binding(State(p): S, Path(guid): Path<String>) -> ApiResult<Response> {
    blocking(&p, move |p| {
        p.transaction(|tx| {
            tx.get::<BindingRec>(BINDING, &guid)?;
            tx.delete(BINDING, &guid)
        })
    })
    .await?;
    Ok(completed_job(&p, "service_bindings.delete"))
}

/// One service as `platform service list --json` shows it, credentials included.
fn describe(s: &ServiceRec) -> Value {
    let problem = postgres::verify(&s.dir, s.port).err();
    json!({
        "name": s.instance.name,
        "guid": s.instance.guid,
        "type": s.kind,
        // Running means proven ours and alone on its port, as bound apps need.
        "state": if problem.is_none() { "running" } else { "stopped" },
        "problem": problem,
        "created_at": s.created_at,
        "dir": s.dir,
        "credentials": s.credentials(),
    })
}

async fn list_services(State(p): S) -> ApiResult<Json<Value>> {
    // Blocking: besides the store, each service's state is read from disk.
    let all: Vec<Value> = blocking(&p, |p| {
        Ok(p.all::<ServiceRec>(SERVICE)?.iter().map(describe).collect())
    })
    .await?;
    Ok(Json(json!({ "resources": all })))
}

#[derive(Deserialize)]
struct CreateService {
    name: String,
    #[serde(rename = "type")]
    kind: String,
}

async fn create(
    State(p): S,
    Json(body): Json<CreateService>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let rec = blocking(&p, move |p| p.create_service(&body.name, &body.kind)).await?;
    Ok((StatusCode::CREATED, Json(describe(&rec))))
}

async fn remove(State(p): S, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    blocking(&p, move |p| p.delete_service(&name)).await?;
    Ok(Json(json!({ "deleted": true })))
}
