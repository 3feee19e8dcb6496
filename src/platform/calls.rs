//! The CF v3 calls a deploy makes, in deploy order (see the CF v3 map in the
//! steering repo's `shared/cf-v3-api.md`), as typed methods on [`CfClient`].

use super::PlatformError;
use super::client::CfClient;
use super::v3;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

pub(super) fn q(v: &str) -> String {
    url_escape(v)
}

/// Percent-encodes a query value (CF filters are comma-separated lists).
fn url_escape(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn first<T>(mut v: Vec<T>) -> Option<T> {
    if v.is_empty() {
        None
    } else {
        Some(v.swap_remove(0))
    }
}

impl CfClient {
    pub async fn find_org(&self, name: &str) -> Result<Option<v3::Named>, PlatformError> {
        Ok(first(
            self.list(&format!("/v3/organizations?names={}", q(name)))
                .await?,
        ))
    }

    pub async fn find_space(
        &self,
        org_guid: &str,
        name: &str,
    ) -> Result<Option<v3::Named>, PlatformError> {
        Ok(first(
            self.list(&format!(
                "/v3/spaces?names={}&organization_guids={}",
                q(name),
                q(org_guid)
            ))
            .await?,
        ))
    }

    pub async fn find_domain(&self, name: &str) -> Result<Option<v3::Named>, PlatformError> {
        Ok(first(
            self.list(&format!("/v3/domains?names={}", q(name))).await?,
        ))
    }

    pub async fn find_app(
        &self,
        space_guid: &str,
        name: &str,
    ) -> Result<Option<v3::App>, PlatformError> {
        Ok(first(
            self.list(&format!(
                "/v3/apps?names={}&space_guids={}",
                q(name),
                q(space_guid)
            ))
            .await?,
        ))
    }

    pub async fn create_app(
        &self,
        space_guid: &str,
        name: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<v3::App, PlatformError> {
        let body = json!({ "name": name, "relationships": { "space": CfClient::to_one(space_guid) }, "environment_variables": env });
        self.post("/v3/apps", &body).await
    }

    pub async fn get_app(&self, guid: &str) -> Result<v3::App, PlatformError> {
        self.get(&format!("/v3/apps/{guid}")).await
    }

    /// Sets (or, with `None`, removes) environment variables.
    pub async fn set_env(
        &self,
        app_guid: &str,
        vars: &BTreeMap<String, Option<String>>,
    ) -> Result<(), PlatformError> {
        let _: Value = self
            .patch(
                &format!("/v3/apps/{app_guid}/environment_variables"),
                &json!({ "var": vars }),
            )
            .await?;
        Ok(())
    }

    pub async fn get_env(&self, app_guid: &str) -> Result<BTreeMap<String, String>, PlatformError> {
        let v: Value = self
            .get(&format!("/v3/apps/{app_guid}/environment_variables"))
            .await?;
        Ok(serde_json::from_value(v["var"].clone()).unwrap_or_default())
    }

    /// Merges labels and annotations (a `None` value deletes the key).
    pub async fn set_metadata(
        &self,
        app_guid: &str,
        metadata: &v3::Metadata,
    ) -> Result<v3::App, PlatformError> {
        self.patch(
            &format!("/v3/apps/{app_guid}"),
            &json!({ "metadata": metadata }),
        )
        .await
    }

    pub async fn delete_app(&self, app_guid: &str, timeout: Duration) -> Result<(), PlatformError> {
        let resp = self
            .request::<()>(Method::DELETE, &format!("/v3/apps/{app_guid}"), None)
            .await?;
        if let Some(location) = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(String::from)
        {
            self.wait_job(&location, timeout).await?;
        }
        Ok(())
    }

    pub async fn find_route(
        &self,
        domain_guid: &str,
        space_guid: &str,
        host: &str,
    ) -> Result<Option<v3::Route>, PlatformError> {
        let path = format!(
            "/v3/routes?hosts={}&domain_guids={}&space_guids={}",
            q(host),
            q(domain_guid),
            q(space_guid)
        );
        Ok(first(self.list(&path).await?))
    }

    pub async fn create_route(
        &self,
        domain_guid: &str,
        space_guid: &str,
        host: &str,
    ) -> Result<v3::Route, PlatformError> {
        let body = json!({ "host": host, "relationships": {
            "space": CfClient::to_one(space_guid), "domain": CfClient::to_one(domain_guid) } });
        self.post("/v3/routes", &body).await
    }

    pub async fn destinations(
        &self,
        route_guid: &str,
    ) -> Result<Vec<v3::Destination>, PlatformError> {
        let d: v3::Destinations = self
            .get(&format!("/v3/routes/{route_guid}/destinations"))
            .await?;
        Ok(d.destinations)
    }

    /// Adds an app's web process to a route; returns the route's destinations.
    pub async fn map_route(
        &self,
        route_guid: &str,
        app_guid: &str,
    ) -> Result<Vec<v3::Destination>, PlatformError> {
        let body = json!({ "destinations": [ { "app": { "guid": app_guid, "process": { "type": "web" } } } ] });
        let d: v3::Destinations = self
            .post(&format!("/v3/routes/{route_guid}/destinations"), &body)
            .await?;
        Ok(d.destinations)
    }

    /// Replaces the route's destinations with these apps, each with its
    /// weight (none: requests spread evenly). The local platform routes by
    /// weight; Cloud Foundry no longer does, so canary steps there scale
    /// instances instead of calling this.
    pub async fn set_destinations(
        &self,
        route_guid: &str,
        apps: &[(&str, Option<u32>)],
    ) -> Result<Vec<v3::Destination>, PlatformError> {
        let destinations: Vec<Value> = apps
            .iter()
            .map(|(guid, weight)| {
                let mut d = json!({ "app": { "guid": guid, "process": { "type": "web" } } });
                if let Some(w) = weight {
                    d["weight"] = json!(w);
                }
                d
            })
            .collect();
        let d: v3::Destinations = self
            .patch(
                &format!("/v3/routes/{route_guid}/destinations"),
                &json!({ "destinations": destinations }),
            )
            .await?;
        Ok(d.destinations)
    }

    /// Removes every destination of `app_guid` from the route.
    pub async fn unmap_route(&self, route_guid: &str, app_guid: &str) -> Result<(), PlatformError> {
        let d: v3::Destinations = self
            .get(&format!(
                "/v3/routes/{route_guid}/destinations?app_guids={}",
                q(app_guid)
            ))
            .await?;
        for dest in d.destinations.iter().filter(|d| d.app.guid == app_guid) {
            self.request::<()>(
                Method::DELETE,
                &format!("/v3/routes/{route_guid}/destinations/{}", dest.guid),
                None,
            )
            .await?;
        }
        Ok(())
    }

    pub async fn create_package(&self, app_guid: &str) -> Result<v3::Package, PlatformError> {
        self.post(
            "/v3/packages",
            &json!({ "type": "bits", "relationships": { "app": CfClient::to_one(app_guid) } }),
        )
        .await
    }

    /// Uploads a zip as the package's bits and waits until it is `READY`.
    pub async fn upload_package(
        &self,
        package_guid: &str,
        zip: &super::package::Zipped,
        timeout: Duration,
    ) -> Result<v3::Package, PlatformError> {
        // Streamed from the file: an app of any size costs no memory here.
        let file = tokio::fs::File::open(zip.path())
            .await
            .map_err(|source| PlatformError::Io {
                path: zip.path().to_path_buf(),
                source,
            })?;
        let part = reqwest::multipart::Part::stream_with_length(file, zip.size)
            .file_name("app.zip")
            .mime_str("application/zip")
            .expect("static mime");
        let form = reqwest::multipart::Form::new().part("bits", part);
        self.upload(
            &format!("/v3/packages/{package_guid}/upload"),
            form,
            timeout,
        )
        .await?;
        let pkg: v3::Package = self
            .wait_for(
                "package upload",
                &format!("/v3/packages/{package_guid}"),
                timeout,
                |p: &v3::Package| matches!(p.state.as_str(), "READY" | "FAILED" | "EXPIRED"),
            )
            .await?;
        if pkg.state != "READY" {
            return Err(PlatformError::Failed {
                what: format!("package {package_guid}"),
                detail: format!("state {}", pkg.state),
            });
        }
        Ok(pkg)
    }

    /// Stages a package; returns the droplet guid.
    pub async fn stage(
        &self,
        package_guid: &str,
        timeout: Duration,
    ) -> Result<String, PlatformError> {
        let build: v3::Build = self
            .post(
                "/v3/builds",
                &json!({ "package": { "guid": package_guid } }),
            )
            .await?;
        let build: v3::Build = self
            .wait_for(
                "staging",
                &format!("/v3/builds/{}", build.guid),
                timeout,
                |b: &v3::Build| b.state != "STAGING",
            )
            .await?;
        match (build.state.as_str(), build.droplet) {
            ("STAGED", Some(d)) => Ok(d.guid),
            _ => Err(PlatformError::Failed {
                what: format!("staging build {}", build.guid),
                detail: build
                    .error
                    .unwrap_or_else(|| format!("state {}", build.state)),
            }),
        }
    }

    /// Copies a droplet to another app (`POST /v3/droplets?source_guid=`), so
    /// the second color runs exactly what the first was staged with.
    pub async fn copy_droplet(
        &self,
        source_guid: &str,
        app_guid: &str,
        timeout: Duration,
    ) -> Result<String, PlatformError> {
        let d: v3::Droplet = self
            .post(
                &format!("/v3/droplets?source_guid={}", q(source_guid)),
                &json!({ "relationships": { "app": CfClient::to_one(app_guid) } }),
            )
            .await?;
        let d: v3::Droplet = self
            .wait_for(
                "droplet copy",
                &format!("/v3/droplets/{}", d.guid),
                timeout,
                |d: &v3::Droplet| d.state != "COPYING" && d.state != "PROCESSING_UPLOAD",
            )
            .await?;
        if d.state != "STAGED" {
            return Err(PlatformError::Failed {
                what: format!("copying droplet {source_guid}"),
                detail: format!("state {}", d.state),
            });
        }
        Ok(d.guid)
    }

    /// The app's droplets, newest first.
    pub async fn droplets(&self, app_guid: &str) -> Result<Vec<v3::Droplet>, PlatformError> {
        self.list(&format!(
            "/v3/apps/{app_guid}/droplets?order_by=-created_at"
        ))
        .await
    }

    /// The app's current droplet, if any. Read through
    /// `/v3/apps/:guid/droplets/current` (CF, Korifi and the local platform
    /// serve it; Korifi has no GET of the relationship), where "none" is a
    /// 404.
    pub async fn current_droplet(&self, app_guid: &str) -> Result<Option<String>, PlatformError> {
        match self
            .get::<v3::Droplet>(&format!("/v3/apps/{app_guid}/droplets/current"))
            .await
        {
            Ok(d) => Ok(Some(d.guid)),
            Err(PlatformError::Api {
                status: 404,
                code: 10010,
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn set_current_droplet(
        &self,
        app_guid: &str,
        droplet_guid: &str,
    ) -> Result<(), PlatformError> {
        let _: v3::ToOne = self
            .patch(
                &format!("/v3/apps/{app_guid}/relationships/current_droplet"),
                &CfClient::to_one(droplet_guid),
            )
            .await?;
        Ok(())
    }

    /// `start`, `stop` or `restart`.
    pub async fn app_action(&self, app_guid: &str, action: &str) -> Result<v3::App, PlatformError> {
        self.post(&format!("/v3/apps/{app_guid}/actions/{action}"), &json!({}))
            .await
    }

    pub async fn web_process(&self, app_guid: &str) -> Result<v3::Process, PlatformError> {
        self.get(&format!("/v3/apps/{app_guid}/processes/web"))
            .await
    }

    /// Every process type of the app (`web`, `worker`, ...).
    pub async fn processes(&self, app_guid: &str) -> Result<Vec<v3::Process>, PlatformError> {
        self.list(&format!("/v3/apps/{app_guid}/processes")).await
    }

    pub async fn scale_process(
        &self,
        process_guid: &str,
        instances: u32,
    ) -> Result<v3::Process, PlatformError> {
        self.post(
            &format!("/v3/processes/{process_guid}/actions/scale"),
            &json!({ "instances": instances }),
        )
        .await
    }

    pub async fn update_process(
        &self,
        process_guid: &str,
        command: Option<&str>,
        health: Option<&v3::HealthCheck>,
    ) -> Result<v3::Process, PlatformError> {
        let mut body = json!({});
        if let Some(c) = command {
            body["command"] = c.into();
        }
        if let Some(h) = health {
            body["health_check"] = serde_json::to_value(h).expect("serializable");
        }
        self.patch(&format!("/v3/processes/{process_guid}"), &body)
            .await
    }

    pub async fn process_stats(
        &self,
        process_guid: &str,
    ) -> Result<Vec<v3::ProcessStats>, PlatformError> {
        let v: Value = self
            .get(&format!("/v3/processes/{process_guid}/stats"))
            .await?;
        serde_json::from_value(v["resources"].clone()).map_err(|e| PlatformError::Failed {
            what: "process stats".into(),
            detail: e.to_string(),
        })
    }

    /// Runs a one-off task and waits for it; an error says why it failed.
    pub async fn run_task(
        &self,
        app_guid: &str,
        command: &str,
        timeout: Duration,
    ) -> Result<v3::Task, PlatformError> {
        self.run_task_on(app_guid, None, command, timeout).await
    }

    /// As `run_task`, on `droplet` of the app when given (CC's
    /// `droplet_guid`), not its current one.
    pub async fn run_task_on(
        &self,
        app_guid: &str,
        droplet: Option<&str>,
        command: &str,
        timeout: Duration,
    ) -> Result<v3::Task, PlatformError> {
        let mut body = json!({ "command": command });
        if let Some(d) = droplet {
            body["droplet_guid"] = json!(d);
        }
        let task: v3::Task = self
            .post(&format!("/v3/apps/{app_guid}/tasks"), &body)
            .await?;
        let task: v3::Task = self
            .wait_for(
                "task",
                &format!("/v3/tasks/{}", task.guid),
                timeout,
                |t: &v3::Task| matches!(t.state.as_str(), "SUCCEEDED" | "FAILED"),
            )
            .await?;
        if task.state == "FAILED" {
            return Err(PlatformError::Failed {
                what: format!("task `{command}`"),
                detail: task
                    .result
                    .failure_reason
                    .clone()
                    .unwrap_or_else(|| "no reason given".into()),
            });
        }
        Ok(task)
    }

    pub async fn find_service_instance(
        &self,
        space_guid: &str,
        name: &str,
    ) -> Result<Option<v3::ServiceInstance>, PlatformError> {
        Ok(first(
            self.list(&format!(
                "/v3/service_instances?names={}&space_guids={}",
                q(name),
                q(space_guid)
            ))
            .await?,
        ))
    }

    /// Binds a service instance to an app unless it is bound already; true
    /// if this made the binding. A managed instance answers 202 and a job,
    /// a user-provided one 201. The app sees it at its next (re)start.
    pub async fn bind_service(
        &self,
        instance_guid: &str,
        app_guid: &str,
        timeout: Duration,
    ) -> Result<bool, PlatformError> {
        let existing: Vec<v3::ServiceCredentialBinding> = self
            .list(&format!(
                "/v3/service_credential_bindings?type=app&app_guids={}&service_instance_guids={}",
                q(app_guid),
                q(instance_guid)
            ))
            .await?;
        if !existing.is_empty() {
            return Ok(false);
        }
        let body = json!({
            "type": "app",
            "relationships": {
                "service_instance": CfClient::to_one(instance_guid),
                "app": CfClient::to_one(app_guid),
            },
        });
        let resp = self
            .request(Method::POST, "/v3/service_credential_bindings", Some(&body))
            .await?;
        if resp.status() == reqwest::StatusCode::ACCEPTED
            && let Some(location) = resp
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(String::from)
        {
            self.wait_job(&location, timeout).await?;
        }
        Ok(true)
    }

    /// Local platform only: requests in flight through the router to an app.
    pub async fn inflight(&self, app_guid: &str) -> Result<u64, PlatformError> {
        let v: Value = self
            .get(&format!("/bluegreen/v1/apps/{app_guid}/inflight"))
            .await?;
        Ok(v["inflight"].as_u64().unwrap_or(0))
    }

    /// Local platform only: the end of an app's log (the output of its
    /// processes and tasks, and the platform's lines about them), at most
    /// `cap` bytes of it, from a line's start.
    pub async fn app_log(&self, app_guid: &str, cap: usize) -> Result<String, PlatformError> {
        let path = format!("/bluegreen/v1/apps/{app_guid}/logs");
        let mut resp = self.request::<()>(Method::GET, &path, None).await?;
        let mut kept: Vec<u8> = Vec::new();
        let mut cut = false;
        loop {
            let chunk = resp.chunk().await.map_err(|e| PlatformError::Http {
                method: "GET".into(),
                url: path.clone(),
                message: format!("reading the log: {}", super::trust::describe(e)),
            })?;
            let Some(chunk) = chunk else { break };
            kept.extend_from_slice(&chunk);
            if kept.len() > 2 * cap {
                kept.drain(..kept.len() - cap);
                cut = true;
            }
        }
        if kept.len() > cap {
            kept.drain(..kept.len() - cap);
            cut = true;
        }
        let text = String::from_utf8_lossy(&kept);
        // A line cut at its start is dropped whole.
        Ok(match (cut, text.find('\n')) {
            (true, Some(i)) => text[i + 1..].to_string(),
            _ => text.into_owned(),
        })
    }

    /// Local platform only: what the router counted for an app so far
    /// (status classes, latency histogram); a window is two snapshots' difference.
    pub async fn traffic(
        &self,
        app_guid: &str,
    ) -> Result<crate::platform::traffic::Snapshot, PlatformError> {
        self.get(&format!("/bluegreen/v1/apps/{app_guid}/traffic"))
            .await
    }
}
