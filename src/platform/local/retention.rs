//! What the local platform keeps of an app's droplets and packages. Like
//! Cloud Foundry (`max_retained_droplets_per_app`, `max_valid_packages_stored`)
//! it keeps the newest few of each per app and always the app's current
//! droplet, so disk use stays bounded while `rollback` still finds the
//! releases it can go back to. A droplet's files go only when no droplet
//! record still points at them: copies for the other color share them.
//! The droplets an active deployment runs are kept too.

use super::records::*;
use super::state::{ApiResult, Platform};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Droplets kept per app besides the current one: the last few releases.
pub const DROPLETS_KEPT: usize = 5;
/// Packages (their records; staged ones have no bits left) kept per app.
pub const PACKAGES_KEPT: usize = 5;

impl Platform {
    /// Deletes `app_guid`'s droplets and packages past what is kept: the
    /// records in one transaction (so a droplet made current meanwhile is
    /// seen), then the files no record points at any more (blocking).
    pub fn prune(&self, app_guid: &str) -> ApiResult<()> {
        let (dirs, zips) = self.transaction(|tx| {
            let current = tx.get::<AppRec>(APP, app_guid)?.current_droplet;
            // An active deployment runs its droplet and its previous one
            // side by side, and a cancel goes back to the previous one.
            let deploying: BTreeSet<String> = tx
                .all::<DeploymentRec>(DEPLOYMENT)?
                .into_iter()
                .filter(|d| d.app_guid == app_guid && d.is_active())
                .flat_map(|d| [Some(d.droplet), d.previous_droplet])
                .flatten()
                .collect();
            let droplets: Vec<DropletRec> = tx.all(DROPLET)?;
            let mine: Vec<&DropletRec> =
                droplets.iter().filter(|d| d.app_guid == app_guid).collect();
            let drop_count = mine.len().saturating_sub(DROPLETS_KEPT);
            let doomed: Vec<&DropletRec> = mine
                .into_iter()
                .take(drop_count)
                .filter(|d| current.as_deref() != Some(d.droplet.guid.as_str()))
                .filter(|d| !deploying.contains(&d.droplet.guid))
                .collect();
            let doomed_guids: BTreeSet<&str> =
                doomed.iter().map(|d| d.droplet.guid.as_str()).collect();
            for d in &doomed {
                tx.delete(DROPLET, &d.droplet.guid)?;
            }
            let still_used: BTreeSet<&Path> = droplets
                .iter()
                .filter(|d| !doomed_guids.contains(d.droplet.guid.as_str()))
                .map(|d| d.dir.as_path())
                .collect();
            let dirs: Vec<PathBuf> = doomed
                .into_iter()
                .filter(|d| !still_used.contains(d.dir.as_path()))
                .map(|d| d.dir.clone())
                .collect();
            let packages: Vec<PackageRec> = tx.all(PACKAGE)?;
            let mine: Vec<&PackageRec> =
                packages.iter().filter(|p| p.app_guid == app_guid).collect();
            let drop_count = mine.len().saturating_sub(PACKAGES_KEPT);
            let mut zips = Vec::new();
            for p in mine.into_iter().take(drop_count) {
                tx.delete(PACKAGE, &p.package.guid)?;
                zips.push(p.zip.clone());
            }
            Ok((dirs, zips))
        })?;
        for dir in dirs {
            let _ = std::fs::remove_dir_all(&dir);
        }
        for zip in zips {
            let _ = std::fs::remove_file(&zip);
        }
        Ok(())
    }
}
