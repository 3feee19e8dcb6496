//! The first-party plugins, compiled into the binary (`build.rs` builds
//! them for wasm32-wasip2 first), so an installed `bluegreen` needs no
//! source tree: a deploy file names them (`plugins: { builtin:
//! [migration-guard] }`) and an org policy requires them (`path:
//! builtin:migration-guard`) and pins them by the sha256 `bluegreen plugin
//! list` prints. The host loads components from files (its compiled-code
//! cache is keyed by file and digest), so each is written once, under the
//! cache directory, before it is loaded.

use std::path::{Path, PathBuf};

/// How a policy names a built-in plugin where a path would go.
pub const PREFIX: &str = "builtin:";

pub struct Builtin {
    pub name: &'static str,
    pub about: &'static str,
    pub wasm: &'static [u8],
}

macro_rules! builtin {
    ($name:literal, $about:literal) => {
        Builtin {
            name: $name,
            about: $about,
            wasm: include_bytes!(concat!(
                env!("BLUEGREEN_BUILT_PLUGINS"),
                "/",
                $name,
                ".wasm"
            )),
        }
    };
}

pub const ALL: &[Builtin] = &[
    builtin!(
        "migration-guard",
        "blocks destructive or locking migrations (migration-safety-check)"
    ),
    builtin!(
        "http-probe",
        "probes the candidate's URL with settings (health-check)"
    ),
    builtin!(
        "notify",
        "posts each deploy's end or failure, and the question at each pause (approval), to a webhook"
    ),
    builtin!(
        "slo-check",
        "judges an analysis window against SLO settings (analyze)"
    ),
];

pub fn find(name: &str) -> Option<&'static Builtin> {
    ALL.iter().find(|b| b.name == name)
}

/// The names, for an error that lists them.
pub fn names() -> String {
    ALL.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
}

impl Builtin {
    pub fn sha256(&self) -> String {
        super::sha256_hex(self.wasm)
    }

    /// Its component as a file under `dir` (written when missing or
    /// different), for the host to load.
    pub fn materialize(&self, dir: &Path) -> Result<PathBuf, String> {
        let path = dir.join(format!("{}.wasm", self.name));
        if std::fs::read(&path).ok().as_deref() == Some(self.wasm) {
            return Ok(path);
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // Written aside and renamed: a concurrent deploy never loads half.
        let tmp = dir.join(format!(".{}.{}.tmp", self.name, std::process::id()));
        std::fs::write(&tmp, self.wasm).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}

/// `builtin:NAME` → the plugin, `Err` naming the ones there are; anything
/// else is a path (`None`).
pub fn named(spec: &Path) -> Option<Result<&'static Builtin, String>> {
    let name = spec.to_str()?.strip_prefix(PREFIX)?;
    Some(find(name).ok_or_else(|| {
        format!(
            "`{PREFIX}{name}` is not a built-in plugin; there are: {}",
            names()
        )
    }))
}

/// Where built-in plugins are written for loading: beside the compiled-code
/// cache, not in it (the cache keeps only its own entries).
pub fn dir() -> PathBuf {
    let cache = super::Cache::default_dir().unwrap_or_else(std::env::temp_dir);
    cache
        .parent()
        .unwrap_or(&cache)
        .join("bluegreen-builtin-plugins")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_a_component_and_is_named_by_its_prefix() {
        for b in ALL {
            assert_eq!(&b.wasm[..4], b"\0asm", "{}", b.name);
            assert!(
                named(Path::new(&format!("builtin:{}", b.name)))
                    .unwrap()
                    .is_ok()
            );
        }
        assert!(named(Path::new("plugins/guard.wasm")).is_none());
        // The input that would load some other file: a name not built in.
        let err = named(Path::new("builtin:../../etc/passwd"))
            .unwrap()
            .err()
            .unwrap();
        assert!(err.contains("migration-guard"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let p = ALL[0].materialize(dir.path()).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), ALL[0].wasm);
        assert_eq!(ALL[0].materialize(dir.path()).unwrap(), p);
    }
}
