//! `POST /v3/spaces/:guid/actions/apply_manifest`, the server-side manifest
//! CF applies: per app, its environment, its processes (instances, command,
//! memory, health check) and its service bindings. What the local platform
//! has no use for (buildpacks, stack, disk, sidecars, docker) is accepted
//! and ignored, as a CF without that feature would. A started app's
//! processes are rescaled in place; the rest takes effect at its restart.
//! Each app's changes (record and bindings) are one store transaction.

use super::api::{blocking, completed_job};
use super::process_api::check_health_type;
use super::records::{APP, AppRec, SPACE_GUID, new_guid};
use super::services::{BINDING, BindingRec, SERVICE, ServiceRec, bind};
use super::state::{ApiErr, ApiResult, Platform, Tx};
use crate::config::manifest::{memory_mb, text};
use crate::platform::v3;
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use serde_yaml::{Mapping, Value};
use std::sync::Arc;

type S = State<Arc<Platform>>;

pub fn routes() -> Router<Arc<Platform>> {
    use axum::routing::post;
    Router::new().route("/v3/spaces/{guid}/actions/apply_manifest", post(apply))
}

fn bad(detail: String) -> ApiErr {
    ApiErr::unprocessable(detail)
}

async fn apply(State(p): S, Path(space): Path<String>, body: String) -> ApiResult<Response> {
    if space != SPACE_GUID {
        return Err(ApiErr::not_found("Space"));
    }
    let doc: Value =
        serde_yaml::from_str(&body).map_err(|e| bad(format!("manifest is not YAML: {e}")))?;
    let apps = doc
        .get("applications")
        .and_then(Value::as_sequence)
        .ok_or_else(|| bad("manifest has no `applications` list".into()))?;
    // Checked whole before anything changes, as CF validates first.
    let mut changes = Vec::new();
    for entry in apps {
        let m = entry
            .as_mapping()
            .ok_or_else(|| bad("an application must be a mapping".into()))?;
        let name = m
            .get("name")
            .and_then(text)
            .ok_or_else(|| bad("an application needs a name".into()))?;
        changes.push((name, m.clone()));
    }
    for (name, m) in changes {
        let guid = blocking(&p, move |p| {
            let found = p
                .all::<AppRec>(APP)?
                .into_iter()
                .find(|a| a.app.name == name);
            Ok(match found {
                Some(r) => r.app.guid,
                None => p.create_app(&name, Default::default())?.app.guid,
            })
        })
        .await?;
        apply_app(&p, &guid, m).await?;
    }
    Ok(completed_job(&p, "app.apply_manifest"))
}

/// The fields of one process (the app-level keys are the web process's).
fn apply_process(process: &mut v3::Process, m: &Mapping) -> ApiResult<()> {
    if let Some(n) = m.get("instances") {
        process.instances = n.as_u64().filter(|n| *n <= 1000).ok_or_else(|| {
            bad(format!(
                "instances `{}` is not a count",
                text(n).unwrap_or_default()
            ))
        })? as u32;
    }
    if let Some(c) = m.get("command").and_then(text) {
        process.command = Some(c);
    }
    if let Some(mem) = m.get("memory").and_then(text) {
        process.memory_in_mb =
            Some(memory_mb(&mem).ok_or_else(|| bad(format!("memory `{mem}` is not a size")))?);
    }
    if let Some(t) = m.get("health-check-type").and_then(text) {
        let t = if t == "none" {
            "process".to_string()
        } else {
            t
        };
        check_health_type(&t)?;
        process.health_check.kind = t;
    }
    if let Some(e) = m.get("health-check-http-endpoint").and_then(text) {
        process.health_check.data.endpoint = Some(e);
    }
    if let Some(t) = m.get("timeout").and_then(Value::as_u64) {
        process.health_check.data.timeout = Some(t);
    }
    Ok(())
}

/// Applies one app's entry in one store transaction (its record and its
/// bindings change together or, on an error, not at all), then rescales a
/// started app's processes.
async fn apply_app(p: &Arc<Platform>, guid: &str, m: Mapping) -> ApiResult<()> {
    let app = guid.to_string();
    let (started, kinds) =
        blocking(p, move |p| p.transaction(|tx| apply_record(tx, &app, &m))).await?;
    if started {
        for kind in kinds {
            p.rescale(guid, &kind).await?;
        }
    }
    Ok(())
}

/// The app's record and bindings as the entry says; whether the app is
/// started, and its process types.
fn apply_record(tx: &Tx, guid: &str, m: &Mapping) -> ApiResult<(bool, Vec<String>)> {
    let mut rec: AppRec = tx.get(APP, guid)?;
    let kinds = apply_to(&mut rec, m)?;
    if let Some(list) = m.get("services").and_then(Value::as_sequence) {
        let services = tx.all::<ServiceRec>(SERVICE)?;
        let bound = tx.all::<BindingRec>(BINDING)?;
        for s in list {
            let name = text(s)
                .or_else(|| s.get("name").and_then(text))
                .unwrap_or_default();
            let found = services
                .iter()
                .find(|x| x.instance.name == name)
                .ok_or_else(|| {
                    bad(format!(
                        "For application '{}': Service instance '{name}' not found",
                        rec.app.name
                    ))
                })?;
            let sguid = &found.instance.guid;
            if !bound
                .iter()
                .any(|b| b.app_guid == guid && &b.service_guid == sguid)
            {
                bind(tx, guid, sguid, None)?;
            }
        }
    }
    rec.app.updated_at = super::records::now();
    tx.put(APP, guid, &rec)?;
    Ok((rec.app.state == "STARTED", kinds))
}

/// The entry's environment and processes, applied to the app's record;
/// returns the process types it names (`web` always).
fn apply_to(rec: &mut AppRec, m: &Mapping) -> ApiResult<Vec<String>> {
    if let Some(env) = m.get("env") {
        let env = env
            .as_mapping()
            .ok_or_else(|| bad("env must be a mapping".into()))?;
        for (k, v) in env {
            if let Some(k) = text(k) {
                rec.env.insert(k, text(v).unwrap_or_default());
            }
        }
    }
    apply_process(&mut rec.process, m)?;
    let mut kinds = vec!["web".to_string()];
    let Some(list) = m.get("processes").and_then(Value::as_sequence) else {
        return Ok(kinds);
    };
    for entry in list {
        let pm = entry
            .as_mapping()
            .ok_or_else(|| bad("a process must be a mapping".into()))?;
        let kind = pm
            .get("type")
            .and_then(text)
            .ok_or_else(|| bad("a process needs a type".into()))?;
        if kind == "web" {
            apply_process(&mut rec.process, pm)?;
            continue;
        }
        kinds.push(kind.clone());
        if !rec.others.iter().any(|o| o.kind == kind) {
            // CF's default for a process without a route: alive is healthy.
            rec.others.push(v3::Process {
                guid: new_guid(),
                kind: kind.clone(),
                command: None,
                instances: 1,
                health_check: v3::HealthCheck {
                    kind: "process".into(),
                    data: Default::default(),
                },
                memory_in_mb: None,
            });
        }
        let other = rec
            .others
            .iter_mut()
            .find(|o| o.kind == kind)
            .expect("just added");
        apply_process(other, pm)?;
    }
    Ok(kinds)
}
