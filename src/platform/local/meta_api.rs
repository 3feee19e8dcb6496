//! The fixed frame around the apps: the API root, the one org, space and
//! domain this platform has, the jobs its asynchronous endpoints point at
//! (all complete by the time they are named), and the deploy lock
//! (`/bluegreen/v1/locks`), a local-only endpoint since CF has no lock,
//! with the operator's channel to the deploy holding it (`…/control`).

use super::api::{blocking, filter, page};
use super::records::*;
use super::state::{ApiErr, ApiResult, Platform};
use crate::platform::lease::control::Control;
use crate::platform::lease::{AcquireRequest, Acquired};
use crate::platform::v3;
use axum::extract::{Path, Query, State};
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type S = State<Arc<Platform>>;
type Q = Query<HashMap<String, String>>;

pub fn routes() -> Router<Arc<Platform>> {
    use axum::routing::get;
    Router::new()
        .route("/v3/organizations", get(orgs))
        .route("/v3/spaces", get(spaces))
        .route("/v3/domains", get(domains))
        .route("/v3/jobs/{guid}", get(get_job))
        .route(
            "/bluegreen/v1/locks/{app}",
            get(get_lock).put(put_lock).delete(delete_lock),
        )
        .route(
            "/bluegreen/v1/locks/{app}/control",
            get(get_control).put(put_control),
        )
}

/// The Cloud Controller API version whose shapes the subset here follows
/// (3.173: deployments with canary steps, `deployments_api.rs`).
const CC_V3_VERSION: &str = "3.173.0";

/// `GET /`, outside the token check (see `api::routes`): the links of CF's
/// root document. This one origin serves CC v3, UAA (`login`, `uaa`:
/// `uaa.rs`) and log-cache's read (`log_cache`: `log_cache_api.rs`); what
/// the platform has no server for (v2, routing, logging, ssh) is null, as
/// CF writes a component it does not run.
pub(super) async fn root(State(p): S) -> Json<Value> {
    let base = p.base_url();
    let mut root = json!({ "links": {
        "self": { "href": base },
        "bits_service": null,
        "cloud_controller_v2": null,
        "cloud_controller_v3": {
            "href": format!("{base}/v3"),
            "meta": { "version": CC_V3_VERSION },
        },
        "network_policy_v0": null,
        "network_policy_v1": null,
        "login": { "href": base },
        "uaa": { "href": base },
        "credhub": null,
        "routing": null,
        "logging": null,
        "log_cache": { "href": base },
        "log_stream": null,
        "app_ssh": null,
        "bluegreen_router": { "href": format!("http://{}:{}", super::router::DOMAIN, p.router_port) },
    }});
    if p.faults.like_korifi() {
        // What Korifi's root says of itself (a test's fault, see `faults`).
        root["cf_on_k8s"] = json!(true);
        root["links"]["cloud_controller_v3"]["meta"]["version"] = json!("3.117.0+cf-k8s");
    }
    Json(root)
}

/// `GET /v3`, outside the token check as on CF: links to the resources the
/// platform serves (CF's lists every resource it has).
pub(super) async fn v3_root(State(p): S) -> Json<Value> {
    let base = format!("{}/v3", p.base_url());
    let mut links = serde_json::Map::new();
    links.insert("self".into(), json!({ "href": base }));
    for resource in [
        "apps",
        "builds",
        "deployments",
        "domains",
        "droplets",
        "organizations",
        "packages",
        "processes",
        "revisions",
        "routes",
        "service_credential_bindings",
        "service_instances",
        "spaces",
        "tasks",
    ] {
        links.insert(
            resource.into(),
            json!({ "href": format!("{base}/{resource}") }),
        );
    }
    Json(json!({ "links": links }))
}

async fn orgs(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let all = vec![v3::Named {
        guid: ORG_GUID.into(),
        name: ORG_NAME.into(),
        relationships: BTreeMap::new(),
    }];
    page(
        &p,
        "/v3/organizations",
        &q,
        all.into_iter()
            .filter(|o| filter(&q, "names", &o.name))
            .collect(),
    )
}

async fn spaces(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let space = v3::Named {
        guid: SPACE_GUID.into(),
        name: SPACE_NAME.into(),
        relationships: [("organization".to_string(), v3::ToOne::to(ORG_GUID))].into(),
    };
    let keep = filter(&q, "names", SPACE_NAME) && filter(&q, "organization_guids", ORG_GUID);
    page(
        &p,
        "/v3/spaces",
        &q,
        if keep { vec![space] } else { vec![] },
    )
}

async fn domains(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let d = v3::Named {
        guid: DOMAIN_GUID.into(),
        name: super::router::DOMAIN.into(),
        relationships: BTreeMap::new(),
    };
    // A test's fault: more domains listed, as a foundation has (nothing
    // routes them).
    let extra = p.faults.extra_domains().into_iter().map(|name| v3::Named {
        guid: format!("{DOMAIN_GUID}-{name}"),
        name,
        relationships: BTreeMap::new(),
    });
    let all = std::iter::once(d)
        .chain(extra)
        .filter(|d| filter(&q, "names", &d.name))
        .collect();
    page(&p, "/v3/domains", &q, all)
}

/// Every job is complete; its guid carries its operation (`completed_job`).
async fn get_job(Path(guid): Path<String>) -> ApiResult<Json<v3::Job>> {
    let operation = guid
        .split_once('~')
        .map(|(op, _)| op.to_string())
        .ok_or_else(|| ApiErr::not_found("Job"))?;
    Ok(Json(v3::Job {
        guid,
        state: "COMPLETE".into(),
        operation,
        errors: vec![],
    }))
}

async fn get_lock(State(p): S, Path(app): Path<String>) -> ApiResult<Json<Value>> {
    let holder = blocking(&p, move |p| p.lease_holder(&app)).await?;
    Ok(Json(json!({ "holder": holder })))
}

async fn put_lock(
    State(p): S,
    Path(app): Path<String>,
    Json(req): Json<AcquireRequest>,
) -> ApiResult<Json<Acquired>> {
    let decision = blocking(&p, move |p| p.acquire_lease(&app, &req)).await?;
    Ok(Json(decision))
}

async fn delete_lock(State(p): S, Path(app): Path<String>, Query(q): Q) -> ApiResult<Json<Value>> {
    let force = q.get("force").is_some_and(|f| f == "true");
    let id = q.get("id").cloned();
    let r = blocking(&p, move |p| p.release_lease(&app, id.as_deref(), force)).await?;
    Ok(Json(json!({ "released": r.released, "holder": r.holder })))
}

/// The deploy's state and the last operator command (`lease::control`).
async fn get_control(State(p): S, Path(app): Path<String>) -> ApiResult<Json<Control>> {
    Ok(Json(blocking(&p, move |p| p.control(&app)).await?))
}

async fn put_control(
    State(p): S,
    Path(app): Path<String>,
    Json(write): Json<Control>,
) -> ApiResult<Json<Control>> {
    Ok(Json(
        blocking(&p, move |p| p.write_control(&app, write)).await?,
    ))
}
