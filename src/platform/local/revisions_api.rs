//! Revisions (`state/revisions.rs`) as Cloud Controller serves them
//! (`RevisionPresenter`): an app's list, one revision, and the
//! environment it ran with. A CF client's rollback picks one and creates a
//! deployment naming it (`deployments_api.rs`).

use super::api::{blocking, filter, page};
use super::records::*;
use super::state::{ApiErr, ApiResult, Platform};
use axum::extract::{Path, Query, State};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

type S = State<Arc<Platform>>;

pub fn routes() -> Router<Arc<Platform>> {
    use axum::routing::get;
    Router::new()
        .route("/v3/apps/{guid}/revisions", get(list))
        .route("/v3/revisions/{guid}", get(show))
        .route("/v3/revisions/{guid}/environment_variables", get(env))
}

/// The filters `GET /v3/apps/:guid/revisions` implements (`query_check.rs`).
pub const FILTERS: &[&str] = &["versions"];

async fn list(
    State(p): S,
    Path(guid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let app = guid.clone();
    let (revisions, staged) = blocking(&p, move |p| Ok((p.revisions(&app)?, staged(p)?))).await?;
    let shown: Vec<Value> = revisions
        .iter()
        .filter(|r| filter(&q, "versions", &r.version.to_string()))
        .map(|r| present(&p, r, &staged))
        .collect();
    page(&p, &format!("/v3/apps/{guid}/revisions"), &q, shown)
}

async fn show(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    let (r, staged) = blocking(&p, move |p| Ok((find(p, &guid)?, staged(p)?))).await?;
    Ok(Json(present(&p, &r, &staged)))
}

async fn env(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    let r = blocking(&p, move |p| find(p, &guid)).await?;
    let base = p.base_url();
    Ok(Json(json!({
        "var": r.env,
        "links": {
            "self": { "href": format!("{base}/v3/revisions/{}/environment_variables", r.guid) },
            "revision": { "href": format!("{base}/v3/revisions/{}", r.guid) },
            "app": { "href": format!("{base}/v3/apps/{}", r.app_guid) },
        },
    })))
}

fn find(p: &Platform, guid: &str) -> ApiResult<RevisionRec> {
    p.transaction(|tx| tx.find::<RevisionRec>(REVISION, guid))?
        .ok_or_else(|| ApiErr::not_found("Revision"))
}

/// The droplets a deployment can still use: a revision is `deployable`
/// while its droplet is kept and staged.
fn staged(p: &Platform) -> ApiResult<BTreeSet<String>> {
    Ok(p.all::<DropletRec>(DROPLET)?
        .into_iter()
        .filter(|d| d.droplet.state == "STAGED")
        .map(|d| d.droplet.guid)
        .collect())
}

fn present(p: &Platform, r: &RevisionRec, staged: &BTreeSet<String>) -> Value {
    let base = p.base_url();
    let processes: serde_json::Map<String, Value> = r
        .commands
        .iter()
        .map(|(kind, command)| (kind.clone(), json!({ "command": command })))
        .collect();
    json!({
        "guid": r.guid,
        "version": r.version,
        "droplet": { "guid": r.droplet },
        "processes": processes,
        "sidecars": [],
        "description": r.description,
        "deployable": staged.contains(&r.droplet),
        "relationships": { "app": { "data": { "guid": r.app_guid } } },
        "created_at": r.created_at,
        "updated_at": r.updated_at,
        "metadata": r.metadata,
        "links": {
            "self": { "href": format!("{base}/v3/revisions/{}", r.guid) },
            "app": { "href": format!("{base}/v3/apps/{}", r.app_guid) },
            "environment_variables": {
                "href": format!("{base}/v3/revisions/{}/environment_variables", r.guid),
            },
        },
    })
}
