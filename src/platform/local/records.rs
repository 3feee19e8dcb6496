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

pub use crate::units::now_rfc3339 as now;

pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}
