//! The Cloud Foundry v3 resources bluegreen uses, as serde types shared by the
//! client and the local platform's API (so both speak exactly one shape).
//!
//! Fields follow CF's published docs (see `tests/fixtures/cf/`). Unknown
//! fields are ignored and missing optional ones default, because a real CF
//! adds fields over time and Korifi omits some.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `{"href": "..."}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
}

/// A list page: `pagination` + `resources`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct List<T> {
    pub pagination: Pagination,
    pub resources: Vec<T>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Pagination {
    pub total_results: u64,
    pub total_pages: u64,
    #[serde(default)]
    pub first: Option<Link>,
    #[serde(default)]
    pub last: Option<Link>,
    #[serde(default)]
    pub next: Option<Link>,
    #[serde(default)]
    pub previous: Option<Link>,
}

/// `{"data": {"guid": "..."}}`. Unset is `{"data": null}` or, for an app
/// without a droplet, `{"data": {"guid": null}}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ToOne {
    /// A to-many relationship (`"data": [...]`) in the same map reads as none.
    #[serde(default, deserialize_with = "to_one_data")]
    pub data: Option<GuidRef>,
}

fn to_one_data<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<GuidRef>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Object(o) => Some(GuidRef {
            guid: o.get("guid").and_then(|g| g.as_str()).map(String::from),
        }),
        _ => None,
    })
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GuidRef {
    pub guid: Option<String>,
}

impl ToOne {
    pub fn to(guid: &str) -> ToOne {
        ToOne {
            data: Some(GuidRef {
                guid: Some(guid.to_string()),
            }),
        }
    }

    pub fn guid(&self) -> Option<&str> {
        self.data.as_ref().and_then(|d| d.guid.as_deref())
    }
}

/// Treats an explicit `null` like a missing field.
fn null_default<'de, D: serde::Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Guid {
    pub guid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default)]
    pub labels: BTreeMap<String, Option<String>>,
    #[serde(default)]
    pub annotations: BTreeMap<String, Option<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Named {
    pub guid: String,
    pub name: String,
    #[serde(default)]
    pub relationships: BTreeMap<String, ToOne>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct App {
    pub guid: String,
    pub name: String,
    /// `STARTED` or `STOPPED`.
    pub state: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default, deserialize_with = "null_default")]
    pub relationships: BTreeMap<String, ToOne>,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub guid: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `AWAITING_UPLOAD`, `PROCESSING_UPLOAD`, `READY`, `FAILED`, `COPYING`, `EXPIRED`.
    pub state: String,
    #[serde(default)]
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Build {
    pub guid: String,
    /// `STAGING`, `STAGED` or `FAILED`.
    pub state: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub package: Option<Guid>,
    #[serde(default)]
    pub droplet: Option<Guid>,
    #[serde(default)]
    pub created_at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Droplet {
    pub guid: String,
    /// `STAGED`, `FAILED`, ...
    pub state: String,
    #[serde(default)]
    pub process_types: BTreeMap<String, String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub metadata: Metadata,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheck {
    /// `port`, `process` or `http`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub data: HealthCheckData,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthCheckData {
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub invocation_timeout: Option<u64>,
    #[serde(default)]
    pub interval: Option<u64>,
    #[serde(default)]
    pub endpoint: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Process {
    pub guid: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub command: Option<String>,
    pub instances: u32,
    #[serde(default)]
    pub health_check: HealthCheck,
    /// The memory limit of each instance, in MB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_in_mb: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessStats {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub index: u32,
    /// `RUNNING`, `CRASHED`, `STARTING`, `DOWN`.
    pub state: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub instance_ports: Vec<InstancePort>,
    #[serde(default)]
    pub uptime: Option<u64>,
    /// The instance's memory limit in bytes, when the process has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_quota: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstancePort {
    pub external: u16,
    pub internal: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub guid: String,
    #[serde(default)]
    pub sequence_id: u64,
    pub name: String,
    #[serde(default)]
    pub command: Option<String>,
    /// `PENDING`, `RUNNING`, `SUCCEEDED`, `CANCELING`, `FAILED`.
    pub state: String,
    #[serde(default)]
    pub droplet_guid: Option<String>,
    #[serde(default)]
    pub result: TaskResult,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskResult {
    #[serde(default)]
    pub failure_reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub guid: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub path: String,
    pub url: String,
    #[serde(default)]
    pub destinations: Vec<Destination>,
    #[serde(default)]
    pub relationships: BTreeMap<String, ToOne>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Destination {
    #[serde(default)]
    pub guid: String,
    pub app: DestinationApp,
    #[serde(default)]
    pub port: Option<u16>,
    /// The share of the route's requests, on a route where every
    /// destination has one. Cloud Foundry documents the field but no longer
    /// routes by it; the local platform does (canary steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DestinationApp {
    pub guid: String,
    #[serde(default)]
    pub process: Option<ProcessType>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessType {
    #[serde(rename = "type")]
    pub kind: String,
}

/// `GET /v3/routes/:guid/destinations` and the destination POST/PATCH replies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Destinations {
    pub destinations: Vec<Destination>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub guid: String,
    /// `PROCESSING`, `POLLING`, `COMPLETE`, `FAILED`.
    pub state: String,
    #[serde(default)]
    pub operation: String,
    #[serde(default)]
    pub errors: Vec<ApiError>,
}

/// One entry of CF's error envelope `{"errors": [...]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: u64,
    pub title: String,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub errors: Vec<ApiError>,
}

/// `GET /v3/service_instances`: an instance the space's apps can bind.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceInstance {
    pub guid: String,
    pub name: String,
    /// `managed` or `user-provided`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub relationships: BTreeMap<String, ToOne>,
}

/// `GET /v3/service_credential_bindings`: an app's binding to an instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceCredentialBinding {
    pub guid: String,
    /// `app` or `key`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub relationships: BTreeMap<String, ToOne>,
}
