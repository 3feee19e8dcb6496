//! The org policy: plugins every app must run (pinned by sha256, with
//! settings an app cannot change), hooks that must have a plugin, and
//! whether per-deploy overrides are allowed and need a reason.
//!
//! Where it comes from, first found wins: `--policy FILE`,
//! `$BLUEGREEN_POLICY`, `/etc/bluegreen/policy.yaml`, then the deploy file's
//! `policy:` field. A platform team sets one of the first three; the deploy
//! file cannot point past them.

use crate::plugin::Hook;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SYSTEM_PATH: &str = "/etc/bluegreen/policy.yaml";

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// By plugin name (the file name without `.wasm`).
    pub required_plugins: BTreeMap<String, RequiredPlugin>,
    pub required_hooks: Vec<Hook>,
    pub overrides: Overrides,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredPlugin {
    /// Hex sha256 of the component; anything else is refused.
    pub sha256: String,
    /// Where the org ships it, relative to the policy file; without it the
    /// app's plugin directory must hold it.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Settings the app's deploy file cannot change.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Overrides {
    pub allowed: bool,
    pub require_reason: bool,
}

impl Default for Overrides {
    fn default() -> Self {
        Overrides {
            allowed: true,
            require_reason: true,
        }
    }
}

/// A policy and the file it came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    pub policy: Policy,
    pub path: Option<PathBuf>,
    /// Why this file: `--policy`, `BLUEGREEN_POLICY`, ...
    pub source: &'static str,
}

/// Finds the policy in the documented order (none at all is no policy).
pub fn find(
    flag: Option<&Path>,
    env: Option<PathBuf>,
    deploy_file_policy: Option<PathBuf>,
) -> Result<Loaded, String> {
    let system = Path::new(SYSTEM_PATH);
    let (path, source) = if let Some(p) = flag {
        (p.to_path_buf(), "--policy")
    } else if let Some(p) = env.filter(|p| !p.as_os_str().is_empty()) {
        (p, "BLUEGREEN_POLICY")
    } else if system.exists() {
        (system.to_path_buf(), "the system policy")
    } else if let Some(p) = deploy_file_policy {
        (p, "the deploy file's `policy`")
    } else {
        return Ok(Loaded::default());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("policy {} (from {source}): {e}", path.display()))?;
    let policy: Policy = serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        format!("{}{at}: {e}", path.display())
    })?;
    for (name, r) in &policy.required_plugins {
        if r.sha256.len() != 64 || !r.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "{}: field `required_plugins.{name}.sha256`: expected 64 hex digits (`sha256sum {name}.wasm`)",
                path.display()
            ));
        }
    }
    Ok(Loaded {
        policy,
        path: Some(path),
        source,
    })
}

impl Loaded {
    /// `path` of a required plugin, resolved against the policy file.
    pub fn plugin_path(&self, r: &RequiredPlugin) -> Option<PathBuf> {
        let base = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        r.path.as_ref().map(|p| base.join(p))
    }

    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("policy {} (from {})", p.display(), self.source),
            None => "no policy".into(),
        }
    }
}
