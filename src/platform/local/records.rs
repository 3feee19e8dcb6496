//! What the local platform stores per resource: the v3 resource it serves plus
//! the private fields only the daemon needs (files on disk, owners, env).

use crate::platform::v3;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub const APP: &str = "app";
pub const PACKAGE: &str = "package";
pub const BUILD: &str = "build";
pub const DROPLET: &str = "droplet";
pub const ROUTE: &str = "route";
pub const TASK: &str = "task";
pub const LEASE: &str = "lease";
pub const DEPLOYMENT: &str = "deployment";
pub const REVISION: &str = "revision";

pub const ORG_GUID: &str = "a1b2c3d4-0000-4000-8000-00000000000a";
pub const SPACE_GUID: &str = "a1b2c3d4-0000-4000-8000-00000000000b";
pub const DOMAIN_GUID: &str = "a1b2c3d4-0000-4000-8000-00000000000c";
pub const ORG_NAME: &str = "local";
pub const SPACE_NAME: &str = "local";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AppRec {
    pub app: v3::App,
    pub env: BTreeMap<String, String>,
    pub current_droplet: Option<String>,
    /// The `web` process (its guid is the app's).
    pub process: v3::Process,
    /// Other process types (`worker`, ...), from a manifest or a scale.
    #[serde(default)]
    pub others: Vec<v3::Process>,
}

impl AppRec {
    /// Every process type, `web` first.
    pub fn processes(&self) -> impl Iterator<Item = &v3::Process> {
        std::iter::once(&self.process).chain(&self.others)
    }

    pub fn process_mut(&mut self, guid: &str) -> Option<&mut v3::Process> {
        std::iter::once(&mut self.process)
            .chain(self.others.iter_mut())
            .find(|p| p.guid == guid)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackageRec {
    pub package: v3::Package,
    pub app_guid: String,
    pub zip: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BuildRec {
    pub build: v3::Build,
    pub app_guid: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DropletRec {
    pub droplet: v3::Droplet,
    pub app_guid: String,
    pub dir: PathBuf,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TaskRec {
    pub task: v3::Task,
    pub app_guid: String,
}

/// A CF deployment (`state/deployments.rs`, `rollout.rs`): CC's own
/// columns, so the answer is CC's presenter over them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeploymentRec {
    pub guid: String,
    pub app_guid: String,
    /// CC's internal state: `DEPLOYING`, `PREPAUSED` (a canary scaling to
    /// its step), `PAUSED`, `DEPLOYED`, `CANCELING`, `CANCELED`.
    pub state: String,
    /// `ACTIVE` or `FINALIZED`, and why.
    pub status_value: String,
    pub status_reason: String,
    pub error: Option<String>,
    pub strategy: String,
    pub max_in_flight: u32,
    /// The canary steps' instance weights, as given.
    pub canary_steps: Option<Vec<u32>>,
    pub canary_current_step: Option<u32>,
    pub web_instances: Option<u32>,
    pub memory_in_mb: Option<u64>,
    /// The web process's instances and memory before: what a cancel
    /// restores, and the count a superseding deployment inherits.
    pub original_instances: u32,
    pub original_memory_in_mb: Option<u64>,
    pub droplet: String,
    pub previous_droplet: Option<String>,
    pub revision: Option<RevisionRef>,
    /// Whether the app was started: CC names the new web process then.
    pub new_process: bool,
    pub metadata: v3::Metadata,
    pub created_at: String,
    pub updated_at: String,
    pub last_healthy_at: String,
    pub status_changed_at: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevisionRef {
    pub guid: String,
    pub version: u32,
}

/// A CF revision: the droplet, environment and commands an app ran from
/// some moment on (`state/revisions.rs`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RevisionRec {
    pub guid: String,
    pub app_guid: String,
    pub version: u32,
    pub droplet: String,
    pub env: BTreeMap<String, String>,
    /// Each process type's own start command (`None`: the droplet's).
    pub commands: BTreeMap<String, Option<String>>,
    pub description: String,
    pub metadata: v3::Metadata,
    pub created_at: String,
    pub updated_at: String,
}

pub use crate::units::now_rfc3339 as now;

pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}
