//! What runs for an app: its processes started, stopped and rescaled by the
//! supervisor, its tasks, its log, and after a daemon restart everything
//! that was started. The supervisor's work happens outside any store
//! transaction (it awaits); the state it leaves is written with `update`,
//! so a change made meanwhile (a metadata patch, say) is kept.

use super::super::records::*;
use super::super::supervisor::RunSpec;
use super::{ApiErr, ApiResult, Platform};
use crate::platform::v3;
use std::sync::Arc;

impl Platform {
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
        // Fail closed: nothing bound to a service that is not up and ours
        // starts (the supervisor checks again before every start).
        let gates = self.gates(&rec.app.guid)?;
        let what = match process {
            Some(p) => format!("app {} ({})", rec.app.name, p.kind),
            None => format!("a task of app {}", rec.app.name),
        };
        for gate in &gates {
            gate.check(&what).map_err(ApiErr::unprocessable)?;
        }
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
            gates,
            droplet: droplet_guid.to_string(),
            generation: String::new(),
        })
    }

    /// What a new `web` instance of the app runs now: its current droplet,
    /// environment and command (a rollout's instances, `rollout.rs`).
    pub(in crate::platform::local) fn web_spec(&self, rec: &AppRec) -> ApiResult<RunSpec> {
        self.run_spec(rec, Some(&rec.process), None)
    }

    /// Stops and starts again the instances of one process type of a
    /// started app, on its current droplet (a finished deployment restarts
    /// the app's other processes, as CF's does).
    pub async fn restart_kind(&self, guid: &str, kind: &str) -> ApiResult<()> {
        self.supervisor.scale_down(guid, kind, 0).await;
        self.rescale(guid, kind).await
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
        let rec = self.app(guid)?;
        let state = match action {
            "start" | "restart" => {
                let specs = self.run_specs(&rec)?;
                self.supervisor.start_app(guid, specs).await;
                "STARTED"
            }
            "stop" => {
                self.supervisor.stop(guid).await;
                "STOPPED"
            }
            _ => return Err(ApiErr::not_found("action")),
        };
        self.update(APP, guid, |rec: &mut AppRec| {
            rec.app.state = state.into();
            rec.app.updated_at = now();
            Ok(rec.clone())
        })
    }

    /// Runs a task to completion in the background; its record tracks it.
    pub fn start_task(
        self: &Arc<Self>,
        app_guid: &str,
        command: &str,
        name: Option<String>,
        droplet: Option<String>,
    ) -> ApiResult<v3::Task> {
        let mut rec = self.app(app_guid)?;
        if let Some(d) = droplet {
            let of_app = self
                .transaction(|tx| tx.find::<DropletRec>(DROPLET, &d))?
                .is_some_and(|r| r.app_guid == rec.app.guid);
            if !of_app {
                return Err(ApiErr::unprocessable(
                    "The droplet does not exist or belongs to another app".into(),
                ));
            }
            rec.current_droplet = Some(d);
        }
        let spec = self.run_spec(&rec, None, Some(command))?;
        let task = self.transaction(|tx| {
            let seq = tx.next(&format!("task:{app_guid}"))?;
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
            let rec = TaskRec {
                task: task.clone(),
                app_guid: app_guid.into(),
            };
            tx.put(TASK, &guid, &rec)?;
            Ok(task)
        })?;
        let me = self.clone();
        let (guid, name) = (task.guid.clone(), task.name.clone());
        tokio::spawn(async move {
            let failure = me.supervisor.run_task(&spec, &name, me.task_timeout).await;
            let _ = me.update(TASK, &guid, |rec: &mut TaskRec| {
                rec.task.state = if failure.is_none() {
                    "SUCCEEDED"
                } else {
                    "FAILED"
                }
                .into();
                rec.task.result.failure_reason = failure;
                Ok(())
            });
        });
        Ok(task)
    }

    /// The app's log so far (blocking: read it off the async workers).
    pub fn logs(&self, guid: &str) -> ApiResult<String> {
        self.app(guid)?;
        Ok(std::fs::read_to_string(self.supervisor.log_path(guid)).unwrap_or_default())
    }

    /// After a daemon restart: start what was started, restore routes.
    pub async fn restore(&self) -> ApiResult<()> {
        // Services first: apps bound to a database expect it at start.
        self.start_services();
        self.refresh_routes()?;
        // A rollout does not outlive the daemon (`state/deployments.rs`).
        for name in self.cancel_interrupted_deployments()? {
            crate::output::write_stderr(&format!(
                "app {name}: its deployment was active when the platform stopped; canceled, \
                 back on its previous droplet\n"
            ));
        }
        for rec in self.all::<AppRec>(APP)? {
            if rec.app.state != "STARTED" {
                continue;
            }
            match self.run_specs(&rec) {
                Ok(specs) => self.supervisor.start_app(&rec.app.guid, specs).await,
                // Said where its team looks (its log) and where the operator does.
                Err(e) => {
                    let line = format!("[bluegreen] app {} not started: {}", rec.app.name, e.3);
                    super::super::supervisor::append_log(
                        &self.supervisor.log_path(&rec.app.guid),
                        &line,
                    );
                    crate::output::write_stderr(&format!("{line}\n"));
                }
            }
        }
        Ok(())
    }
}
