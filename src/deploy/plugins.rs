//! The plugins of one deploy: every component in the deploy file's plugin
//! directory plus those the org policy requires, loaded and validated up
//! front (a broken plugin is bad input before anything changes), with each
//! one's sandbox built from its grants. Required plugins are pinned by
//! sha256, keep the settings the policy locks, and run first on every hook,
//! so an app's deploy file can neither remove, weaken nor pre-empt them.

pub mod resolve;

use crate::BadInput;
use crate::PolicyViolation;
use crate::config::DeployFile;
use crate::config::policy;
use crate::plugin::{Cache, Hook, Origin, Plugin, PluginConfig, PluginHost, builtin};
use resolve::{Found, Pick};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

pub struct Plugins {
    pub host: PluginHost,
    /// Required plugins first, then the app's, each group in name order.
    pub loaded: Vec<Plugin>,
    pub required: BTreeSet<String>,
    pub policy: policy::Loaded,
    configs: BTreeMap<String, (PluginConfig, bool)>,
}

/// A built-in plugin's file, written for the host to load.
fn materialize(b: &builtin::Builtin) -> anyhow::Result<std::path::PathBuf> {
    b.materialize(&builtin::dir())
        .map_err(|e| anyhow::anyhow!("writing built-in plugin `{}`: {e}", b.name))
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
        let app = match &dir {
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
        let mut app = app;
        for name in &file.plugins.builtin {
            let b = builtin::find(name).ok_or_else(|| {
                BadInput(format!(
                    "{}: field `plugins.builtin`: `{name}` is not a built-in plugin; there are: {}",
                    file_path.display(),
                    builtin::names()
                ))
            })?;
            if app.iter().any(|p| p.name == b.name) {
                return Err(BadInput(format!(
                    "{}: field `plugins.builtin`: `{name}` is also in the plugin directory; keep \
                     one of the two",
                    file_path.display()
                ))
                .into());
            }
            app.push(host.load(&materialize(b)?).await?);
        }
        let mut org = BTreeMap::new();
        for (name, r) in &policy.policy.required_plugins {
            if let Some(path) = &r.path {
                let path = match builtin::named(path) {
                    Some(b) => materialize(b.map_err(|e| {
                        BadInput(format!(
                            "the org {}: required plugin `{name}`: {e}",
                            policy.describe()
                        ))
                    })?)?,
                    None => path.clone(),
                };
                org.insert(name.clone(), host.load(&path).await?);
            }
        }
        let facts = |p: &Plugin| Found {
            name: p.name.clone(),
            path: p.path.clone(),
            sha256: p.sha256.clone(),
            hooks: p.hooks.clone(),
        };
        let shown_dir = dir
            .as_deref()
            .map(|d| d.display().to_string())
            .unwrap_or_else(|| "(no plugin directory)".into());
        let found: Vec<Found> = app.iter().map(facts).collect();
        let org_found = org.iter().map(|(n, p)| (n.clone(), facts(p))).collect();
        let resolved = resolve::resolve(
            file, file_path, base, &policy, &found, &org_found, &shown_dir,
        )?;
        let mut app: Vec<Option<Plugin>> = app.into_iter().map(Some).collect();
        let mut loaded = Vec::new();
        for (name, pick) in resolved.chosen {
            let mut plugin = match pick {
                Pick::Org => org.remove(&name).expect("resolved from it"),
                Pick::App(i) => app[i].take().expect("picked once"),
            };
            plugin.name = name;
            loaded.push(plugin);
        }
        Ok((
            Plugins {
                host,
                loaded,
                required: resolved.required,
                policy,
                configs: resolved.configs,
            },
            resolved.violations,
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

    /// The loaded plugin `name` (a name taken from `by_hook` or `handling`).
    pub fn named(&self, name: &str) -> &Plugin {
        self.loaded.iter().find(|p| p.name == name).expect("loaded")
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
