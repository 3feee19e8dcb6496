//! The compiled-code cache: components compiled once (by `plugin check` or the
//! first load) and kept as `.cwasm` files, so a deploy never spends seconds
//! compiling a JavaScript or Python plugin.
//!
//! An entry is keyed by the component's sha256 and the engine's
//! compatibility hash, and comes with a sidecar recording that key and the
//! sha256 of the `.cwasm` itself. Loading native code is `unsafe`, so an entry
//! is used only if the directory is ours alone (owner-only permissions), the
//! entry and its sidecar are regular files we own that nobody else can
//! write, with one link, opened without following symlinks, and the sidecar
//! matches the bytes read; those very bytes are what is deserialized. A
//! directory found open to others is emptied before it is closed and used:
//! anything planted while it was open goes with it.
//!
//! Hashing a 15 MB JavaScript component and its 40 MB of machine code on
//! every load would cost tens of milliseconds, so both hashes are tied to
//! the file's identity when taken: device, inode, size, mtime and ctime.
//! Any write changes mtime and ctime, a replacement changes the inode, and
//! no unprivileged process can set a ctime, so while the identity is the
//! same the content is; when it is not, the full hash is taken again. The
//! machine code is then mapped (`deserialize_file`) rather than read.

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
        let usable = make_private(dir);
        if usable && let Some(component) = load_verified(engine, &key, &cwasm, &sidecar) {
            return Ok((component, CacheStatus::Hit));
        }
        let compiled = engine.precompile_component(wasm)?;
        // A cache we cannot write only costs speed, never correctness.
        if usable {
            let _ = store(dir, &key, &cwasm, &sidecar, &compiled);
        }
        // SAFETY: these bytes were produced by this engine just now.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, CacheStatus::Compiled))
    }
}

/// What a file's content is tied to (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity([i64; 7]);

impl Identity {
    pub fn of(m: &std::fs::Metadata) -> Identity {
        Identity([
            m.dev() as i64,
            m.ino() as i64,
            m.size() as i64,
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec(),
        ])
    }

    fn render(&self) -> String {
        self.0
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(":")
    }

    fn parse(s: &str) -> Option<Identity> {
        let v: Vec<i64> = s
            .split(':')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        Some(Identity(v.try_into().ok()?))
    }
}

impl Cache {
    /// Where the digest of the component at `path` is remembered.
    fn digest_entry(&self, path: &Path) -> Option<PathBuf> {
        let dir = self.dir.as_deref()?;
        let canonical = std::fs::canonicalize(path).ok()?;
        let name = sha256_hex(canonical.as_os_str().as_encoded_bytes());
        Some(dir.join(format!("wasm-{name}.id")))
    }

    /// The sha256 and size of the component at `path` as last hashed, if the
    /// file's identity has not changed since.
    pub fn known_digest(&self, path: &Path) -> Option<(String, u64)> {
        let entry = self.digest_entry(path)?;
        if !make_private(self.dir.as_deref()?) {
            return None;
        }
        let recorded = String::from_utf8(read_owned(&entry)?).ok()?;
        let (identity, sha) = recorded.trim().split_once(' ')?;
        let now = Identity::of(&std::fs::metadata(path).ok()?);
        (Identity::parse(identity)? == now).then(|| (sha.to_string(), now.0[2] as u64))
    }

    /// Remembers that the component at `path`, as it was when `identity`
    /// was taken (before its bytes were read), hashes to `sha256`.
    pub fn remember_digest(&self, path: &Path, identity: Identity, sha256: &str) {
        let (Some(dir), Some(entry)) = (self.dir.as_deref(), self.digest_entry(path)) else {
            return;
        };
        if make_private(dir) {
            let _ = write_atomically(
                dir,
                &entry,
                format!("{} {sha256}\n", identity.render()).as_bytes(),
            );
        }
    }

    /// The compiled component for `wasm_sha256`, when a verified entry exists.
    pub fn lookup(&self, engine: &Engine, wasm_sha256: &str) -> Option<Component> {
        let dir = self.dir.as_deref()?;
        if !make_private(dir) {
            return None;
        }
        let key = self.key(wasm_sha256);
        let cwasm = dir.join(format!("{key}.cwasm"));
        let sidecar = dir.join(format!("{key}.cwasm.sha256"));
        load_verified(engine, &key, &cwasm, &sidecar)
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes `dir` a directory only we can use, creating it if needed; false if
/// it cannot be (someone else owns it, it is a symlink, ...). A directory
/// that was open to others is emptied first: entries may have been planted
/// or swapped while it was open, and closing it would not take them out.
fn make_private(dir: &Path) -> bool {
    if std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .is_err()
    {
        return false;
    }
    let Ok(m) = std::fs::symlink_metadata(dir) else {
        return false;
    };
    if !m.is_dir() || m.uid() != uid() {
        return false;
    }
    if m.mode() & 0o077 == 0 {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let gone = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        if gone.is_err() {
            return false;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_ok()
}

/// The contents of `path` if it is a regular file of ours, with one link,
/// that nobody else can write; a symlink is not followed.
fn read_owned(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    if !m.is_file() || m.uid() != uid() || m.mode() & 0o022 != 0 || m.nlink() != 1 {
        return None;
    }
    let mut bytes = Vec::with_capacity(m.len() as usize);
    f.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// An owned, private, single-link regular file's identity (no symlink
/// followed), or `None`.
fn owned_identity(path: &Path) -> Option<Identity> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let m = f.metadata().ok()?;
    let ours = m.is_file() && m.uid() == uid() && m.mode() & 0o022 == 0 && m.nlink() == 1;
    ours.then(|| Identity::of(&m))
}

fn load_verified(engine: &Engine, key: &str, cwasm: &Path, sidecar: &Path) -> Option<Component> {
    let recorded = String::from_utf8(read_owned(sidecar)?).ok()?;
    let mut fields = recorded.split_whitespace();
    let (recorded_key, recorded_sha) = (fields.next()?, fields.next()?);
    if recorded_key != key {
        return None;
    }
    // Unchanged since this cache wrote and hashed it: map it, then check it
    // is still that very file.
    let identity = fields.next().and_then(Identity::parse);
    if let Some(identity) = identity
        && owned_identity(cwasm) == Some(identity)
    {
        // SAFETY: as below; the identity stands for the hash (module doc),
        // and is checked again once mapped.
        let component = unsafe { Component::deserialize_file(engine, cwasm).ok()? };
        return (owned_identity(cwasm) == Some(identity)).then_some(component);
    }
    let bytes = read_owned(cwasm)?;
    if recorded_key != key || recorded_sha != sha256_hex(&bytes) {
        return None;
    }
    // SAFETY: these are the bytes this cache wrote for this exact component
    // and engine (key and content hash verified on the very bytes, read from
    // files of ours in a directory only we can write); `deserialize` still
    // rejects other engines' output.
    unsafe { Component::deserialize(engine, &bytes).ok() }
}

fn store(
    dir: &Path,
    key: &str,
    cwasm: &Path,
    sidecar: &Path,
    compiled: &[u8],
) -> std::io::Result<()> {
    // Owner-only whatever the umask: `read_owned` refuses anything more open.
    write_atomically(dir, cwasm, compiled)?;
    let identity = owned_identity(cwasm)
        .map(|i| i.render())
        .unwrap_or_default();
    let line = format!("{key} {} {identity}\n", sha256_hex(compiled));
    write_atomically(dir, sidecar, line.as_bytes())
}

/// Writes `bytes` to `path` owner-only, through a temporary file and a
/// rename, so a reader never sees half of it.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    fs::rename(&tmp, path)?;
    Ok(())
}
