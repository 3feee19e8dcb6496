//! The compiled-code cache: components compiled once (by `plugin check` or the
//! first load) and kept as `.cwasm` files, so a deploy never spends seconds
//! compiling a JavaScript or Python plugin.
//!
//! An entry is keyed by the component's sha256 and the engine's
//! compatibility hash, and comes with a sidecar recording that key and the
//! sha256 of the `.cwasm` itself. Loading native code is `unsafe`, so an entry
//! is used only if the directory is ours alone (owner-only permissions) and
//! the sidecar matches; anything else is recompiled and rewritten.

use fs_err as fs;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a loaded component came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    /// Loaded from a verified `.cwasm`.
    Hit,
    /// Compiled now (and written to the cache when it is usable).
    Compiled,
}

pub struct Cache {
    dir: Option<PathBuf>,
    engine_hash: String,
}

impl Cache {
    /// `BLUEGREEN_CACHE_DIR`, else `$XDG_CACHE_HOME/bluegreen/components`, else
    /// `~/.cache/bluegreen/components`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("BLUEGREEN_CACHE_DIR").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("bluegreen").join("components"))
    }

    /// A cache in `dir`; `None` compiles every time.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Cache {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Cache {
            dir,
            engine_hash: format!("{:016x}", h.finish()),
        }
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    fn key(&self, wasm_sha256: &str) -> String {
        format!("{wasm_sha256}-{}", self.engine_hash)
    }

    /// The component for `wasm` (whose sha256 is `wasm_sha256`), from the
    /// cache when a verified entry exists, else compiled and stored.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        wasm_sha256: &str,
    ) -> wasmtime::Result<(Component, CacheStatus)> {
        let Some(dir) = self.dir.as_deref() else {
            return Ok((Component::new(engine, wasm)?, CacheStatus::Compiled));
        };
        let key = self.key(wasm_sha256);
        let cwasm = dir.join(format!("{key}.cwasm"));
        let sidecar = dir.join(format!("{key}.cwasm.sha256"));
        if dir_is_private(dir)
            && let Some(component) = load_verified(engine, &key, &cwasm, &sidecar)
        {
            return Ok((component, CacheStatus::Hit));
        }
        let compiled = engine.precompile_component(wasm)?;
        // A cache we cannot write only costs speed, never correctness.
        let _ = store(dir, &key, &cwasm, &sidecar, &compiled);
        // SAFETY: these bytes were produced by this engine just now.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, CacheStatus::Compiled))
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Only a directory owned by us and closed to everyone else may hold native
/// code we are about to run.
fn dir_is_private(dir: &Path) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    std::fs::symlink_metadata(dir)
        .map(|m| m.is_dir() && m.uid() == uid && m.mode() & 0o077 == 0)
        .unwrap_or(false)
}

fn load_verified(engine: &Engine, key: &str, cwasm: &Path, sidecar: &Path) -> Option<Component> {
    let recorded = std::fs::read_to_string(sidecar).ok()?;
    let (recorded_key, recorded_sha) = recorded.trim().split_once(' ')?;
    let bytes = std::fs::read(cwasm).ok()?;
    if recorded_key != key || recorded_sha != sha256_hex(&bytes) {
        return None;
    }
    // SAFETY: the file is the one this cache wrote for this exact component
    // and engine (key and content hash verified above) in a directory only we
    // can write; `deserialize_file` still rejects other engines' output.
    unsafe { Component::deserialize_file(engine, cwasm).ok() }
}

fn store(
    dir: &Path,
    key: &str,
    cwasm: &Path,
    sidecar: &Path,
    compiled: &[u8],
) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // An existing directory keeps its mode; close it if it was created open.
    let perms = std::fs::metadata(dir)?.permissions();
    if perms.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    // Write-then-rename, so a reader never sees half an entry.
    let tmp = dir.join(format!(".{key}.{}.tmp", std::process::id()));
    fs::File::create(&tmp)?.write_all(compiled)?;
    fs::rename(&tmp, cwasm)?;
    let tmp = dir.join(format!(".{key}.{}.sha.tmp", std::process::id()));
    fs::write(&tmp, format!("{key} {}\n", sha256_hex(compiled)))?;
    fs::rename(&tmp, sidecar)?;
    Ok(())
}
