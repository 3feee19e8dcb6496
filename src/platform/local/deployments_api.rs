//! `/v3/deployments`: Cloud Foundry's own rolling and canary deployments
//! (CAPI 3.173+), so a CF client that drives them (bluegreen's native
//! strategies) runs end to end against the local platform. The records
//! and their rules are `state/deployments.rs`, the instances `rollout.rs`;
//! this file parses and answers in CC's shapes (`DeploymentPresenter`).
//!
//! Where the local platform differs from a foundation: the new instances
//! join the app's one web process (its guid is the app's), and its `/stats`
//! lists both droplets' instances during a rollout. What a CF client tells
//! them apart by is as on a foundation: `new_processes` names a process
//! guid (the deployment's own), which log-cache's `process_id` tag and
//! gorouter's `X-CF-Process-Instance` header use for the new instances
//! (`supervisor::process_guid`); there is no `/v3/processes/:guid` for it.

use super::api::{blocking, filter, page};
use super::deployment_message::CreateDeployment;
use super::records::*;
use super::state::{ApiErr, ApiResult, Platform};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type S = State<Arc<Platform>>;

pub fn routes() -> Router<Arc<Platform>> {
    use axum::routing::{get, post};
    Router::new()
        .route("/v3/deployments", get(list).post(create))
        .route("/v3/deployments/{guid}", get(show))
        .route("/v3/deployments/{guid}/actions/continue", post(continue_))
        .route("/v3/deployments/{guid}/actions/cancel", post(cancel))
}

/// The filters `GET /v3/deployments` implements (`query_check.rs`).
pub const FILTERS: &[&str] = &["app_guids", "states", "status_reasons", "status_values"];

async fn list(State(p): S, Query(q): Query<HashMap<String, String>>) -> ApiResult<Json<Value>> {
    let all = blocking(&p, |p| p.all::<DeploymentRec>(DEPLOYMENT)).await?;
    let shown: Vec<Value> = all
        .iter()
        .filter(|d| {
            filter(&q, "app_guids", &d.app_guid)
                && filter(&q, "states", &d.state)
                && filter(&q, "status_reasons", &d.status_reason)
                && filter(&q, "status_values", &d.status_value)
        })
        .map(|d| present(&p, d))
        .collect();
    page(&p, "/v3/deployments", &q, shown)
}

async fn show(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    let d = blocking(&p, move |p| {
        p.transaction(|tx| tx.find::<DeploymentRec>(DEPLOYMENT, &guid))
    })
    .await?
    .ok_or_else(|| ApiErr::not_found("Deployment"))?;
    Ok(Json(present(&p, &d)))
}

async fn create(State(p): S, body: Bytes) -> ApiResult<(StatusCode, Json<Value>)> {
    let body: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiErr(
            400,
            1001,
            "CF-MessageParseError",
            format!("Request invalid due to parse error: {e}"),
        )
    })?;
    let message = CreateDeployment::parse(&body)?;
    let (d, started) = blocking(&p, move |p| p.create_deployment(message)).await?;
    if started {
        super::rollout::kick(&p, &d.app_guid);
    } else {
        // CC starts a stopped app on the new droplet instead.
        p.set_state(&d.app_guid, "start").await?;
    }
    Ok((StatusCode::CREATED, Json(present(&p, &d))))
}

/// CC answers both actions with an empty 200.
async fn continue_(State(p): S, Path(guid): Path<String>) -> ApiResult<StatusCode> {
    let d = blocking(&p, move |p| p.continue_deployment(&guid))
        .await
        .map_err(named)?;
    super::rollout::kick(&p, &d.app_guid);
    Ok(StatusCode::OK)
}

async fn cancel(State(p): S, Path(guid): Path<String>) -> ApiResult<StatusCode> {
    let d = blocking(&p, move |p| p.cancel_deployment(&guid))
        .await
        .map_err(named)?;
    super::rollout::kick(&p, &d.app_guid);
    Ok(StatusCode::OK)
}

/// CC's 404 names the resource as its title does.
fn named(e: ApiErr) -> ApiErr {
    match e.1 {
        10010 => ApiErr::not_found("Deployment"),
        _ => e,
    }
}

/// CC's `DeploymentPresenter`.
fn present(p: &Platform, d: &DeploymentRec) -> Value {
    let base = p.base_url();
    let href = |path: String| json!({ "href": format!("{base}{path}") });
    let mut status = json!({
        "value": d.status_value,
        "reason": d.status_reason,
        "details": {
            "last_successful_healthcheck": d.last_healthy_at,
            "last_status_change": d.status_changed_at,
        },
    });
    if let Some(error) = &d.error {
        status["details"]["error"] = json!(error);
    }
    let mut options = json!({ "max_in_flight": d.max_in_flight });
    if let Some(n) = d.web_instances {
        options["web_instances"] = json!(n);
    }
    if let Some(m) = d.memory_in_mb {
        options["memory_in_mb"] = json!(m);
    }
    if d.strategy == "canary" {
        let steps = d.canary_steps.as_ref().map_or(1, Vec::len);
        status["canary"] = json!({ "steps": {
            "current": d.canary_current_step.unwrap_or(1),
            "total": steps,
        }});
        if let Some(weights) = &d.canary_steps {
            let steps: Vec<Value> = weights
                .iter()
                .map(|w| json!({ "instance_weight": w }))
                .collect();
            options["canary"] = json!({ "steps": steps });
        }
    }
    let mut links = json!({
        "self": href(format!("/v3/deployments/{}", d.guid)),
        "app": href(format!("/v3/apps/{}", d.app_guid)),
    });
    for (action, allowed) in [("cancel", d.cancelable()), ("continue", d.continuable())] {
        if allowed {
            let mut link = href(format!("/v3/deployments/{}/actions/{action}", d.guid));
            link["method"] = json!("POST");
            links[action] = link;
        }
    }
    let new_processes: Vec<Value> = if d.new_process {
        // The deployment's instances' process (see the top of this file).
        vec![json!({ "guid": d.guid, "type": "web" })]
    } else {
        vec![]
    };
    json!({
        "guid": d.guid,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "status": status,
        "strategy": d.strategy,
        "options": options,
        "droplet": { "guid": d.droplet },
        "previous_droplet": { "guid": d.previous_droplet },
        "new_processes": new_processes,
        "revision": d.revision.as_ref().map(|r| json!({ "guid": r.guid, "version": r.version })),
        "relationships": { "app": { "data": { "guid": d.app_guid } } },
        "metadata": d.metadata,
        "links": links,
    })
}
