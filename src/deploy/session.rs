//! What every command that acts on an app prepares the same way: the deploy
//! file read and checked (`Loaded`), the org policy found in its documented
//! order, the plugins loaded once against it (`Session`), the site on the
//! platform, and the lease a deploy holds. `deploy`, `rollback`, `recover`,
//! `plan` and `policy check` start here; `status` and `history` need only
//! the file and the site.

use crate::BadInput;
use crate::config::{DeployFile, policy};
use crate::deploy::lock::hostname;
use crate::deploy::plugins::Plugins;
use crate::deploy::site::{self, Site};
use crate::platform::lease::Lease;
use std::path::{Path, PathBuf};

/// A deploy file read and checked, with the paths it resolves.
pub struct Loaded {
    pub file: DeployFile,
    pub path: PathBuf,
    pub base: PathBuf,
    pub app_dir: PathBuf,
}

impl Loaded {
    pub fn read(path: &Path) -> anyhow::Result<Loaded> {
        let file = DeployFile::load(path)?;
        let path = std::path::absolute(path)?;
        let base = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        let app_dir = base.join(&file.path);
        if !app_dir.is_dir() {
            return Err(BadInput(format!(
                "{}: field `path`: {} is not a directory (point it at the app's code)",
                path.display(),
                app_dir.display()
            ))
            .into());
        }
        Ok(Loaded {
            file,
            path,
            base,
            app_dir,
        })
    }

    /// The org policy for this deploy file, in the documented order: the
    /// system's, with `flag`, else `$BLUEGREEN_POLICY`, else the file's
    /// `policy:` layered on it.
    pub fn policy(&self, flag: Option<&Path>) -> anyhow::Result<policy::Loaded> {
        policy::find(
            policy::system_path(),
            flag,
            std::env::var_os("BLUEGREEN_POLICY").map(PathBuf::from),
            self.file.policy.as_ref().map(|p| self.base.join(p)),
        )
        .map_err(|e| BadInput(e).into())
    }

    /// The site on the platform; with `create`, the platform is started
    /// (locally) and the apps and route made where missing (by a run that
    /// holds the app's lock already; a deploy takes it in between, see
    /// `survey`).
    pub async fn site(&self, create: bool) -> anyhow::Result<Option<Site>> {
        let Some((client, port)) = site::connect(&self.file, create).await? else {
            return Ok(None);
        };
        Site::open(&self.file, client, port, create).await
    }

    /// What a deploy finds of its site, read-only, the platform started
    /// (locally) if need be: the apps and route are made (`Survey::create`)
    /// only once the app's lock is held.
    pub async fn survey(&self) -> anyhow::Result<site::Survey> {
        let (client, port) = site::connect(&self.file, true)
            .await?
            .ok_or_else(|| anyhow::anyhow!("the local platform did not start"))?;
        Site::survey(&self.file, client, port, true).await
    }

    /// The lease a deploy `id` of this app holds while it runs.
    pub fn lease(&self, id: &str) -> Lease {
        Lease {
            id: id.into(),
            app: self.file.app.clone(),
            host: hostname(),
            pid: std::process::id(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            since: crate::units::now_rfc3339(),
            expires: 0,
            process: crate::platform::lease::ProcessIdentity::this(),
        }
    }
}

/// The file, its policy and its plugins, loaded once.
pub struct Session {
    pub loaded: Loaded,
    pub plugins: Plugins,
}

impl Session {
    pub async fn prepare(path: &Path, policy_flag: Option<&Path>) -> anyhow::Result<Session> {
        let mut loaded = Loaded::read(path)?;
        let policy = loaded.policy(policy_flag)?;
        policy.policy.apply(&mut loaded.file);
        let plugins = Plugins::load(&loaded.file, &loaded.path, &loaded.base, policy).await?;
        Ok(Session { loaded, plugins })
    }
}
