//! Apps as records: creating one (names are unique in the space), CF's
//! merge semantics for metadata and environment patches, the current
//! droplet, and deleting an app with everything that points at it. What
//! runs for an app is in `run.rs`.

use super::super::records::*;
use super::super::services::unbind_app;
use super::{ApiErr, ApiResult, Platform, Tx, check_name};
use crate::platform::v3;
use serde_json::Value;
use std::collections::BTreeMap;

impl Platform {
    pub fn app(&self, guid: &str) -> ApiResult<AppRec> {
        self.get(APP, guid)
    }

    pub fn create_app(&self, name: &str, env: BTreeMap<String, String>) -> ApiResult<AppRec> {
        self.create_app_with(name, env, v3::Metadata::default())
    }

    /// `POST /v3/apps` with the labels and annotations it may carry, set in
    /// the same write as the app: nobody reads the app without them (the
    /// CF deploy lock is an app created with its lease as an annotation).
    pub fn create_app_with(
        &self,
        name: &str,
        env: BTreeMap<String, String>,
        metadata: v3::Metadata,
    ) -> ApiResult<AppRec> {
        check_name("app", name)?;
        let rec = self.transaction(|tx| {
            // Checked and written in one transaction: two creates of one name
            // cannot both find it free. CF's answer (`AppCreate`): 422
            // CF-UniquenessError, which a client may rely on as a lock.
            if tx.all::<AppRec>(APP)?.iter().any(|a| a.app.name == name) {
                return Err(ApiErr(
                    422,
                    10016,
                    "CF-UniquenessError",
                    format!("App with the name '{name}' already exists."),
                ));
            }
            let mut rec = new_app(name, env);
            merge(&mut rec.app.metadata.labels, metadata.labels);
            merge(&mut rec.app.metadata.annotations, metadata.annotations);
            tx.put(APP, &rec.app.guid, &rec)?;
            Ok(rec)
        })?;
        Ok(rec)
    }

    /// CF merges metadata: a key with a value is set, a key with `null` is
    /// deleted, keys not named stay.
    pub fn update_metadata(&self, guid: &str, changes: Option<v3::Metadata>) -> ApiResult<v3::App> {
        self.update(APP, guid, |rec: &mut AppRec| {
            if let Some(meta) = changes {
                let app = &mut rec.app.metadata;
                merge(&mut app.labels, meta.labels);
                merge(&mut app.annotations, meta.annotations);
            }
            rec.app.updated_at = now();
            Ok(rec.app.clone())
        })
    }

    /// `PATCH environment_variables` with `{"var": {...}}`: set each named
    /// variable, delete those given as `null`; a non-string value is kept as
    /// its JSON text.
    pub fn patch_env(&self, guid: &str, body: Value) -> ApiResult<BTreeMap<String, String>> {
        self.update(APP, guid, |rec: &mut AppRec| {
            let Some(Value::Object(vars)) = body.get("var") else {
                return Err(ApiErr::unprocessable("expected {\"var\": {...}}".into()));
            };
            for (k, v) in vars {
                match v {
                    Value::Null => rec.env.remove(k),
                    Value::String(s) => rec.env.insert(k.clone(), s.clone()),
                    other => rec.env.insert(k.clone(), other.to_string()),
                };
            }
            Ok(rec.env.clone())
        })
    }

    /// Points the app at one of its own droplets (what a start then runs).
    pub fn set_current_droplet(&self, guid: &str, droplet: &str) -> ApiResult<()> {
        self.transaction(|tx| {
            let mut rec: AppRec = tx.get(APP, guid)?;
            let d: DropletRec = tx.get(DROPLET, droplet)?;
            if d.app_guid != guid {
                return Err(ApiErr::unprocessable(format!(
                    "droplet {droplet} belongs to another app"
                )));
            }
            rec.current_droplet = Some(droplet.to_string());
            tx.put(APP, guid, &rec)
        })
    }

    /// Stops the app, then removes it, its route destinations and its
    /// bindings in one transaction.
    pub async fn delete_app(&self, guid: &str) -> ApiResult<()> {
        self.app(guid)?;
        self.supervisor.stop(guid).await;
        self.transaction(|tx| {
            tx.get::<AppRec>(APP, guid)?;
            remove_destinations_to(tx, guid)?;
            unbind_app(tx, guid)?;
            // Its deployments and revisions go with it, as on CF.
            for d in tx.all::<DeploymentRec>(DEPLOYMENT)? {
                if d.app_guid == guid {
                    tx.delete(DEPLOYMENT, &d.guid)?;
                }
            }
            for r in tx.all::<RevisionRec>(REVISION)? {
                if r.app_guid == guid {
                    tx.delete(REVISION, &r.guid)?;
                }
            }
            tx.delete(APP, guid)
        })?;
        self.refresh_routes()?;
        // Its counters and request records go with it.
        self.router.forget(guid);
        Ok(())
    }
}

fn merge(target: &mut BTreeMap<String, Option<String>>, changes: BTreeMap<String, Option<String>>) {
    for (k, v) in changes {
        match v {
            Some(v) => target.insert(k, Some(v)),
            None => target.remove(&k),
        };
    }
}

/// Takes the app off every route it is a destination of.
fn remove_destinations_to(tx: &Tx, app_guid: &str) -> ApiResult<()> {
    for mut route in tx.all::<v3::Route>(ROUTE)? {
        let before = route.destinations.len();
        route.destinations.retain(|d| d.app.guid != app_guid);
        if route.destinations.len() != before {
            tx.put(ROUTE, &route.guid, &route)?;
        }
    }
    Ok(())
}

/// A stopped app with one `web` instance and a port health check, as CF
/// creates one.
fn new_app(name: &str, env: BTreeMap<String, String>) -> AppRec {
    let guid = new_guid();
    AppRec {
        app: v3::App {
            guid: guid.clone(),
            name: name.to_string(),
            state: "STOPPED".into(),
            created_at: now(),
            updated_at: now(),
            relationships: [("space".to_string(), v3::ToOne::to(SPACE_GUID))].into(),
            metadata: v3::Metadata::default(),
        },
        env,
        current_droplet: None,
        process: v3::Process {
            guid,
            kind: "web".into(),
            command: None,
            instances: 1,
            health_check: v3::HealthCheck {
                kind: "port".into(),
                data: Default::default(),
            },
            memory_in_mb: None,
        },
        others: Vec::new(),
    }
}
