//! The org policy: plugins every app must run (pinned by sha256, with
//! settings an app cannot change), hooks that must have a plugin, and
//! whether per-deploy overrides are allowed and need a reason.
//!
//! Where it comes from: the system policy (`/etc/bluegreen/policy.yaml`)
//! always applies when it exists. On top of it, the first of `--policy FILE`,
//! `$BLUEGREEN_POLICY` and the deploy file's `policy:` field is layered, and
//! a layer can only add: more required plugins and hooks, stricter
//! overrides. So a CI job's flag or environment cannot replace the org's
//! policy, and the deploy file cannot point past either.

use crate::plugin::Hook;
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const SYSTEM_PATH: &str = "/etc/bluegreen/policy.yaml";
/// Names the system policy on machines without `SYSTEM_PATH` (images that
/// keep it elsewhere, tests). Where `SYSTEM_PATH` exists it is ignored: it
/// could otherwise point past the org's file.
pub const SYSTEM_ENV: &str = "BLUEGREEN_SYSTEM_POLICY";

/// bluegreen's org policy file: plugins and hooks every app's deploy must
/// run, and whether a deploy may override them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
#[schemars(title = "bluegreen policy")]
pub struct Policy {
    /// Plugins every deploy runs, by plugin name (the file name without
    /// `.wasm`), pinned by sha256.
    pub required_plugins: BTreeMap<String, RequiredPlugin>,
    /// Hooks that must have at least one plugin in every deploy.
    pub required_hooks: Vec<Hook>,
    /// Whether a deploy may let a plugin's block through (`deploy --allow RULE`).
    pub overrides: Overrides,
    /// What the org requires of every app's migrations.
    pub migrate: MigratePolicy,
}

/// What the org requires of every app's migrations.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct MigratePolicy {
    /// Every deploy with a `migrate:` rehearses it on a scratch copy first,
    /// and one whose rehearsal cannot run is refused (exit 3).
    pub require_rehearsal: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequiredPlugin {
    /// Hex sha256 of the component (`sha256sum NAME.wasm`); anything else is
    /// refused.
    #[schemars(pattern(r"^[0-9a-fA-F]{64}$"))]
    #[schemars(extend("patternErrorMessage" = "64 hex digits: `sha256sum NAME.wasm`."))]
    pub sha256: String,
    /// Where the org ships it, relative to the policy file; without it the
    /// app's plugin directory must hold it.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Settings the app's deploy file cannot change.
    #[serde(default)]
    #[serde(deserialize_with = "super::settings::map")]
    #[schemars(with = "super::schema::Settings")]
    pub settings: BTreeMap<String, String>,
    /// The plugin's grants and limits belong to the policy, not to the
    /// deploy file: directories it may read, relative to the deploy file
    /// (read-only, never outside it).
    #[serde(default)]
    pub grant_dirs: Vec<PathBuf>,
    /// Origins the plugin may send HTTP requests to, or `candidate` (the
    /// color being deployed).
    #[serde(default)]
    #[schemars(with = "Vec<super::schema::OriginText>")]
    pub allow_http: Vec<String>,
    /// How long one call of the plugin may run (default: 5s).
    #[serde(default, with = "crate::config::duration::option")]
    #[schemars(with = "Option<super::schema::HumanDuration>")]
    pub timeout: Option<std::time::Duration>,
    /// The most memory the plugin may use, e.g. `64MiB` (default: 64MiB).
    #[serde(default)]
    #[schemars(with = "Option<super::schema::SizeText>")]
    pub memory: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Overrides {
    /// Whether `bluegreen deploy --allow RULE` may let a plugin's block
    /// through.
    pub allowed: bool,
    /// Whether an override must say why (`--reason`, recorded in the history).
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

/// A policy and the files it came from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Loaded {
    pub policy: Policy,
    /// The base policy: the system's when there is one.
    pub path: Option<PathBuf>,
    /// Why this file: `--policy`, `BLUEGREEN_POLICY`, ...
    pub source: &'static str,
    /// A policy layered on the system's, which could only add to it.
    pub added: Option<(PathBuf, &'static str)>,
}

/// Finds the policy layers in the documented order (none at all is no
/// policy). `system` is where the system policy is, if anywhere.
pub fn find(
    system: Option<PathBuf>,
    flag: Option<&Path>,
    env: Option<PathBuf>,
    deploy_file_policy: Option<PathBuf>,
) -> Result<Loaded, String> {
    let layer = if let Some(p) = flag {
        Some((p.to_path_buf(), "--policy"))
    } else if let Some(p) = env.filter(|p| !p.as_os_str().is_empty()) {
        Some((p, "BLUEGREEN_POLICY"))
    } else {
        deploy_file_policy.map(|p| (p, "the deploy file's `policy`"))
    };
    let base = match system {
        Some(p) => {
            let policy = read(&p, "the system policy")?;
            check_not_writable_by_others(&p)?;
            Loaded {
                policy,
                path: Some(p),
                source: "the system policy",
                added: None,
            }
        }
        None => match layer {
            Some((p, source)) => {
                return Ok(Loaded {
                    policy: read(&p, source)?,
                    path: Some(p),
                    source,
                    added: None,
                });
            }
            None => return Ok(Loaded::default()),
        },
    };
    match layer {
        None => Ok(base),
        Some((p, source)) => {
            let extra = read(&p, source)?;
            Ok(Loaded {
                policy: base.policy.layered(extra),
                added: Some((p, source)),
                ..base
            })
        }
    }
}

/// Where the system policy is on this machine, if it has one.
pub fn system_path() -> Option<PathBuf> {
    let fixed = Path::new(SYSTEM_PATH);
    if fixed.exists() {
        return Some(fixed.to_path_buf());
    }
    std::env::var_os(SYSTEM_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Another local user who can rewrite the system policy can lift it.
fn check_not_writable_by_others(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("policy {}: {e}", path.display()))?;
    if meta.mode() & 0o022 != 0 {
        return Err(format!(
            "system policy {}: writable by group or others (mode {:o}), so anyone could lift it; \
             `chmod go-w {}`",
            path.display(),
            meta.mode() & 0o777,
            path.display()
        ));
    }
    Ok(())
}

fn read(path: &Path, source: &str) -> Result<Policy, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("policy {} (from {source}): {e}", path.display()))?;
    let mut policy: Policy = serde_yaml::from_str(&text).map_err(|e| {
        let at = e
            .location()
            .map(|l| format!(":{}:{}", l.line(), l.column()))
            .unwrap_or_default();
        format!("{}{at}: {e}", path.display())
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    for (name, r) in &mut policy.required_plugins {
        let field = |f: &str, e: String| {
            format!(
                "{}: field `required_plugins.{name}.{f}`: {e}",
                path.display()
            )
        };
        if r.sha256.len() != 64 || !r.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(field(
                "sha256",
                format!("expected 64 hex digits (`sha256sum {name}.wasm`)"),
            ));
        }
        // Resolved here: a layered policy's plugins sit next to that file.
        // `builtin:NAME` names a plugin compiled into bluegreen, not a file.
        r.path = r
            .path
            .as_ref()
            .map(|p| match crate::plugin::builtin::named(p) {
                Some(_) => p.clone(),
                None => base.join(p),
            });
        if let Some(m) = &r.memory {
            crate::units::parse_size(m).map_err(|e| field("memory", e))?;
        }
        for o in r.allow_http.iter().filter(|o| *o != super::CANDIDATE) {
            crate::plugin::Origin::parse(o).map_err(|e| field("allow_http", e))?;
        }
        if let Some(d) = r.grant_dirs.iter().find(|d| {
            d.is_absolute() || d.components().any(|c| c == std::path::Component::ParentDir)
        }) {
            return Err(field(
                "grant_dirs",
                format!(
                    "`{}` leaves the app's directory; use a path relative to the deploy file",
                    d.display()
                ),
            ));
        }
    }
    Ok(policy)
}

impl Policy {
    /// This policy with `layer`'s additions: its required plugins and hooks
    /// join, its settings apply where this one locks nothing, and overrides
    /// get only stricter. Nothing `layer` says removes or loosens anything.
    pub fn layered(mut self, layer: Policy) -> Policy {
        for (name, r) in layer.required_plugins {
            match self.required_plugins.get_mut(&name) {
                None => {
                    self.required_plugins.insert(name, r);
                }
                Some(mine) => {
                    for (k, v) in r.settings {
                        mine.settings.entry(k).or_insert(v);
                    }
                }
            }
        }
        for h in layer.required_hooks {
            if !self.required_hooks.contains(&h) {
                self.required_hooks.push(h);
            }
        }
        self.migrate.require_rehearsal |= layer.migrate.require_rehearsal;
        self.overrides.allowed &= layer.overrides.allowed;
        self.overrides.require_reason |= layer.overrides.require_reason;
        self
    }
}

impl Policy {
    /// The deploy file as this policy has it run: a required rehearsal is
    /// on, and refuses where it cannot run, whatever the file says.
    pub fn apply(&self, file: &mut super::DeployFile) {
        if self.migrate.require_rehearsal
            && let Some(m) = &mut file.migrate
        {
            m.rehearse.enabled = true;
            m.rehearse.required = true;
        }
    }
}

impl Loaded {
    pub fn describe(&self) -> String {
        let Some(p) = &self.path else {
            return "no policy".into();
        };
        let mut text = format!("policy {} (from {})", p.display(), self.source);
        if let Some((added, source)) = &self.added {
            text += &format!(
                " plus {} (from {source}, which can only add to it)",
                added.display()
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(yaml: &str) -> Policy {
        serde_yaml::from_str(yaml).unwrap()
    }

    const PIN: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    /// A layer trying every way to loosen the base: drop its plugin (by
    /// listing none), re-pin it, unlock a setting, allow overrides freely.
    #[test]
    fn a_layer_adds_to_the_system_policy_and_never_loosens_it() {
        let base = policy(&format!(
            "required_plugins: {{ guard: {{ sha256: {PIN}, settings: {{ mode: block }} }} }}\n\
             required_hooks: [migration-safety-check]\n\
             overrides: {{ allowed: false, require_reason: true }}\n"
        ));
        let other = PIN.replace('0', "1");
        let lax = policy(&format!(
            "required_plugins: {{ guard: {{ sha256: {other}, settings: {{ mode: warn, extra: x }} }}, \
             notify: {{ sha256: {other} }} }}\n\
             required_hooks: [post-deploy]\n\
             overrides: {{ allowed: true, require_reason: false }}\n"
        ));
        let merged = base.layered(lax);
        let guard = &merged.required_plugins["guard"];
        assert_eq!(guard.sha256, PIN);
        assert_eq!(guard.settings["mode"], "block");
        assert_eq!(guard.settings["extra"], "x");
        assert!(merged.required_plugins.contains_key("notify"));
        assert_eq!(
            merged.required_hooks,
            [Hook::MigrationSafetyCheck, Hook::PostDeploy]
        );
        assert_eq!(
            merged.overrides,
            Overrides {
                allowed: false,
                require_reason: true
            }
        );
    }

    #[test]
    fn a_required_rehearsal_is_on_whatever_the_file_or_a_layer_says() {
        let base = policy("migrate: { require_rehearsal: true }\n");
        let merged = base.layered(policy("migrate: { require_rehearsal: false }\n"));
        assert!(merged.migrate.require_rehearsal);
        let mut file = crate::config::DeployFile::parse(
            Path::new("bluegreen.yaml"),
            "app: shop\nmigrate: { command: m, rehearse: false }\n",
        )
        .unwrap();
        merged.apply(&mut file);
        let r = &file.migrate.unwrap().rehearse;
        assert!(r.enabled && r.required);
    }
}
