//! Cloud Foundry's own deployments (CAPI 3.173+): the calls a native
//! deploy makes (`POST /v3/deployments`, its `continue` and `cancel`
//! actions, an app's revisions) and what it reads of a deployment, in the
//! published shapes (`DeploymentPresenter`, `shared/cf-v3-api.md`). And
//! whether a foundation can run them the way bluegreen drives them: a
//! Cloud Controller old enough to lack canary steps, or Korifi (which takes
//! no deployment options), cannot, and the deploy falls back to two colors.

use super::PlatformError;
use super::client::CfClient;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The first Cloud Controller whose deployments take canary steps and
/// `max_in_flight` together.
pub const NEEDED: (u64, u64) = (3, 173);

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Deployment {
    pub guid: String,
    pub status: Status,
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub droplet: Option<super::v3::GuidRef>,
    #[serde(default)]
    pub previous_droplet: Option<super::v3::GuidRef>,
    #[serde(default)]
    pub new_processes: Vec<NewProcess>,
    #[serde(default)]
    pub revision: Option<RevisionRef>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Status {
    /// `ACTIVE` or `FINALIZED`.
    pub value: String,
    /// `DEPLOYING`, `PAUSED`, `CANCELING`; `DEPLOYED`, `CANCELED`,
    /// `SUPERSEDED`.
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub details: Details,
    #[serde(default)]
    pub canary: Option<Canary>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Details {
    /// Why CF stopped the rollout (a new instance never healthy).
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct Canary {
    pub steps: StepCount,
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct StepCount {
    pub current: u32,
    pub total: u32,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct NewProcess {
    pub guid: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct RevisionRef {
    pub guid: String,
    #[serde(default)]
    pub version: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Revision {
    pub guid: String,
    pub version: u64,
    #[serde(default)]
    pub droplet: Option<super::v3::GuidRef>,
    #[serde(default)]
    pub deployable: bool,
    #[serde(default)]
    pub description: String,
}

impl Deployment {
    pub fn active(&self) -> bool {
        self.status.value == "ACTIVE"
    }

    pub fn paused(&self) -> bool {
        self.active() && self.status.reason == "PAUSED"
    }

    /// The canary step it is at (1-based), when a canary.
    pub fn step(&self) -> Option<u32> {
        self.status.canary.as_ref().map(|c| c.steps.current)
    }

    /// Its state as `cf` prints it: `ACTIVE/PAUSED (step 2 of 3)`.
    pub fn describe(&self) -> String {
        let mut s = format!("{}/{}", self.status.value, self.status.reason);
        if let Some(c) = &self.status.canary {
            s += &format!(" (step {} of {})", c.steps.current, c.steps.total);
        }
        if let Some(e) = &self.status.details.error {
            s += &format!(": {}", crate::output::printable(e));
        }
        s
    }
}

/// What a deploy asks of CF's deployment.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// A new droplet, rolling (`steps` empty) or canary by instance weights.
    Droplet {
        droplet: String,
        steps: Vec<u8>,
        max_in_flight: u32,
    },
    /// Back to a revision (`cf rollback`): its droplet, env and commands.
    Revision {
        revision: String,
        max_in_flight: u32,
    },
}

/// Can this foundation run CF deployments the way a native deploy needs?
/// `Err` says why not, for the plan's fallback line.
pub async fn supported(client: &CfClient) -> Result<(), String> {
    let root: Value = client
        .get("/")
        .await
        .map_err(|e| format!("its root document could not be read ({e})"))?;
    judge_root(&root)
}

/// The verdict on a root document (pure, so each case is tested).
pub fn judge_root(root: &Value) -> Result<(), String> {
    if root.get("cf_on_k8s").and_then(Value::as_bool) == Some(true) {
        return Err("it is Korifi, whose deployments take no canary steps or \
             max_in_flight"
            .into());
    }
    let version = root
        .pointer("/links/cloud_controller_v3/meta/version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut parts = version.split(['.', '+', '-']).map(|p| p.parse::<u64>());
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) if (major, minor) >= NEEDED => Ok(()),
        (Some(Ok(_)), Some(Ok(_))) => Err(format!(
            "its Cloud Controller API is {version}, and canary deployments need {}.{} or later",
            NEEDED.0, NEEDED.1
        )),
        _ => Err(format!(
            "its root document gives no Cloud Controller v3 version ({:?})",
            crate::output::printable(version)
        )),
    }
}

impl CfClient {
    pub async fn create_deployment(
        &self,
        app_guid: &str,
        req: &Request,
        strategy: &str,
    ) -> Result<Deployment, PlatformError> {
        let mut body = json!({
            "strategy": strategy,
            "relationships": { "app": { "data": { "guid": app_guid } } },
        });
        let max_in_flight = match req {
            Request::Droplet {
                droplet,
                steps,
                max_in_flight,
            } => {
                body["droplet"] = json!({ "guid": droplet });
                if !steps.is_empty() {
                    let steps: Vec<Value> = steps
                        .iter()
                        .map(|w| json!({ "instance_weight": w }))
                        .collect();
                    body["options"] = json!({ "canary": { "steps": steps } });
                }
                *max_in_flight
            }
            Request::Revision {
                revision,
                max_in_flight,
            } => {
                body["revision"] = json!({ "guid": revision });
                *max_in_flight
            }
        };
        if body.get("options").is_none() {
            body["options"] = json!({});
        }
        body["options"]["max_in_flight"] = json!(max_in_flight);
        self.post("/v3/deployments", &body).await
    }

    pub async fn deployment(&self, guid: &str) -> Result<Deployment, PlatformError> {
        self.get(&format!("/v3/deployments/{guid}")).await
    }

    /// `continue` or `cancel` (CC answers 200 with no body), then the
    /// deployment as it is now.
    pub async fn deployment_action(
        &self,
        guid: &str,
        action: &str,
    ) -> Result<Deployment, PlatformError> {
        let path = format!("/v3/deployments/{guid}/actions/{action}");
        self.request(reqwest::Method::POST, &path, Some(&json!({})))
            .await?;
        self.deployment(guid).await
    }

    /// The app's active deployment, if any.
    pub async fn active_deployment(
        &self,
        app_guid: &str,
    ) -> Result<Option<Deployment>, PlatformError> {
        let all: Vec<Deployment> = self
            .list(&format!(
                "/v3/deployments?app_guids={app_guid}&status_values=ACTIVE"
            ))
            .await?;
        Ok(all.into_iter().next())
    }

    /// The app's revisions, oldest first.
    pub async fn revisions(&self, app_guid: &str) -> Result<Vec<Revision>, PlatformError> {
        let mut all: Vec<Revision> = self.list(&format!("/v3/apps/{app_guid}/revisions")).await?;
        all.sort_by_key(|r| r.version);
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(version: &str) -> Value {
        json!({"links": {"cloud_controller_v3": {"meta": {"version": version}}}})
    }

    #[test]
    fn foundations_that_cannot_run_canary_deployments_are_told_apart() {
        assert_eq!(judge_root(&root("3.173.0")), Ok(()));
        assert_eq!(judge_root(&root("3.190.0")), Ok(()));
        assert_eq!(judge_root(&root("4.0.0")), Ok(()));
        // The input that would fool a string comparison: "3.99" > "3.173".
        let old = judge_root(&root("3.99.0")).unwrap_err();
        assert!(old.contains("3.99.0") && old.contains("3.173"), "{old}");
        let mut korifi = root("3.117.0+cf-k8s");
        korifi["cf_on_k8s"] = json!(true);
        assert!(judge_root(&korifi).unwrap_err().contains("Korifi"));
        assert!(
            judge_root(&json!({}))
                .unwrap_err()
                .contains("no Cloud Controller")
        );
        assert!(judge_root(&root("latest")).is_err());
    }

    #[test]
    fn a_deployment_reads_as_cc_presents_it() {
        let d: Deployment = serde_json::from_value(json!({
            "guid": "d1", "strategy": "canary",
            "status": {"value": "ACTIVE", "reason": "PAUSED",
                "details": {"last_successful_healthcheck": "x", "error": null},
                "canary": {"steps": {"current": 2, "total": 3}}},
            "droplet": {"guid": "dr"}, "previous_droplet": {"guid": "old"},
            "new_processes": [{"guid": "p2", "type": "web"}],
            "revision": {"guid": "r", "version": 4},
        }))
        .unwrap();
        assert!(d.paused());
        assert_eq!(d.step(), Some(2));
        assert_eq!(d.describe(), "ACTIVE/PAUSED (step 2 of 3)");
        assert_eq!(d.new_processes[0].guid, "p2");
    }
}
