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
