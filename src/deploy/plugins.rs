//! The plugins of one deploy: every component in the deploy file's plugin
//! directory, loaded and validated up front (a broken plugin is bad input
//! before anything changes), with each one's sandbox built from its grants.

use crate::cli::BadInput;
use crate::config::{CANDIDATE, DeployFile};
use crate::plugin::{Cache, DirGrant, Hook, Origin, Plugin, PluginConfig, PluginHost, Sandbox};
use std::collections::BTreeMap;
use std::path::Path;

pub struct Plugins {
    pub host: PluginHost,
    pub loaded: Vec<Plugin>,
    configs: BTreeMap<String, (PluginConfig, bool)>,
}

impl Plugins {
    /// Loads `plugins.dir` (relative to the deploy file; default `plugins`
    /// next to it, if that exists).
    pub async fn load(file: &DeployFile, file_path: &Path, base: &Path) -> anyhow::Result<Plugins> {
        let host = PluginHost::new(Cache::default_dir())?;
        let dir = match &file.plugins.dir {
            Some(d) => Some(base.join(d)),
            None => Some(base.join("plugins")).filter(|d| d.is_dir()),
        };
        let loaded = match &dir {
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
        let mut configs = BTreeMap::new();
        for name in file.plugins.config.keys() {
            if !loaded.iter().any(|p| &p.name == name) {
                return Err(BadInput(format!(
                    "{}: field `plugins.config.{name}`: no plugin `{name}.wasm` in {} (fix the name or add the plugin)",
                    file_path.display(),
                    dir.as_deref().unwrap_or(Path::new("(no plugin directory)")).display()
                ))
                .into());
            }
        }
        for p in &loaded {
            let s = file
                .plugins
                .config
                .get(&p.name)
                .cloned()
                .unwrap_or_default();
            let field = |f: &str, e: String| {
                BadInput(format!(
                    "{}: field `plugins.config.{}.{f}`: {e}",
                    file_path.display(),
                    p.name
                ))
            };
            let mut sandbox = Sandbox::default();
            for d in &s.grant_dirs {
                let host_dir = base.join(d);
                sandbox.dirs.push(
                    DirGrant::parse(
                        &format!("{}:/{}", host_dir.display(), d.display()).replace("//", "/"),
                    )
                    .map_err(|e| field("grant_dirs", e))?,
                );
            }
            for o in s.allow_http.iter().filter(|o| *o != CANDIDATE) {
                sandbox
                    .http
                    .push(Origin::parse(o).map_err(|e| field("allow_http", e))?);
            }
            if let Some(t) = s.timeout {
                sandbox.timeout = t;
            }
            if let Some(m) = &s.memory {
                sandbox.memory = crate::units::parse_size(m).map_err(|e| field("memory", e))?;
            }
            let config = PluginConfig {
                settings: s.settings.clone().into_iter().collect(),
                sandbox,
                on_error: s.on_error.unwrap_or_default(),
            };
            configs.insert(
                p.name.clone(),
                (config, s.allow_http.iter().any(|o| o == CANDIDATE)),
            );
        }
        Ok(Plugins {
            host,
            loaded,
            configs,
        })
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
