//! The analysis window under way, as its runner last judged it, kept in a
//! file beside the journal. `status --watch` runs in another process (often
//! another terminal) and must show the numbers the judge is looking at, not
//! a second reading of its own that could disagree with the verdict to come.
//! The file is a view: the runner writes it at every look and removes it
//! when the deploy ends; a reader that finds none shows none.

use serde_json::Value;
use std::path::{Path, PathBuf};

fn path(dir: &Path) -> PathBuf {
    dir.join("window.json")
}

/// Replaces the view with `now`. Written to a temporary name and renamed, so
/// a reader never sees half of it. Best effort: a deploy never fails over a
/// view (a full disk shows in the journal's own writes first).
pub fn write(dir: &Path, now: &Value) {
    let tmp = dir.join("window.json.tmp");
    let bytes = serde_json::to_vec(now).unwrap_or_default();
    if std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, path(dir));
    }
}

/// The last look of the window under way, if a runner wrote one.
pub fn read(dir: &Path) -> Option<Value> {
    let bytes = std::fs::read(path(dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes the view once the deploy is over (or before one starts, so an
/// old window is never shown as the new deploy's).
pub fn clear(dir: &Path) {
    let _ = std::fs::remove_file(path(dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_read_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), None);
        write(
            dir.path(),
            &serde_json::json!({"color": "green", "requests": 3}),
        );
        assert_eq!(read(dir.path()).unwrap()["requests"], 3);
        write(
            dir.path(),
            &serde_json::json!({"color": "green", "requests": 9}),
        );
        assert_eq!(read(dir.path()).unwrap()["requests"], 9);
        assert!(!dir.path().join("window.json.tmp").exists());
        clear(dir.path());
        assert_eq!(read(dir.path()), None);
    }

    #[test]
    fn a_torn_file_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("window.json"), b"{\"color\": \"gr").unwrap();
        assert_eq!(read(dir.path()), None);
    }
}
