//! A Cloud Foundry `manifest.yml`, named by the deploy file's `manifest:`:
//! the app's instances, memory, processes, health checks, env and services
//! as the team already runs it. Each color gets the app's entry with its own
//! name and without `routes` (bluegreen owns the route), applied through
//! CF's server-side manifest endpoint, so everything else comes out as CF
//! itself would apply it.

use super::ConfigError;
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Keys that place an app on routes: bluegreen owns the route.
const ROUTE_KEYS: &[&str] = &[
    "routes",
    "route",
    "random-route",
    "no-route",
    "default-route",
    "host",
    "hosts",
    "domain",
    "domains",
    "routing",
];

/// One process type as the manifest sets it.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessSpec {
    pub kind: String,
    pub instances: Option<u32>,
    pub command: Option<String>,
    pub memory: Option<String>,
    /// `port`, `process` or `http`, and the http check's endpoint.
    pub health_check: Option<String>,
    pub endpoint: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub path: PathBuf,
    /// The app's name in the manifest.
    pub name: String,
    /// The app's entry, route keys taken out.
    pub entry: Mapping,
    /// The route keys that were taken out.
    pub dropped: Vec<String>,
    /// The `routes:` it named (`shop.example.com`): where a deploy file
    /// without `route` or `domain` takes the route's domain from.
    pub routes: Vec<String>,
    /// `web` first, then the other types in the manifest's order.
    pub processes: Vec<ProcessSpec>,
    pub env: BTreeMap<String, String>,
    pub services: Vec<String>,
}

/// A scalar's text (a manifest writes `instances: 3` and `"3"` alike).
pub fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Manifest {
    /// Reads the manifest at `path` and picks the app: `app` by name, or the
    /// only one.
    pub fn load(path: &Path, app: Option<&str>) -> Result<Manifest, ConfigError> {
        let raw = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        let field = |field: String, message: String| ConfigError::Field {
            path: path.into(),
            field,
            message,
        };
        let doc: Value = serde_yaml::from_str(&raw).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            ConfigError::Invalid {
                path: path.into(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        let apps = doc
            .get("applications")
            .and_then(Value::as_sequence)
            .ok_or_else(|| field("applications".into(), "a list of apps is required".into()))?;
        let names: Vec<String> = apps
            .iter()
            .map(|a| a.get("name").and_then(text).unwrap_or_default())
            .collect();
        let index = match app {
            Some(wanted) => names.iter().position(|n| n == wanted).ok_or_else(|| {
                field(
                    "applications".into(),
                    format!(
                        "no app named `{wanted}` (it has: {}); fix `manifest_app`",
                        names.join(", ")
                    ),
                )
            })?,
            None if apps.len() == 1 => 0,
            None => {
                return Err(field(
                    "applications".into(),
                    format!(
                        "{} apps ({}): name the one to deploy with `manifest_app` in the deploy file",
                        apps.len(),
                        names.join(", ")
                    ),
                ));
            }
        };
        let at = |key: &str| format!("applications[{index}].{key}");
        let mut entry = apps[index]
            .as_mapping()
            .cloned()
            .ok_or_else(|| field(format!("applications[{index}]"), "must be a mapping".into()))?;
        let routes: Vec<String> = entry
            .get("routes")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|r| r.get("route").and_then(text))
            .collect();
        let mut dropped = Vec::new();
        for key in ROUTE_KEYS {
            if entry.remove(*key).is_some() {
                dropped.push(key.to_string());
            }
        }
        let count = |v: Option<&Value>, key: String| -> Result<Option<u32>, ConfigError> {
            match v {
                None => Ok(None),
                Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n <= 1000) => {
                    Ok(n.as_u64().map(|n| n as u32))
                }
                Some(other) => Err(field(
                    key,
                    format!(
                        "`{}` is not an instance count (0 to 1000)",
                        text(other).unwrap_or_default()
                    ),
                )),
            }
        };
        let health = |m: &Mapping, key: String| -> Result<Option<String>, ConfigError> {
            match m.get("health-check-type").and_then(text) {
                None => Ok(None),
                Some(t) if matches!(t.as_str(), "port" | "process" | "http") => Ok(Some(t)),
                // CF's old name for `process`.
                Some(t) if t == "none" => Ok(Some("process".into())),
                Some(t) => Err(field(key, format!("`{t}` is not port, process or http"))),
            }
        };
        let mut web = ProcessSpec {
            kind: "web".into(),
            instances: count(entry.get("instances"), at("instances"))?,
            command: entry.get("command").and_then(text),
            memory: entry.get("memory").and_then(text),
            health_check: health(&entry, at("health-check-type"))?,
            endpoint: entry.get("health-check-http-endpoint").and_then(text),
        };
        let mut processes = Vec::new();
        if let Some(list) = entry.get("processes").and_then(Value::as_sequence) {
            for (i, p) in list.iter().enumerate() {
                let key = |k: &str| format!("applications[{index}].processes[{i}].{k}");
                let m = p.as_mapping().cloned().unwrap_or_default();
                let kind = m
                    .get("type")
                    .and_then(text)
                    .ok_or_else(|| field(key("type"), "each process needs a type".into()))?;
                let spec = ProcessSpec {
                    kind: kind.clone(),
                    instances: count(m.get("instances"), key("instances"))?,
                    command: m.get("command").and_then(text),
                    memory: m.get("memory").and_then(text),
                    health_check: health(&m, key("health-check-type"))?,
                    endpoint: m.get("health-check-http-endpoint").and_then(text),
                };
                if kind == "web" {
                    // The process entry wins over the app-level keys.
                    web = ProcessSpec {
                        instances: spec.instances.or(web.instances),
                        command: spec.command.or(web.command),
                        memory: spec.memory.or(web.memory),
                        health_check: spec.health_check.or(web.health_check),
                        endpoint: spec.endpoint.or(web.endpoint),
                        kind,
                    };
                } else {
                    processes.push(spec);
                }
            }
        }
        processes.insert(0, web);
        for p in &processes {
            if let Some(m) = &p.memory {
                memory_mb(m).ok_or_else(|| {
                    field(at("memory"), format!("`{m}` is not a size like 256M or 1G"))
                })?;
            }
        }
        let env = match entry.get("env") {
            None => BTreeMap::new(),
            Some(Value::Mapping(m)) => m
                .iter()
                .filter_map(|(k, v)| Some((text(k)?, text(v).unwrap_or_default())))
                .collect(),
            Some(_) => {
                return Err(field(
                    at("env"),
                    "must be a mapping of names to values".into(),
                ));
            }
        };
        let services = entry
            .get("services")
            .and_then(Value::as_sequence)
            .map(|l| {
                l.iter()
                    .filter_map(|s| text(s).or_else(|| s.get("name").and_then(text)))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Manifest {
            path: path.into(),
            name: names[index].clone(),
            entry,
            dropped,
            routes,
            processes,
            env,
            services,
        })
    }

    pub fn web(&self) -> &ProcessSpec {
        &self.processes[0]
    }

    /// The manifest one color gets: the app's entry under the color's app
    /// name, with `web_instances` in place of the manifest's count when the
    /// live app is kept at its own scale.
    pub fn for_color(&self, app_name: &str, web_instances: Option<u32>) -> String {
        let mut entry = self.entry.clone();
        entry.insert("name".into(), app_name.into());
        if let Some(n) = web_instances {
            entry.insert("instances".into(), n.into());
            if let Some(Value::Sequence(list)) = entry.get_mut("processes") {
                for p in list.iter_mut() {
                    if p.get("type").and_then(text).as_deref() == Some("web")
                        && let Some(m) = p.as_mapping_mut()
                    {
                        m.insert("instances".into(), n.into());
                    }
                }
            }
        }
        let mut doc = Mapping::new();
        doc.insert(
            "applications".into(),
            Value::Sequence(vec![Value::Mapping(entry)]),
        );
        serde_yaml::to_string(&Value::Mapping(doc)).expect("a YAML value serializes")
    }

    /// What the manifest sets, for `plan`: one line per thing.
    pub fn summary(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.processes {
            let mut parts = vec![format!(
                "{} ×{}",
                p.kind,
                p.instances.unwrap_or(u32::from(p.kind == "web"))
            )];
            if let Some(m) = &p.memory {
                parts.push(format!("memory {m}"));
            }
            if let Some(h) = &p.health_check {
                parts.push(match &p.endpoint {
                    Some(e) => format!("health check {h} {e}"),
                    None => format!("health check {h}"),
                });
            }
            if let Some(c) = &p.command {
                parts.push(format!("command `{c}`"));
            }
            out.push(format!("process {}", parts.join(", ")));
        }
        let other: Vec<String> = self
            .entry
            .keys()
            .filter_map(text)
            .filter(|k| {
                !matches!(
                    k.as_str(),
                    "name" | "instances" | "memory" | "command" | "processes" | "env" | "services"
                ) && !k.starts_with("health-check")
            })
            .collect();
        if !self.env.is_empty() {
            out.push(format!(
                "env: {}",
                self.env.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.services.is_empty() {
            out.push(format!("services: {}", self.services.join(", ")));
        }
        if !other.is_empty() {
            out.push(format!(
                "also applied as CF applies it: {}",
                other.join(", ")
            ));
        }
        if !self.dropped.is_empty() {
            out.push(format!(
                "taken out: {} (bluegreen owns the route)",
                self.dropped.join(", ")
            ));
        }
        out
    }
}

/// `256M`, `1G`, `512MB`, `1024` (MB) → megabytes.
pub fn memory_mb(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_uppercase();
    let s = s.strip_suffix('B').unwrap_or(&s);
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().ok()?;
    match unit {
        "" | "M" => Some(n),
        "G" => Some(n * 1024),
        "T" => Some(n * 1024 * 1024),
        _ => None,
    }
}
