//! Backing services on the local platform, in Cloud Foundry's shape: a
//! service instance (a real PostgreSQL, see `postgres.rs`) that apps bind,
//! and bindings that reach each bound app as `VCAP_SERVICES` and
//! `DATABASE_URL`, so an app written for CF runs here unchanged.
//!
//! Their HTTP endpoints are in `service_api.rs`; binding is here, with the
//! check that an app is bound once and the write in one transaction.

use super::pg_check::Gate;
use super::postgres;
use super::records::{APP, AppRec, SPACE_GUID, new_guid, now};
use super::state::{ApiErr, ApiResult, Platform, Tx};
use crate::platform::v3;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

pub const SERVICE: &str = "service";
pub const BINDING: &str = "binding";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceRec {
    pub instance: v3::ServiceInstance,
    /// `postgres`, the one type there is.
    pub kind: String,
    pub port: u16,
    pub password: String,
    pub database: String,
    pub dir: PathBuf,
    pub created_at: String,
}

impl ServiceRec {
    /// What a process bound to this service checks before it starts.
    pub fn gate(&self) -> Gate {
        Gate {
            service: self.instance.name.clone(),
            dir: self.dir.clone(),
            port: self.port,
        }
    }

    /// CF's credentials block, as a postgres broker writes it (the URI with
    /// `require_auth` where libpq has it: see `postgres::client_options`).
    pub fn credentials(&self) -> Value {
        let (user, pw, port, db) = (postgres::USER, &self.password, self.port, &self.database);
        json!({
            "uri": format!(
                "postgres://{user}:{pw}@127.0.0.1:{port}/{db}{}",
                postgres::client_options()
            ),
            "jdbcUrl": format!("jdbc:postgresql://127.0.0.1:{port}/{db}?user={user}&password={pw}"),
            "hostname": "127.0.0.1",
            "port": port,
            "username": user,
            "password": pw,
            "name": db,
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BindingRec {
    pub binding: v3::ServiceCredentialBinding,
    pub app_guid: String,
    pub service_guid: String,
}

/// Serializes creating and deleting services (each takes seconds).
static SERVICES: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Platform {
    pub fn service_named(&self, name: &str) -> ApiResult<ServiceRec> {
        self.all::<ServiceRec>(SERVICE)?
            .into_iter()
            .find(|s| s.instance.name == name)
            .ok_or_else(|| ApiErr::not_found("Service instance"))
    }

    /// Creates and starts a service (blocking: initdb takes a second or two).
    pub fn create_service(&self, name: &str, kind: &str) -> ApiResult<ServiceRec> {
        let _guard = SERVICES.lock().unwrap();
        super::state::check_name("service", name)?;
        if kind != "postgres" {
            return Err(ApiErr::unprocessable(format!(
                "service type `{kind}` is not offered; the local platform has `postgres`"
            )));
        }
        if self.service_named(name).is_ok() {
            return Err(ApiErr::unprocessable(format!(
                "The service instance name is taken: {name}"
            )));
        }
        let dir = self.dir.join("services").join(name);
        if dir.exists() {
            return Err(ApiErr::unprocessable(format!(
                "{} exists but no service is recorded for it; remove it first",
                dir.display()
            )));
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ApiErr::internal(format!("{}: {e}", dir.display())))?;
        let password = uuid::Uuid::new_v4().simple().to_string();
        let database = name.replace('-', "_");
        let mut port = 0;
        let made = postgres::init(&dir, &password)
            .and_then(|()| {
                // A free port can be taken by another program before the
                // server binds it (initdb takes seconds; a CI run at 8 tests
                // at a time met it): a new service just takes another one.
                for attempt in 1.. {
                    port = super::supervisor::free_port();
                    match postgres::start(&dir, port) {
                        Err(e) if attempt < 3 && e.contains(postgres::PORT_IN_USE) => {}
                        started => return started,
                    }
                }
                unreachable!("the third attempt returns")
            })
            .and_then(|()| postgres::create_database(port, &password, &database));
        if let Err(e) = made {
            let _ = postgres::stop(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ApiErr::unprocessable(format!(
                "creating service {name}: {e}"
            )));
        }
        let guid = new_guid();
        let rec = ServiceRec {
            instance: v3::ServiceInstance {
                guid: guid.clone(),
                name: name.into(),
                kind: "managed".into(),
                relationships: [("space".to_string(), v3::ToOne::to(SPACE_GUID))].into(),
            },
            kind: kind.into(),
            port,
            password,
            database,
            dir,
            created_at: now(),
        };
        self.put(SERVICE, &guid, &rec)?;
        Ok(rec)
    }

    /// Stops a service and deletes its data; refused while apps are bound.
    pub fn delete_service(&self, name: &str) -> ApiResult<()> {
        let _guard = SERVICES.lock().unwrap();
        let rec = self.service_named(name)?;
        let bound: Vec<String> = self
            .all::<BindingRec>(BINDING)?
            .into_iter()
            .filter(|b| b.service_guid == rec.instance.guid)
            .filter_map(|b| self.app(&b.app_guid).ok().map(|a| a.app.name))
            .collect();
        if !bound.is_empty() {
            return Err(ApiErr::unprocessable(format!(
                "service {name} is bound to {}; delete those apps first",
                bound.join(", ")
            )));
        }
        postgres::stop(&rec.dir).map_err(ApiErr::internal)?;
        std::fs::remove_dir_all(&rec.dir)
            .map_err(|e| ApiErr::internal(format!("{}: {e}", rec.dir.display())))?;
        self.delete(SERVICE, &rec.instance.guid)
    }

    /// Starts every service (at daemon start); a failure is logged, not fatal:
    /// the apps bound to it will say what they miss.
    pub fn start_services(&self) {
        for rec in self.all::<ServiceRec>(SERVICE).unwrap_or_default() {
            if let Err(e) = postgres::start(&rec.dir, rec.port) {
                crate::output::write_stderr(&format!("service {}: {e}\n", rec.instance.name));
            }
        }
    }

    pub fn stop_services(&self) {
        for rec in self.all::<ServiceRec>(SERVICE).unwrap_or_default() {
            if let Err(e) = postgres::stop(&rec.dir) {
                crate::output::write_stderr(&format!("service {}: {e}\n", rec.instance.name));
            }
        }
    }

    /// The services bound to an app, as checks to pass before any of its
    /// processes or tasks start.
    pub fn gates(&self, app_guid: &str) -> ApiResult<Vec<Gate>> {
        let mut gates = Vec::new();
        for b in self.all::<BindingRec>(BINDING)? {
            if b.app_guid == app_guid
                && let Ok(s) = self.get::<ServiceRec>(SERVICE, &b.service_guid)
            {
                gates.push(s.gate());
            }
        }
        Ok(gates)
    }

    /// What an app's bindings put in its environment: `VCAP_SERVICES`, and
    /// `DATABASE_URL` from the first bound database (as CF buildpacks do).
    pub fn binding_env(&self, app_guid: &str) -> ApiResult<BTreeMap<String, String>> {
        let mut vcap: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        let mut env = BTreeMap::new();
        for b in self.all::<BindingRec>(BINDING)? {
            if b.app_guid != app_guid {
                continue;
            }
            let Ok(s) = self.get::<ServiceRec>(SERVICE, &b.service_guid) else {
                continue;
            };
            let credentials = s.credentials();
            if let Some(uri) = credentials["uri"].as_str() {
                env.entry("DATABASE_URL".to_string())
                    .or_insert_with(|| uri.to_string());
            }
            vcap.entry(s.kind.clone()).or_default().push(json!({
                "name": s.instance.name,
                "instance_name": s.instance.name,
                "instance_guid": s.instance.guid,
                "binding_guid": b.binding.guid,
                "binding_name": b.binding.name,
                "label": s.kind,
                "plan": "local",
                "provider": null,
                "syslog_drain_url": null,
                "tags": ["postgres", "postgresql", "relational"],
                "volume_mounts": [],
                "credentials": credentials,
            }));
        }
        if !vcap.is_empty() {
            env.insert("VCAP_SERVICES".into(), json!(vcap).to_string());
        }
        Ok(env)
    }

    /// Binds a service instance to an app (once: a second binding is
    /// refused, as on CF).
    pub fn bind(
        &self,
        app_guid: &str,
        service_guid: &str,
        name: Option<String>,
    ) -> ApiResult<v3::ServiceCredentialBinding> {
        self.transaction(|tx| bind(tx, app_guid, service_guid, name))
    }
}

/// `Platform::bind` within a wider transaction (a manifest's).
pub fn bind(
    tx: &Tx,
    app_guid: &str,
    service_guid: &str,
    name: Option<String>,
) -> ApiResult<v3::ServiceCredentialBinding> {
    tx.get::<AppRec>(APP, app_guid)?;
    tx.get::<ServiceRec>(SERVICE, service_guid)?;
    if tx
        .all::<BindingRec>(BINDING)?
        .iter()
        .any(|b| b.app_guid == app_guid && b.service_guid == service_guid)
    {
        return Err(ApiErr::unprocessable(
            "The app is already bound to the service instance.".into(),
        ));
    }
    let guid = new_guid();
    let binding = v3::ServiceCredentialBinding {
        guid: guid.clone(),
        kind: "app".into(),
        name,
        relationships: [
            ("app".to_string(), v3::ToOne::to(app_guid)),
            ("service_instance".to_string(), v3::ToOne::to(service_guid)),
        ]
        .into(),
    };
    let rec = BindingRec {
        binding: binding.clone(),
        app_guid: app_guid.into(),
        service_guid: service_guid.into(),
    };
    tx.put(BINDING, &guid, &rec)?;
    Ok(binding)
}

/// Removes an app's bindings (when the app is deleted).
pub fn unbind_app(tx: &Tx, app_guid: &str) -> ApiResult<()> {
    for b in tx.all::<BindingRec>(BINDING)? {
        if b.app_guid == app_guid {
            tx.delete(BINDING, &b.binding.guid)?;
        }
    }
    Ok(())
}
