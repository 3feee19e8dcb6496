//! Processes: each app's `web` process (its guid is the app's) and its
//! other types (`worker`, ...), with CF's endpoints to read, update and
//! scale them and to see each instance (`/stats`). An app's manifest
//! (`apply_manifest`) sets them all at once.

use super::api::{blocking, filter, page};
use super::records::{APP, AppRec};
use super::state::{ApiErr, ApiResult, Platform};
use super::supervisor::Status;
use crate::platform::v3;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type S = State<Arc<Platform>>;

pub fn routes() -> Router<Arc<Platform>> {
    use axum::routing::{get, post};
    Router::new()
        .route("/v3/processes", get(list_processes))
        .route("/v3/apps/{guid}/processes", get(app_processes))
        .route("/v3/apps/{guid}/processes/{kind}", get(app_process))
        .route(
            "/v3/processes/{guid}",
            get(get_process).patch(update_process),
        )
        .route("/v3/processes/{guid}/stats", get(process_stats))
        .route("/v3/processes/{guid}/actions/scale", post(scale))
}

/// The app holding process `guid`.
fn owner(p: &Platform, guid: &str) -> ApiResult<AppRec> {
    p.all::<AppRec>(APP)?
        .into_iter()
        .find(|a| a.processes().any(|x| x.guid == guid))
        .ok_or_else(|| ApiErr::not_found("Process"))
}

/// `owner`, off the async workers.
async fn owned(p: &Arc<Platform>, guid: &str) -> ApiResult<AppRec> {
    let guid = guid.to_string();
    blocking(p, move |p| owner(p, &guid)).await
}

/// `GET /v3/processes`: every app's processes, by `guids`, `types` and
/// `app_guids`.
async fn list_processes(
    State(p): S,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    let apps = blocking(&p, |p| p.all::<AppRec>(APP)).await?;
    let processes: Vec<v3::Process> = apps
        .iter()
        .filter(|a| filter(&q, "app_guids", &a.app.guid))
        .flat_map(|a| a.processes())
        .filter(|x| filter(&q, "guids", &x.guid) && filter(&q, "types", &x.kind))
        .cloned()
        .collect();
    page(&p, "/v3/processes", &q, processes)
}

async fn app_processes(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    let rec = blocking(&p, move |p| p.app(&guid)).await?;
    let all: Vec<&v3::Process> = rec.processes().collect();
    Ok(Json(json!({
        "pagination": { "total_results": all.len(), "total_pages": 1, "next": null },
        "resources": all,
    })))
}

async fn app_process(
    State(p): S,
    Path((guid, kind)): Path<(String, String)>,
) -> ApiResult<Json<v3::Process>> {
    let rec = blocking(&p, move |p| p.app(&guid)).await?;
    rec.processes()
        .find(|x| x.kind == kind)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiErr::not_found("Process"))
}

async fn get_process(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Process>> {
    let rec = owned(&p, &guid).await?;
    let found = rec.processes().find(|x| x.guid == guid).cloned();
    found.map(Json).ok_or_else(|| ApiErr::not_found("Process"))
}

#[derive(Deserialize)]
struct UpdateProcess {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    health_check: Option<v3::HealthCheck>,
}

pub fn check_health_type(kind: &str) -> ApiResult<()> {
    if matches!(kind, "port" | "process" | "http") {
        Ok(())
    } else {
        Err(ApiErr::unprocessable(format!(
            "health check type `{kind}` must be port, process or http"
        )))
    }
}

async fn update_process(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<UpdateProcess>,
) -> ApiResult<Json<v3::Process>> {
    let (_, _, out) = blocking(&p, move |p| {
        change(p, &guid, |process| {
            if let Some(command) = body.command {
                process.command = Some(command);
            }
            if let Some(hc) = body.health_check {
                check_health_type(&hc.kind)?;
                process.health_check = hc;
            }
            Ok(())
        })
    })
    .await?;
    Ok(Json(out))
}

/// Changes process `guid` in its app's record (one read-modify-write);
/// returns the app's guid, whether it is started, and the process as changed.
fn change(
    p: &Platform,
    guid: &str,
    f: impl FnOnce(&mut v3::Process) -> ApiResult<()>,
) -> ApiResult<(String, bool, v3::Process)> {
    let app_guid = owner(p, guid)?.app.guid;
    p.update(APP, &app_guid, |rec: &mut AppRec| {
        let process = rec
            .process_mut(guid)
            .ok_or_else(|| ApiErr::not_found("Process"))?;
        f(process)?;
        let out = process.clone();
        Ok((app_guid.clone(), rec.app.state == "STARTED", out))
    })
}

#[derive(Deserialize)]
struct Scale {
    #[serde(default)]
    instances: Option<u32>,
    #[serde(default)]
    memory_in_mb: Option<u64>,
}

/// CF scales a started app in place: instances start or stop, the others
/// keep serving. Memory is recorded (and reported), not enforced here.
async fn scale(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<Scale>,
) -> ApiResult<Json<v3::Process>> {
    let (app_guid, started, out) = blocking(&p, move |p| {
        change(p, &guid, |process| {
            if let Some(n) = body.instances {
                process.instances = n;
            }
            if let Some(m) = body.memory_in_mb {
                process.memory_in_mb = Some(m);
            }
            Ok(())
        })
    })
    .await?;
    if started {
        p.rescale(&app_guid, &out.kind).await?;
    }
    Ok(Json(out))
}

async fn process_stats(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    let rec = owned(&p, &guid).await?;
    let process = rec
        .processes()
        .find(|x| x.guid == guid)
        .expect("owner holds it");
    let running = p.supervisor.instances(&rec.app.guid);
    // One entry per wanted instance; an index with no process yet is DOWN.
    // During a deployment's rollout an index may run twice, on the old
    // droplet and the new (`rollout.rs`): each is listed, as the router
    // sends to each.
    let mut indices: Vec<u32> = (0..process.instances.max(1)).collect();
    for (_, i, _) in running.iter().filter(|(k, _, _)| *k == process.kind) {
        if !indices.contains(i) {
            indices.push(*i);
        }
    }
    let stats: Vec<v3::ProcessStats> = indices
        .into_iter()
        .flat_map(|index| {
            let live: Vec<&Status> = running
                .iter()
                .filter(|(k, i, _)| *k == process.kind && *i == index)
                .map(|(_, _, s)| s)
                .collect();
            let live: Vec<Option<&Status>> = match live.is_empty() {
                true => vec![None],
                false => live.into_iter().map(Some).collect(),
            };
            live.into_iter().map(move |s| (index, s))
        })
        .map(|(index, live)| {
            let (state, port, uptime) = match live {
                Some(s) => (s.state.cf_name(), s.port, s.since.elapsed().as_secs()),
                None => ("DOWN", 0, 0),
            };
            v3::ProcessStats {
                kind: process.kind.clone(),
                index,
                state: state.into(),
                host: Some("127.0.0.1".into()),
                instance_ports: if port > 0 && process.kind == "web" {
                    vec![v3::InstancePort {
                        external: port,
                        internal: port,
                    }]
                } else {
                    vec![]
                },
                uptime: Some(uptime),
                mem_quota: process.memory_in_mb.map(|m| m << 20),
            }
        })
        .filter(|s| process.instances > 0 || s.state != "DOWN")
        .collect();
    Ok(Json(json!({ "resources": stats })))
}
