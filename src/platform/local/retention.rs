//! What the local platform keeps of an app's droplets and packages. Like
//! Cloud Foundry (`max_retained_droplets_per_app`, `max_valid_packages_stored`)
//! it keeps the newest few of each per app and always the app's current
//! droplet, so disk use stays bounded while `rollback` still finds the
//! releases it can go back to. A droplet's files go only when no droplet
//! record still points at them: copies for the other color share them.

use super::records::*;
use super::state::{ApiResult, Platform};
use std::collections::BTreeSet;

/// Droplets kept per app besides the current one: the last few releases.
pub const DROPLETS_KEPT: usize = 5;
/// Packages (their records; staged ones have no bits left) kept per app.
pub const PACKAGES_KEPT: usize = 5;

impl Platform {
    /// Deletes `app_guid`'s droplets and packages past what is kept.
    pub fn prune(&self, app_guid: &str) -> ApiResult<()> {
        let current = self.app(app_guid)?.current_droplet;
        let droplets: Vec<DropletRec> = self.all(DROPLET)?;
        let mine: Vec<&DropletRec> = droplets.iter().filter(|d| d.app_guid == app_guid).collect();
        let drop_count = mine.len().saturating_sub(DROPLETS_KEPT);
        let doomed: Vec<&DropletRec> = mine
            .into_iter()
            .take(drop_count)
            .filter(|d| current.as_deref() != Some(d.droplet.guid.as_str()))
            .collect();
        let doomed_guids: BTreeSet<&str> = doomed.iter().map(|d| d.droplet.guid.as_str()).collect();
        for d in &doomed {
            self.delete(DROPLET, &d.droplet.guid)?;
        }
        let still_used: BTreeSet<&std::path::Path> = droplets
            .iter()
            .filter(|d| !doomed_guids.contains(d.droplet.guid.as_str()))
            .map(|d| d.dir.as_path())
            .collect();
        for d in doomed {
            if !still_used.contains(d.dir.as_path()) {
                let _ = std::fs::remove_dir_all(&d.dir);
            }
        }
        let packages: Vec<PackageRec> = self.all(PACKAGE)?;
        let mine: Vec<&PackageRec> = packages.iter().filter(|p| p.app_guid == app_guid).collect();
        let drop_count = mine.len().saturating_sub(PACKAGES_KEPT);
        for p in mine.into_iter().take(drop_count) {
            self.delete(PACKAGE, &p.package.guid)?;
            let _ = std::fs::remove_file(&p.zip);
        }
        Ok(())
    }
}
