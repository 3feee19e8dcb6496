//! Which plugins a deploy runs and how, decided without an engine: the org
//! policy's required plugins (pinned by sha256, supplied by the policy or
//! found in the plugin directory) first, then the app's; each one's
//! settings (locked ones kept), grants and limits (the policy's for a
//! required plugin) and `on_error`; and every way the deploy file breaks the
//! policy. `Plugins::load` loads the components and hands their facts here.

use crate::BadInput;
use crate::config::policy;
use crate::config::{CANDIDATE, DeployFile};
use crate::plugin::{DirGrant, Hook, OnError, Origin, PluginConfig, Sandbox};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A component as resolution needs it: name, file, digest, hooks.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub name: String,
    pub path: PathBuf,
    pub sha256: String,
    pub hooks: Vec<Hook>,
}

/// Where a chosen plugin comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    /// The policy's own file for the required plugin of that name.
    Org,
    /// The plugin directory's entry at this index.
    App(usize),
}

#[derive(Debug)]
pub struct Resolved {
    /// In run order (required first), each with its final name.
    pub chosen: Vec<(String, Pick)>,
    pub required: BTreeSet<String>,
    /// Per plugin: its config, and whether it may reach the candidate URL.
    pub configs: BTreeMap<String, (PluginConfig, bool)>,
    pub violations: Vec<String>,
}

/// What a plugin may reach and use, from the deploy file or, for a required
/// plugin, the policy.
struct Grants<'a> {
    dirs: &'a [std::path::PathBuf],
    http: &'a [String],
    timeout: Option<std::time::Duration>,
    memory: Option<&'a str>,
}

impl Grants<'_> {
    /// The sandbox; directories are relative to the deploy file's `base`.
    /// An error names the field.
    fn sandbox(&self, base: &Path) -> Result<Sandbox, (&'static str, String)> {
        let mut sandbox = Sandbox::default();
        for d in self.dirs {
            let host_dir = base.join(d);
            let spec = format!("{}:/{}", host_dir.display(), d.display()).replace("//", "/");
            sandbox
                .dirs
                .push(DirGrant::parse(&spec).map_err(|e| ("grant_dirs", e))?);
        }
        for o in self.http.iter().filter(|o| *o != CANDIDATE) {
            sandbox
                .http
                .push(Origin::parse(o).map_err(|e| ("allow_http", e))?);
        }
        if let Some(t) = self.timeout {
            sandbox.timeout = t;
        }
        if let Some(m) = self.memory {
            sandbox.memory = crate::units::parse_size(m).map_err(|e| ("memory", e))?;
        }
        Ok(sandbox)
    }
}

/// Resolves `app` (the plugin directory's components, in name order) and
/// `org` (components the policy ships itself, by required name) against the
/// deploy file and the policy. `shown_dir` names the directory in messages.
pub fn resolve(
    file: &DeployFile,
    file_path: &Path,
    base: &Path,
    policy: &policy::Loaded,
    app: &[Found],
    org: &BTreeMap<String, Found>,
    shown_dir: &str,
) -> Result<Resolved, BadInput> {
    let mut violations = Vec::new();
    let mut taken = BTreeSet::new();
    let mut required: Vec<(Found, Pick)> = Vec::new();
    for (name, r) in &policy.policy.required_plugins {
        let at = app.iter().position(|p| &p.name == name);
        let plugin = match (org.get(name), at) {
            (Some(o), at) => {
                if let Some(i) = at {
                    taken.insert(i);
                    let mine = &app[i];
                    if mine.sha256 != r.sha256 {
                        violations.push(format!(
                            "plugin `{name}`: {} (sha256 {}) is not the org's pinned build; remove it, the policy supplies `{name}`",
                            mine.path.display(),
                            mine.sha256
                        ));
                    }
                }
                // Named by the policy, whatever the org's file is called.
                (
                    Found {
                        name: name.clone(),
                        ..o.clone()
                    },
                    Pick::Org,
                )
            }
            (None, Some(i)) => {
                taken.insert(i);
                (app[i].clone(), Pick::App(i))
            }
            (None, None) => {
                violations.push(format!(
                    "plugin `{name}` is required (sha256 {}) but {shown_dir} has no `{name}.wasm`: add the org's build",
                    r.sha256
                ));
                continue;
            }
        };
        if plugin.0.sha256 != r.sha256 {
            violations.push(format!(
                "plugin `{name}` at {} has sha256 {}, but the policy pins {}: it is not the approved build (tampered or outdated)",
                plugin.0.path.display(),
                plugin.0.sha256,
                r.sha256
            ));
        }
        required.push(plugin);
    }
    let own: Vec<(Found, Pick)> = app
        .iter()
        .enumerate()
        .filter(|(i, _)| !taken.contains(i))
        .map(|(i, p)| (p.clone(), Pick::App(i)))
        .collect();
    for name in file.plugins.config.keys() {
        if !own.iter().chain(&required).any(|(p, _)| &p.name == name) {
            return Err(BadInput(format!(
                "{}: field `plugins.config.{name}`: no plugin `{name}.wasm` in {shown_dir} (fix the name or add the plugin)",
                file_path.display(),
            )));
        }
    }
    let mut configs = BTreeMap::new();
    for (p, _) in required.iter().chain(&own) {
        let (config, wants_candidate) =
            configure(file, file_path, base, policy, &p.name, &mut violations)?;
        configs.insert(p.name.clone(), (config, wants_candidate));
    }
    // Only a plugin the policy itself requires (pinned by digest) satisfies
    // a required hook: the app's own no-op must not.
    for hook in &policy.policy.required_hooks {
        if !required.iter().any(|(p, _)| p.hooks.contains(hook)) {
            let app_has = own.iter().any(|(p, _)| p.hooks.contains(hook));
            violations.push(format!(
                "the policy requires a plugin on `{hook}`, and none of its required plugins \
                 handles it{}",
                if app_has {
                    " (the deploy file's own plugins cannot stand in for the org's)"
                } else {
                    ""
                }
            ));
        }
        // The migration check runs only with a `migrate` section: without
        // one, migrations started some other way would go unchecked.
        if *hook == Hook::MigrationSafetyCheck && file.migrate.is_none() {
            violations.push(format!(
                "the policy requires `{hook}`, which runs only when the deploy file has a \
                 `migrate` section; add one (its `command`, `dirs`) so migrations are checked"
            ));
        }
    }
    Ok(Resolved {
        required: required.iter().map(|(p, _)| p.name.clone()).collect(),
        chosen: required
            .into_iter()
            .chain(own)
            .map(|(p, pick)| (p.name, pick))
            .collect(),
        configs,
        violations,
    })
}

/// One plugin's settings, sandbox and `on_error`, and whether it may reach
/// the candidate's URL.
fn configure(
    file: &DeployFile,
    file_path: &Path,
    base: &Path,
    policy: &policy::Loaded,
    name: &str,
    violations: &mut Vec<String>,
) -> Result<(PluginConfig, bool), BadInput> {
    let s = file.plugins.config.get(name).cloned().unwrap_or_default();
    let required = policy.policy.required_plugins.get(name);
    let (grants, source) = match required {
        // The policy owns a required plugin's grants and limits: the deploy
        // file could otherwise open `/` and any origin to the org's code, or
        // starve it of time.
        Some(r) => {
            if !s.grant_dirs.is_empty()
                || !s.allow_http.is_empty()
                || s.timeout.is_some()
                || s.memory.is_some()
            {
                violations.push(format!(
                    "`plugins.config.{name}`: grant_dirs, allow_http, timeout and memory of a \
                     required plugin are the policy's; remove them (the platform team \
                     changes them in the policy)"
                ));
            }
            let grants = Grants {
                dirs: &r.grant_dirs,
                http: &r.allow_http,
                timeout: r.timeout,
                memory: r.memory.as_deref(),
            };
            (
                grants,
                format!(
                    "the org {}: field `required_plugins.{name}",
                    policy.describe()
                ),
            )
        }
        None => {
            let grants = Grants {
                dirs: &s.grant_dirs,
                http: &s.allow_http,
                timeout: s.timeout,
                memory: s.memory.as_deref(),
            };
            (
                grants,
                format!("{}: field `plugins.config.{name}", file_path.display()),
            )
        }
    };
    let sandbox = grants
        .sandbox(base)
        .map_err(|(f, e)| BadInput(format!("{source}.{f}`: {e}")))?;
    let wants_candidate = grants.http.iter().any(|o| o == CANDIDATE);
    let mut settings = s.settings.clone();
    let mut on_error = s.on_error.unwrap_or_default();
    if let Some(r) = required {
        for (k, locked) in &r.settings {
            if let Some(v) = settings.get(k).filter(|v| *v != locked) {
                violations.push(format!(
                    "`plugins.config.{name}.settings.{k}: {v}` would weaken a required plugin; the policy locks it to `{locked}`"
                ));
            }
            settings.insert(k.clone(), locked.clone());
        }
        if on_error == OnError::Warn {
            violations.push(format!(
                "`plugins.config.{name}.on_error: warn` would let a required plugin's failure pass; it must stay `block`"
            ));
            on_error = OnError::Block;
        }
    }
    let config = PluginConfig {
        settings: settings.into_iter().collect(),
        sandbox,
        on_error,
    };
    Ok((config, wants_candidate))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(name: &str, sha: &str, hooks: &[Hook]) -> Found {
        Found {
            name: name.into(),
            path: format!("/app/plugins/{name}.wasm").into(),
            sha256: sha.into(),
            hooks: hooks.to_vec(),
        }
    }

    fn file(yaml: &str) -> DeployFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bluegreen.yaml");
        DeployFile::parse(&path, &format!("app: shop\n{yaml}")).unwrap()
    }

    fn policy(yaml: &str) -> policy::Loaded {
        policy::Loaded {
            policy: serde_yaml::from_str(yaml).unwrap(),
            path: Some("/etc/bluegreen/policy.yaml".into()),
            source: "the system policy",
            added: None,
        }
    }

    const GUARD: Hook = Hook::MigrationSafetyCheck;

    #[test]
    fn required_plugins_run_first_with_locked_settings_and_the_policys_grants() {
        let f = file(
            "migrate: { command: rake db:migrate }\nplugins:\n  config:\n    guard: { settings: { mode: warn } }\n    probe: { allow_http: [candidate] }\n",
        );
        let p = policy(
            "required_plugins:\n  guard: { sha256: aaa, settings: { mode: block } }\nrequired_hooks: [migration-safety-check]\n",
        );
        let app = [
            found("guard", "aaa", &[GUARD]),
            found("probe", "bbb", &[Hook::HealthCheck]),
        ];
        let r = resolve(
            &f,
            Path::new("bluegreen.yaml"),
            Path::new("/app"),
            &p,
            &app,
            &BTreeMap::new(),
            "plugins",
        )
        .unwrap();
        assert_eq!(
            r.chosen,
            [
                ("guard".to_string(), Pick::App(0)),
                ("probe".to_string(), Pick::App(1))
            ]
        );
        let (guard, _) = &r.configs["guard"];
        assert_eq!(guard.settings, [("mode".to_string(), "block".to_string())]);
        assert!(r.configs["probe"].1, "probe may reach the candidate");
        assert_eq!(r.violations.len(), 1, "{:?}", r.violations);
        assert!(
            r.violations[0].contains("settings.mode: warn"),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn a_wrong_build_a_missing_plugin_and_an_app_stand_in_are_violations() {
        let f = file("");
        let p = policy(
            "required_plugins:\n  guard: { sha256: aaa }\n  gate: { sha256: ccc }\nrequired_hooks: [pre-deploy]\n",
        );
        let app = [
            found("guard", "tampered", &[GUARD]),
            found("mine", "ddd", &[Hook::PreDeploy]),
        ];
        let r = resolve(
            &f,
            Path::new("bluegreen.yaml"),
            Path::new("/app"),
            &p,
            &app,
            &BTreeMap::new(),
            "plugins",
        )
        .unwrap();
        let all = r.violations.join("\n");
        assert!(
            all.contains("`guard` at /app/plugins/guard.wasm has sha256 tampered"),
            "{all}"
        );
        assert!(
            all.contains("`gate` is required (sha256 ccc) but plugins has no `gate.wasm`"),
            "{all}"
        );
        assert!(all.contains("cannot stand in for the org's"), "{all}");
        assert_eq!(r.required, BTreeSet::from(["guard".to_string()]));
    }

    #[test]
    fn the_policys_own_build_replaces_the_apps_copy() {
        let f = file("");
        let p = policy("required_plugins:\n  guard: { sha256: aaa, path: org/guard.wasm }\n");
        let org = BTreeMap::from([("guard".to_string(), found("org-guard", "aaa", &[GUARD]))]);
        let app = [found("guard", "zzz", &[GUARD])];
        let r = resolve(
            &f,
            Path::new("bluegreen.yaml"),
            Path::new("/app"),
            &p,
            &app,
            &org,
            "plugins",
        )
        .unwrap();
        assert_eq!(r.chosen, [("guard".to_string(), Pick::Org)]);
        assert!(
            r.violations[0].contains("is not the org's pinned build"),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn settings_for_a_plugin_that_is_not_there_are_bad_input() {
        let f = file("plugins:\n  config:\n    typo: { settings: { a: b } }\n");
        let err = resolve(
            &f,
            Path::new("bluegreen.yaml"),
            Path::new("/app"),
            &policy("{}"),
            &[],
            &BTreeMap::new(),
            "plugins",
        )
        .unwrap_err();
        assert!(err.0.contains("plugins.config.typo"), "{err}");
    }
}
