//! A record of each app and task process group while it runs, so a daemon
//! that was killed (and so could not stop them) stops them at its next
//! start, instead of starting second copies beside them.
//!
//! A record names the group leader's pid and start time. At the next start
//! a group is signalled only when it is provably ours: its leader still
//! runs with the recorded start time, or the leader is gone but the group
//! lives on (Linux never hands out a pid still in use as a group id).
//! A record also names the run's marker and cgroup (`tracking.rs`), which
//! reach the processes that left the group: those with the marker in their
//! environment (only our user can read it, so only our processes match)
//! and those in the cgroup.

use super::cgroup::Group;
use super::daemon::process_started;
use super::procs;
use super::tracking::Tracked;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Serialize, Deserialize)]
struct Record {
    pid: u32,
    started: u64,
    #[serde(default)]
    marker: Option<String>,
    #[serde(default)]
    cgroup: Option<PathBuf>,
}

/// Removes its record when the process group it names is done.
pub struct PidFile(Option<PathBuf>);

impl PidFile {
    /// Records `pid` (a group leader) in `dir`. Best effort: a process
    /// that could not be recorded still runs.
    pub fn record(dir: &Path, pid: Option<u32>, tracked: &Tracked) -> PidFile {
        let Some(pid) = pid else { return PidFile(None) };
        let Some(started) = process_started(pid) else {
            return PidFile(None);
        };
        let path = dir.join(format!("{pid}.json"));
        let record = Record {
            pid,
            started,
            marker: Some(tracked.marker.clone()),
            cgroup: tracked.cgroup.as_ref().map(|g| g.dir.clone()),
        };
        let body = serde_json::to_vec(&record).expect("serializable");
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

/// Stops every process group recorded in `dir` that is still ours, and the
/// processes that left them: SIGTERM, then SIGKILL after `grace`. Returns
/// how many groups and stray processes it stopped.
pub fn reap(dir: &Path, grace: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut ours = Vec::new();
    let mut markers = Vec::new();
    let mut cgroups = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let record: Option<Record> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let _ = std::fs::remove_file(&path);
        let Some(r) = record else { continue };
        markers.extend(r.marker);
        cgroups.extend(r.cgroup.filter(|d| d.is_dir()));
        let leader_ours = match process_started(r.pid) {
            Some(started) => started == r.started,
            // The leader is gone: is its group still alive?
            None => signal_group(r.pid, 0),
        };
        if leader_ours && signal_group(r.pid, libc::SIGTERM) {
            ours.push(r.pid);
        }
    }
    let marked = || -> Vec<procs::Proc> {
        procs::table()
            .into_iter()
            .filter(|p| !p.zombie)
            .filter(|p| procs::marker(p.pid).is_some_and(|m| markers.contains(&m)))
            .collect()
    };
    let strays = marked();
    for p in &strays {
        procs::signal(p, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline
        && (ours.iter().any(|p| signal_group(*p, 0)) || strays.iter().any(procs::alive))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for p in &ours {
        signal_group(*p, libc::SIGKILL);
    }
    for p in marked() {
        procs::signal(&p, libc::SIGKILL);
    }
    // What is in the runs' cgroups goes too, and the groups with it.
    for dir in cgroups {
        let parent = dir.parent().map(Path::to_path_buf);
        Group::existing(dir).remove();
        // The killed daemon's directory of groups, once it is empty.
        if let Some(p) = parent {
            let _ = std::fs::remove_dir(p);
        }
    }
    ours.len() + strays.len()
}
