//! A record of each app and task process group while it runs, so a daemon
//! that was killed (and so could not stop them) stops them at its next
//! start, instead of starting second copies beside them.
//!
//! A record names the group leader's pid and start time. At the next start
//! a group is signalled only when it is provably ours: its leader still
//! runs with the recorded start time, or the leader is gone but the group
//! lives on (Linux never hands out a pid still in use as a group id).

use super::daemon::process_started;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Serialize, Deserialize)]
struct Record {
    pid: u32,
    started: u64,
}

/// Removes its record when the process group it names is done.
pub struct PidFile(Option<PathBuf>);

impl PidFile {
    /// Records `pid` (a group leader) in `dir`. Best effort: a process
    /// that could not be recorded still runs.
    pub fn record(dir: &Path, pid: Option<u32>) -> PidFile {
        let Some(pid) = pid else { return PidFile(None) };
        let Some(started) = process_started(pid) else {
            return PidFile(None);
        };
        let path = dir.join(format!("{pid}.json"));
        let body = serde_json::to_vec(&Record { pid, started }).expect("serializable");
        PidFile(std::fs::write(&path, body).ok().map(|()| path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn signal_group(pid: u32, sig: i32) -> bool {
    // SAFETY: a plain syscall; the caller has checked the group is ours.
    unsafe { libc::kill(-(pid as i32), sig) == 0 }
}

/// Stops every process group recorded in `dir` that is still ours: SIGTERM,
/// then SIGKILL after `grace`. Returns how many groups it stopped.
pub fn reap(dir: &Path, grace: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut ours = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let record: Option<Record> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let _ = std::fs::remove_file(&path);
        let Some(r) = record else { continue };
        let leader_ours = match process_started(r.pid) {
            Some(started) => started == r.started,
            // The leader is gone: is its group still alive?
            None => signal_group(r.pid, 0),
        };
        if leader_ours && signal_group(r.pid, libc::SIGTERM) {
            ours.push(r.pid);
        }
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && ours.iter().any(|p| signal_group(*p, 0)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in &ours {
        signal_group(*p, libc::SIGKILL);
    }
    ours.len()
}
