//! The compiled-code cache: a hit after the first load, and entries that are
//! corrupt, tampered with, or in a directory others can write are recompiled.

use crate::util::*;
use bluegreen::plugin::{CacheStatus, PluginHost};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn entries(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

async fn status(dir: &Path) -> CacheStatus {
    let host = PluginHost::new(Some(dir.to_path_buf())).unwrap();
    load(&host, "hello").await.cache
}

#[tokio::test]
async fn second_load_is_a_cache_hit_and_bad_entries_are_recompiled() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    assert_eq!(status(&dir).await, CacheStatus::Compiled);
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(status(&dir).await, CacheStatus::Hit);

    let cwasm = entries(&dir, ".cwasm").pop().expect("one entry");
    let sidecar = entries(&dir, ".cwasm.sha256").pop().expect("one sidecar");
    assert!(
        cwasm
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&bluegreen_sha("hello"))
    );

    // Flip one byte in the compiled code: the content hash no longer matches.
    let mut bytes = std::fs::read(&cwasm).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&cwasm, &bytes).unwrap();
    assert_eq!(status(&dir).await, CacheStatus::Compiled);
    assert_eq!(status(&dir).await, CacheStatus::Hit);

    // Truncated code.
    std::fs::write(&cwasm, &std::fs::read(&cwasm).unwrap()[..100]).unwrap();
    assert_eq!(status(&dir).await, CacheStatus::Compiled);

    // A sidecar rewritten to match foreign code is still refused: wrong key.
    let text = std::fs::read_to_string(&sidecar).unwrap();
    let (_, sha) = text.trim().split_once(' ').unwrap();
    std::fs::write(&sidecar, format!("someone-else {sha}\n")).unwrap();
    assert_eq!(status(&dir).await, CacheStatus::Compiled);
    assert_eq!(status(&dir).await, CacheStatus::Hit);
}

#[tokio::test]
async fn a_cache_directory_others_can_write_is_not_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    assert_eq!(status(&dir).await, CacheStatus::Compiled);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(
        status(&dir).await,
        CacheStatus::Compiled,
        "world-writable cache used"
    );
    // Rewriting the entry closed the directory again.
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(status(&dir).await, CacheStatus::Hit);
}

fn bluegreen_sha(name: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        std::fs::read(component(name)).unwrap(),
    ))
}

/// The entry files of the plugin `name` (its `.cwasm` and sidecar).
fn entry_of(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let sha = bluegreen_sha(name);
    let cwasm = entries(dir, ".cwasm")
        .into_iter()
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(&sha))
        .unwrap();
    let sidecar = cwasm.with_extension("cwasm.sha256");
    (cwasm, sidecar)
}

/// Plants `from`'s compiled code under `to`'s key, with a sidecar that
/// matches it, owned by another user (as one who could write the directory
/// while it was open would leave it).
fn plant(dir: &Path, from: &str, to: &str, owner: Option<u32>) {
    let (code, _) = entry_of(dir, from);
    let (target, target_sidecar) = entry_of(dir, to);
    let key = target.file_stem().unwrap().to_string_lossy().to_string();
    let bytes = std::fs::read(&code).unwrap();
    std::fs::remove_file(&target).unwrap();
    std::fs::write(&target, &bytes).unwrap();
    std::fs::write(
        &target_sidecar,
        format!("{key} {}\n", bluegreen::plugin::sha256_hex(&bytes)),
    )
    .unwrap();
    if let Some(uid) = owner {
        for p in [&target, &target_sidecar] {
            std::os::unix::fs::chown(p, Some(uid), None).unwrap();
        }
    }
}

/// Defect 1 of «7 · Hardening»: entries planted while the directory was
/// open stayed after it was closed, and were run as another plugin's code.
#[tokio::test]
async fn defect_1_code_planted_in_the_cache_is_never_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let host = || PluginHost::new(Some(dir.clone())).unwrap();
    let hooks = |p: &bluegreen::plugin::Plugin| p.hooks.len();
    let hello_hooks = hooks(&load(&host(), "hello").await);
    assert!(hello_hooks > 1, "hello handles every hook");
    load(&host(), "http-probe").await;

    // The directory is found open; another user planted http-probe's code
    // under hello's key. Loading some other plugin closes the directory.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    plant(&dir, "http-probe", "hello", Some(65534));
    load(&host(), "http-probe").await;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let p = load(&host(), "hello").await;
    assert_eq!(
        p.cache,
        CacheStatus::Compiled,
        "the planted entry was not used"
    );
    assert_eq!(hooks(&p), hello_hooks, "hello's own code runs");

    // In a private directory: a planted entry owned by someone else, a
    // symlink, a hard link and a group-writable file are all refused.
    assert_eq!(load(&host(), "hello").await.cache, CacheStatus::Hit);
    plant(&dir, "http-probe", "hello", Some(65534));
    let p = load(&host(), "hello").await;
    assert_eq!((p.cache, hooks(&p)), (CacheStatus::Compiled, hello_hooks));

    let (probe_code, _) = entry_of(&dir, "http-probe");
    let (hello_code, hello_sidecar) = entry_of(&dir, "hello");
    let probe_sha = bluegreen::plugin::sha256_hex(&std::fs::read(&probe_code).unwrap());
    let key = hello_code
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .to_string();
    for attack in ["symlink", "hardlink", "group-writable"] {
        std::fs::remove_file(&hello_code).unwrap();
        match attack {
            "symlink" => std::os::unix::fs::symlink(&probe_code, &hello_code).unwrap(),
            "hardlink" => std::fs::hard_link(&probe_code, &hello_code).unwrap(),
            _ => {
                std::fs::copy(&probe_code, &hello_code).unwrap();
                std::fs::set_permissions(&hello_code, std::fs::Permissions::from_mode(0o664))
                    .unwrap();
            }
        }
        std::fs::write(&hello_sidecar, format!("{key} {probe_sha}\n")).unwrap();
        let p = load(&host(), "hello").await;
        assert_eq!(
            (p.cache, hooks(&p)),
            (CacheStatus::Compiled, hello_hooks),
            "{attack}"
        );
    }
    assert_eq!(load(&host(), "hello").await.cache, CacheStatus::Hit);
}

/// «10 · House in order»: a cached load reads neither the component nor
/// its machine code in full while the files are unchanged; a component
/// rewritten in place, even with its old size and mtime put back, is hashed
/// again (its ctime moved), so a pin by digest sees the new content.
#[tokio::test]
async fn a_rewritten_component_is_hashed_again_whatever_its_mtime() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("cache");
    let plugin = tmp.path().join("p.wasm");
    std::fs::copy(component("hello"), &plugin).unwrap();
    let host = PluginHost::new(Some(dir.clone())).unwrap();
    let first = host.load(&plugin).await.unwrap();
    assert_eq!(first.sha256, bluegreen_sha("hello"));
    let again = host.load(&plugin).await.unwrap();
    assert_eq!(
        (again.cache, again.sha256.as_str()),
        (CacheStatus::Hit, first.sha256.as_str())
    );
    assert_eq!(entries(&dir, ".id").len(), 1, "the digest is remembered");

    let mtime = std::fs::metadata(&plugin).unwrap().modified().unwrap();
    std::fs::write(&plugin, std::fs::read(component("gate")).unwrap()).unwrap();
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let touched = std::process::Command::new("touch")
        .arg("-d")
        .arg(format!("@{secs}"))
        .arg(&plugin)
        .status()
        .unwrap();
    assert!(touched.success());
    let swapped = host.load(&plugin).await.unwrap();
    assert_eq!(swapped.sha256, bluegreen_sha("gate"));
}
