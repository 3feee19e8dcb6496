//! The plugins of one deploy: every component in the deploy file's plugin
//! directory plus those the org policy requires, loaded and validated up
//! front (a broken plugin is bad input before anything changes), with each
//! one's sandbox built from its grants. Required plugins are pinned by
//! sha256, keep the settings the policy locks, and run first on every hook,
//! so an app's deploy file can neither remove, weaken nor pre-empt them.

use crate::BadInput;
use crate::config::policy;
use crate::config::{CANDIDATE, DeployFile};
use crate::plugin::{
    Cache, DirGrant, Hook, OnError, Origin, Plugin, PluginConfig, PluginHost, Sandbox,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

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

/// The deploy file breaks the org policy: exit code 3, nothing changes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyViolation(pub String);

pub struct Plugins {
    pub host: PluginHost,
    /// Required plugins first, then the app's, each group in name order.
    pub loaded: Vec<Plugin>,
    pub required: BTreeSet<String>,
    pub policy: policy::Loaded,
    configs: BTreeMap<String, (PluginConfig, bool)>,
}

impl Plugins {
    /// Loads `plugins.dir` (relative to the deploy file; default `plugins`
    /// next to it, if that exists) and what `policy` requires.
    pub async fn load(
        file: &DeployFile,
        file_path: &Path,
        base: &Path,
        policy: policy::Loaded,
    ) -> anyhow::Result<Plugins> {
        let (plugins, violations) = Self::load_checked(file, file_path, base, policy).await?;
        if !violations.is_empty() {
            return Err(PolicyViolation(format!(
                "the deploy file breaks the org {}:\n  {}",
                plugins.policy.describe(),
                violations.join("\n  ")
            ))
            .into());
        }
        Ok(plugins)
    }

    /// Like `load`, but returns the policy violations instead of failing on
    /// them (for `policy check`).
    pub async fn load_checked(
        file: &DeployFile,
        file_path: &Path,
        base: &Path,
        policy: policy::Loaded,
    ) -> anyhow::Result<(Plugins, Vec<String>)> {
        let host = PluginHost::new(Cache::default_dir())?;
        let dir = match &file.plugins.dir {
            Some(d) => Some(base.join(d)),
            None => Some(base.join("plugins")).filter(|d| d.is_dir()),
        };
        let mut app = match &dir {
            Some(d) if !d.is_dir() => {
                return Err(BadInput(format!(
                    "{}: field `plugins.dir`: {} is not a directory (create it or fix the path)",
                    file_path.display(),
                    d.display()
                ))
                .into());
            }
            Some(d) => host.load_dir(d).await?,
            None => Vec::new(),
        };
        let shown_dir = dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "(no plugin directory)".into());
        let mut violations = Vec::new();
        let mut required = Vec::new();
        for (name, r) in &policy.policy.required_plugins {
            let at = app.iter().position(|p| &p.name == name);
            let plugin = match (r.path.clone(), at) {
                (Some(path), at) => {
                    let mut org = host.load(&path).await?;
                    // Named by the policy, whatever the org's file is called.
                    org.name = name.clone();
                    if let Some(i) = at {
                        let mine = app.remove(i);
                        if mine.sha256 != r.sha256 {
                            violations.push(format!(
                                "plugin `{name}`: {} (sha256 {}) is not the org's pinned build; remove it, the policy supplies `{name}`",
                                mine.path.display(),
                                mine.sha256
                            ));
                        }
                    }
                    org
                }
                (None, Some(i)) => app.remove(i),
                (None, None) => {
                    violations.push(format!(
                        "plugin `{name}` is required (sha256 {}) but {shown_dir} has no `{name}.wasm`: add the org's build",
                        r.sha256
                    ));
                    continue;
                }
            };
            if plugin.sha256 != r.sha256 {
                violations.push(format!(
                    "plugin `{name}` at {} has sha256 {}, but the policy pins {}: it is not the approved build (tampered or outdated)",
                    plugin.path.display(),
                    plugin.sha256,
                    r.sha256
                ));
            }
            required.push(plugin);
        }
        for name in file.plugins.config.keys() {
            if !app.iter().chain(&required).any(|p| &p.name == name) {
                return Err(BadInput(format!(
                    "{}: field `plugins.config.{name}`: no plugin `{name}.wasm` in {shown_dir} (fix the name or add the plugin)",
                    file_path.display(),
                ))
                .into());
            }
        }
        let mut configs = BTreeMap::new();
        for p in required.iter().chain(&app) {
            let s = file
                .plugins
                .config
                .get(&p.name)
                .cloned()
                .unwrap_or_default();
            let required = policy.policy.required_plugins.get(&p.name);
            let (grants, source) = match required {
                // The policy owns a required plugin's grants and limits: the
                // deploy file could otherwise open `/` and any origin to the
                // org's code, or starve it of time.
                Some(r) => {
                    if !s.grant_dirs.is_empty()
                        || !s.allow_http.is_empty()
                        || s.timeout.is_some()
                        || s.memory.is_some()
                    {
                        violations.push(format!(
                            "`plugins.config.{}`: grant_dirs, allow_http, timeout and memory of a \
                             required plugin are the policy's; remove them (the platform team \
                             changes them in the policy)",
                            p.name
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
                            "the org {}: field `required_plugins.{}",
                            policy.describe(),
                            p.name
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
                        format!("{}: field `plugins.config.{}", file_path.display(), p.name),
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
                            "`plugins.config.{}.settings.{k}: {v}` would weaken a required plugin; the policy locks it to `{locked}`",
                            p.name
                        ));
                    }
                    settings.insert(k.clone(), locked.clone());
                }
                if on_error == OnError::Warn {
                    violations.push(format!(
                        "`plugins.config.{}.on_error: warn` would let a required plugin's failure pass; it must stay `block`",
                        p.name
                    ));
                    on_error = OnError::Block;
                }
            }
            let config = PluginConfig {
                settings: settings.into_iter().collect(),
                sandbox,
                on_error,
            };
            configs.insert(p.name.clone(), (config, wants_candidate));
        }
        let required_names = required.iter().map(|p| p.name.clone()).collect();
        // Only a plugin the policy itself requires (pinned by digest)
        // satisfies a required hook: the app's own no-op must not.
        for hook in &policy.policy.required_hooks {
            if !required.iter().any(|p| p.hooks.contains(hook)) {
                let app_has = app.iter().any(|p| p.hooks.contains(hook));
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
        let loaded: Vec<Plugin> = required.into_iter().chain(app).collect();
        Ok((
            Plugins {
                host,
                loaded,
                required: required_names,
                policy,
                configs,
            },
            violations,
        ))
    }

    /// Which plugins handle each hook, in the order they run.
    pub fn by_hook(&self) -> BTreeMap<Hook, Vec<String>> {
        let mut map: BTreeMap<Hook, Vec<String>> = BTreeMap::new();
        for p in &self.loaded {
            for h in &p.hooks {
                map.entry(*h).or_default().push(p.name.clone());
            }
        }
        map
    }

    pub fn handling(&self, hook: Hook) -> impl Iterator<Item = &Plugin> {
        self.loaded.iter().filter(move |p| p.hooks.contains(&hook))
    }

    /// A plugin's config for one call; `candidate` opens HTTP to the
    /// candidate's own URL when the deploy file granted it.
    pub fn config(&self, name: &str, candidate: Option<&str>) -> PluginConfig {
        let (mut config, wants_candidate) = self.configs.get(name).cloned().unwrap_or_default();
        if wants_candidate && let Some(origin) = candidate.and_then(|c| Origin::parse(c).ok()) {
            config.sandbox.http.push(origin);
        }
        config
    }
}
