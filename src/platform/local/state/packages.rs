//! From bits to droplet: a package record awaiting its upload, the upload
//! put in place, staging (a build unpacks the package into a new droplet),
//! and droplet copies for the other color. Staging and the upload's final
//! steps touch the disk: callers run them on the blocking pool.

use super::super::records::*;
use super::{ApiErr, ApiResult, Platform};
use crate::platform::v3;
use std::path::{Path, PathBuf};

/// Where an upload streams to before it is complete: a package's zip is
/// either whole or absent.
pub fn partial_upload(zip: &Path) -> PathBuf {
    zip.with_extension("zip.part")
}

impl Platform {
    /// A `bits` package for the app, awaiting its upload.
    pub fn create_package(&self, app_guid: &str) -> ApiResult<v3::Package> {
        self.app(app_guid)?;
        let guid = new_guid();
        let package = v3::Package {
            guid: guid.clone(),
            kind: "bits".into(),
            state: "AWAITING_UPLOAD".into(),
            created_at: now(),
        };
        let zip = self.dir.join("packages").join(format!("{guid}.zip"));
        let rec = PackageRec {
            package: package.clone(),
            app_guid: app_guid.into(),
            zip,
        };
        self.put(PACKAGE, &guid, &rec)?;
        Ok(package)
    }

    /// Puts a complete upload (at `partial_upload` of the package's zip) in
    /// place and marks the package READY.
    pub fn package_uploaded(&self, guid: &str) -> ApiResult<v3::Package> {
        self.update(PACKAGE, guid, |rec: &mut PackageRec| {
            let partial = partial_upload(&rec.zip);
            std::fs::rename(&partial, &rec.zip)
                .map_err(|e| ApiErr::internal(format!("{}: {e}", rec.zip.display())))?;
            rec.package.state = "READY".into();
            Ok(rec.package.clone())
        })
    }

    /// Unpacks an uploaded package into a new droplet (kept for rollback,
    /// see `retention`). Blocking: unzipping a large app takes a while.
    pub fn stage(&self, package_guid: &str) -> ApiResult<BuildRec> {
        let pkg: PackageRec = self.get(PACKAGE, package_guid)?;
        if pkg.package.state != "READY" {
            return Err(ApiErr::unprocessable(format!(
                "package {package_guid} is {}, not READY",
                pkg.package.state
            )));
        }
        let build_guid = new_guid();
        let droplet_guid = new_guid();
        let dir = self.dir.join("droplets").join(&droplet_guid);
        let staged = super::super::staging::unpack(&pkg.zip, &dir);
        let mut build = v3::Build {
            guid: build_guid.clone(),
            state: "STAGED".into(),
            error: None,
            package: Some(v3::Guid {
                guid: package_guid.into(),
            }),
            droplet: Some(v3::Guid {
                guid: droplet_guid.clone(),
            }),
            created_at: now(),
        };
        let failed = staged.as_ref().err().map(|e| format!("StagingError - {e}"));
        let rec = self.transaction(|tx| {
            match staged {
                Ok(process_types) => {
                    let droplet = v3::Droplet {
                        guid: droplet_guid.clone(),
                        state: "STAGED".into(),
                        process_types,
                        created_at: now(),
                        metadata: Default::default(),
                    };
                    let rec = DropletRec {
                        droplet,
                        app_guid: pkg.app_guid.clone(),
                        dir: dir.clone(),
                    };
                    tx.put(DROPLET, &droplet_guid, &rec)?;
                    // The droplet holds the files now; the zip would only
                    // fill the disk (CF, too, expires a package's bits).
                    tx.update(PACKAGE, package_guid, |p: &mut PackageRec| {
                        p.package.state = "EXPIRED".into();
                        Ok(())
                    })?;
                }
                Err(_) => {
                    build.state = "FAILED".into();
                    build.error = failed.clone();
                    build.droplet = None;
                }
            }
            let rec = BuildRec {
                build,
                app_guid: pkg.app_guid.clone(),
            };
            tx.put(BUILD, &build_guid, &rec)?;
            Ok(rec)
        });
        if failed.is_some() || rec.is_err() {
            let _ = std::fs::remove_dir_all(&dir);
        } else {
            let _ = std::fs::remove_file(&pkg.zip);
        }
        let rec = rec?;
        self.prune(&rec.app_guid)?;
        Ok(rec)
    }

    /// `source`'s droplet for another app. Droplets are immutable, so the
    /// copy shares the source's files. Blocking: it prunes old droplets.
    pub fn copy_droplet(&self, source: &str, app_guid: &str) -> ApiResult<v3::Droplet> {
        let droplet = self.transaction(|tx| {
            tx.get::<AppRec>(APP, app_guid)?;
            let src: DropletRec = tx.get(DROPLET, source)?;
            let guid = new_guid();
            let droplet = v3::Droplet {
                guid: guid.clone(),
                created_at: now(),
                ..src.droplet
            };
            let rec = DropletRec {
                droplet: droplet.clone(),
                app_guid: app_guid.to_string(),
                dir: src.dir,
            };
            tx.put(DROPLET, &guid, &rec)?;
            Ok(droplet)
        })?;
        self.prune(app_guid)?;
        Ok(droplet)
    }
}
