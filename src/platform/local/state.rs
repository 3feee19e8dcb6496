//! The local platform's operations on its state: the v3 semantics (apps,
//! packages, staging, droplets, processes, tasks, routes) over the store, the
//! supervisor and the router. The HTTP layer in `api.rs` only translates.

use super::records::*;
use super::router::{DOMAIN, Router, Table};
use super::store::Store;
use super::supervisor::{RunSpec, Supervisor};
use crate::platform::v3;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// A v3 error: HTTP status, CF code and title, detail.
#[derive(Debug)]
pub struct ApiErr(pub u16, pub u64, pub &'static str, pub String);

impl ApiErr {
    pub fn not_found(what: &str) -> ApiErr {
        ApiErr(
            404,
            10010,
            "CF-ResourceNotFound",
            format!("{what} not found"),
        )
    }

    pub fn unprocessable(detail: String) -> ApiErr {
        ApiErr(422, 10008, "CF-UnprocessableEntity", detail)
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiErr {
        ApiErr(500, 10001, "CF-ServerError", e.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiErr>;

pub struct Platform {
    pub store: Mutex<Store>,
    pub supervisor: Supervisor,
    pub router: Router,
    pub dir: PathBuf,
    pub api_url: String,
    pub router_port: u16,
    pub task_timeout: Duration,
    /// The largest package upload accepted, in bytes.
    pub max_upload: u64,
    /// Test-only fault injection (off unless the daemon's environment asks).
    pub faults: super::faults::Faults,
}

impl Platform {
    pub fn get<T: serde::de::DeserializeOwned>(&self, kind: &str, guid: &str) -> ApiResult<T> {
        self.store
            .lock()
            .unwrap()
            .get(kind, guid)
            .map_err(ApiErr::internal)?
            .ok_or_else(|| ApiErr::not_found(&kind.replace('_', " ")))
    }

    pub fn all<T: serde::de::DeserializeOwned>(&self, kind: &str) -> ApiResult<Vec<T>> {
        self.store
            .lock()
            .unwrap()
            .all(kind)
            .map_err(ApiErr::internal)
    }

    pub fn put<T: serde::Serialize>(&self, kind: &str, guid: &str, v: &T) -> ApiResult<()> {
        self.store
            .lock()
            .unwrap()
            .put(kind, guid, v)
            .map_err(ApiErr::internal)
    }

    pub fn delete(&self, kind: &str, guid: &str) -> ApiResult<()> {
        self.store
            .lock()
            .unwrap()
            .delete(kind, guid)
            .map_err(ApiErr::internal)
    }

    pub fn app(&self, guid: &str) -> ApiResult<AppRec> {
        self.get(APP, guid)
    }

    pub fn create_app(&self, name: &str, env: BTreeMap<String, String>) -> ApiResult<AppRec> {
        check_name("app", name)?;
        if self.all::<AppRec>(APP)?.iter().any(|a| a.app.name == name) {
            return Err(ApiErr::unprocessable(format!(
                "App with the name '{name}' already exists."
            )));
        }
        let guid = new_guid();
        let rec = AppRec {
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
                guid: guid.clone(),
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
        };
        self.put(APP, &guid, &rec)?;
        self.refresh_routes()?;
        Ok(rec)
    }

    pub async fn delete_app(&self, guid: &str) -> ApiResult<()> {
        self.app(guid)?;
        self.supervisor.stop(guid).await;
        let routes: Vec<v3::Route> = self.all(ROUTE)?;
        for mut route in routes {
            let before = route.destinations.len();
            route.destinations.retain(|d| d.app.guid != guid);
            if route.destinations.len() != before {
                self.put(ROUTE, &route.guid.clone(), &route)?;
            }
        }
        self.unbind_app(guid)?;
        self.store
            .lock()
            .unwrap()
            .delete(APP, guid)
            .map_err(ApiErr::internal)?;
        self.refresh_routes()
    }

    /// Unpacks an uploaded package into a new droplet (kept for rollback,
    /// see `retention`).
    pub fn stage(&self, package_guid: &str) -> ApiResult<BuildRec> {
        let pkg: PackageRec = self.get(PACKAGE, package_guid)?;
        if pkg.package.state != "READY" {
            return Err(ApiErr::unprocessable(format!(
                "package {package_guid} is {}, not READY",
                pkg.package.state
            )));
        }
        let build_guid = new_guid();
        let droplet_guid = new_guid();
        let dir = self.dir.join("droplets").join(&droplet_guid);
        let staged = super::staging::unpack(&pkg.zip, &dir);
        let mut build = v3::Build {
            guid: build_guid.clone(),
            state: "STAGED".into(),
            error: None,
            package: Some(v3::Guid {
                guid: package_guid.into(),
            }),
            droplet: Some(v3::Guid {
                guid: droplet_guid.clone(),
            }),
            created_at: now(),
        };
        match staged {
            Ok(process_types) => {
                let droplet = v3::Droplet {
                    guid: droplet_guid.clone(),
                    state: "STAGED".into(),
                    process_types,
                    created_at: now(),
                    metadata: Default::default(),
                };
                self.put(
                    DROPLET,
                    &droplet_guid,
                    &DropletRec {
                        droplet,
                        app_guid: pkg.app_guid.clone(),
                        dir,
                    },
                )?;
                // The droplet holds the files now; the zip would only fill the
                // disk (CF, too, expires a package's bits).
                let _ = std::fs::remove_file(&pkg.zip);
                let mut expired = pkg.clone();
                expired.package.state = "EXPIRED".into();
                self.put(PACKAGE, package_guid, &expired)?;
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                build.state = "FAILED".into();
                build.error = Some(format!("StagingError - {e}"));
                build.droplet = None;
            }
        }
        let rec = BuildRec {
            build,
            app_guid: pkg.app_guid,
        };
        self.put(BUILD, &build_guid, &rec)?;
        self.prune(&rec.app_guid)?;
        Ok(rec)
    }

    /// What to run for `process` of the app (`None`: a task running
    /// `command`).
    fn run_spec(
        &self,
        rec: &AppRec,
        process: Option<&v3::Process>,
        command: Option<&str>,
    ) -> ApiResult<RunSpec> {
        let droplet_guid = rec.current_droplet.as_deref().ok_or_else(|| {
            ApiErr::unprocessable(format!("app {} has no current droplet", rec.app.name))
        })?;
        let droplet: DropletRec = self.get(DROPLET, droplet_guid)?;
        let kind = process.map(|p| p.kind.as_str()).unwrap_or("web");
        let command = command
            .map(String::from)
            .or_else(|| process.and_then(|p| p.command.clone()))
            .or_else(|| droplet.droplet.process_types.get(kind).cloned())
            .ok_or_else(|| {
                ApiErr::unprocessable(format!(
                    "app {} has no start command for its `{kind}` process: set the process command or add a Procfile line",
                    rec.app.name
                ))
            })?;
        // Bindings first, so the app's own variables win (as on CF, where a
        // buildpack derives DATABASE_URL only when the app did not set it).
        let mut env = self.binding_env(&rec.app.guid)?;
        env.extend(rec.env.clone());
        env.insert("BLUEGREEN_APP_NAME".into(), rec.app.name.clone());
        let health = process.map(|p| p.health_check.clone()).unwrap_or_default();
        Ok(RunSpec {
            app_guid: rec.app.guid.clone(),
            app_name: rec.app.name.clone(),
            command,
            dir: droplet.dir,
            env,
            health_check: health.kind,
            endpoint: health.data.endpoint,
            kind: process
                .map(|p| p.kind.clone())
                .unwrap_or_else(|| "task".into()),
            index: 0,
        })
    }

    /// One spec per instance of each process type.
    fn run_specs(&self, rec: &AppRec) -> ApiResult<Vec<RunSpec>> {
        let mut specs = Vec::new();
        for p in rec.processes() {
            if p.instances == 0 {
                continue;
            }
            let spec = self.run_spec(rec, Some(p), None)?;
            for index in 0..p.instances {
                specs.push(RunSpec {
                    index,
                    ..spec.clone()
                });
            }
        }
        Ok(specs)
    }

    /// Brings one process type of a started app to its instance count: new
    /// instances start, extra ones stop, the rest keep running.
    pub async fn rescale(&self, guid: &str, kind: &str) -> ApiResult<()> {
        let rec = self.app(guid)?;
        let Some(process) = rec.processes().find(|p| p.kind == kind).cloned() else {
            return Ok(());
        };
        self.supervisor
            .scale_down(guid, kind, process.instances)
            .await;
        if process.instances > 0 {
            let spec = self.run_spec(&rec, Some(&process), None)?;
            let specs = (0..process.instances)
                .map(|index| RunSpec {
                    index,
                    ..spec.clone()
                })
                .collect();
            self.supervisor.start_missing(specs);
        }
        Ok(())
    }

    pub async fn set_state(&self, guid: &str, action: &str) -> ApiResult<AppRec> {
        let mut rec = self.app(guid)?;
        match action {
            "start" | "restart" => {
                let specs = self.run_specs(&rec)?;
                self.supervisor.start_app(guid, specs).await;
                rec.app.state = "STARTED".into();
            }
            "stop" => {
                self.supervisor.stop(guid).await;
                rec.app.state = "STOPPED".into();
            }
            _ => return Err(ApiErr::not_found("action")),
        }
        rec.app.updated_at = now();
        self.put(APP, guid, &rec)?;
        Ok(rec)
    }

    /// Runs a task to completion in the background; its record tracks it.
    pub fn start_task(
        self: &std::sync::Arc<Self>,
        app_guid: &str,
        command: &str,
        name: Option<String>,
    ) -> ApiResult<v3::Task> {
        let rec = self.app(app_guid)?;
        let spec = self.run_spec(&rec, None, Some(command))?;
        let seq = self
            .store
            .lock()
            .unwrap()
            .next(&format!("task:{app_guid}"))
            .map_err(ApiErr::internal)?;
        let guid = new_guid();
        let task = v3::Task {
            guid: guid.clone(),
            sequence_id: seq,
            name: name.unwrap_or_else(|| format!("task-{seq}")),
            command: Some(command.to_string()),
            state: "RUNNING".into(),
            droplet_guid: rec.current_droplet.clone(),
            result: Default::default(),
        };
        self.put(
            TASK,
            &guid,
            &TaskRec {
                task: task.clone(),
                app_guid: app_guid.into(),
            },
        )?;
        let me = self.clone();
        tokio::spawn(async move {
            let failure = me
                .supervisor
                .run_task(&spec, &task_name(&me, &guid), me.task_timeout)
                .await;
            if let Ok(mut rec) = me.get::<TaskRec>(TASK, &guid) {
                rec.task.state = if failure.is_none() {
                    "SUCCEEDED"
                } else {
                    "FAILED"
                }
                .into();
                rec.task.result.failure_reason = failure;
                let _ = me.put(TASK, &guid, &rec);
            }
        });
        Ok(task)
    }

    /// Rebuilds the router's table from apps and routes and swaps it in.
    pub fn refresh_routes(&self) -> ApiResult<()> {
        let mut table = Table::default();
        for rec in self.all::<AppRec>(APP)? {
            table
                .0
                .insert(format!("{}.{DOMAIN}", rec.app.name), vec![rec.app.guid]);
        }
        for route in self.all::<v3::Route>(ROUTE)? {
            let apps = route
                .destinations
                .iter()
                .map(|d| d.app.guid.clone())
                .collect();
            table.0.insert(format!("{}.{DOMAIN}", route.host), apps);
        }
        self.router.set_table(table);
        Ok(())
    }

    /// After a daemon restart: start what was started, restore routes.
    pub async fn restore(&self) -> ApiResult<()> {
        // Services first: apps bound to a database expect it at start.
        self.start_services();
        self.refresh_routes()?;
        for rec in self.all::<AppRec>(APP)? {
            if rec.app.state == "STARTED"
                && let Ok(specs) = self.run_specs(&rec)
            {
                self.supervisor.start_app(&rec.app.guid, specs).await;
            }
        }
        Ok(())
    }
}

/// App and service names: they become host names and directory names.
pub fn check_name(what: &str, name: &str) -> ApiResult<()> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(ApiErr::unprocessable(format!(
            "{what} name `{name}` must be letters, digits and dashes"
        )));
    }
    Ok(())
}

fn task_name(p: &Platform, guid: &str) -> String {
    p.get::<TaskRec>(TASK, guid)
        .map(|t| t.task.name)
        .unwrap_or_default()
}
