//! Staging on the local platform: a package is a zip of the app directory; a
//! droplet is that zip unpacked into its own directory (droplets are kept, so
//! a rollback is just pointing the app at an older one).

use std::collections::BTreeMap;
use std::path::Path;

/// Unpacks `zip` into `dir`; returns the process types from a `Procfile`.
pub fn unpack(zip: &Path, dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let file = std::fs::File::open(zip).map_err(|e| format!("{}: {e}", zip.display()))?;
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| format!("{}: not a zip archive: {e}", zip.display()))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // `extract` refuses entries that would land outside `dir` (`../`, absolute).
    archive
        .extract(dir)
        .map_err(|e| format!("unpacking {}: {e}", zip.display()))?;
    let procfile = dir.join("Procfile");
    let mut types = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(&procfile) {
        for line in text.lines() {
            if let Some((name, command)) = line.split_once(':') {
                let name = name.trim();
                if !name.is_empty() && !name.starts_with('#') {
                    types.insert(name.to_string(), command.trim().to_string());
                }
            }
        }
    }
    Ok(types)
}
