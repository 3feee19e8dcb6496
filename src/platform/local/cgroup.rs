//! One cgroup (v2) per app instance and task run, where the daemon may make
//! them: every process the instance starts stays in it whatever it does
//! (`setsid`, double forks, a scrubbed environment), and `cgroup.kill`
//! stops them all at once, forks in flight included. Where there is no
//! writable cgroup2 hierarchy (a user session without delegation, cgroup
//! v1 only, kernels before 5.14) the supervisor falls back to the process
//! tree and the instance marker (`tracking.rs`).
//!
//! The groups live under `<the daemon's own cgroup>/bluegreen-<pid>`; the
//! path of each is recorded with its process group (`pidfiles.rs`), so a
//! daemon that was killed has its instances' groups emptied at next start.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The directory under which this daemon makes its groups.
#[derive(Debug)]
pub struct Base {
    dir: PathBuf,
}

/// One instance's group.
#[derive(Debug)]
pub struct Group {
    pub dir: PathBuf,
    /// `cgroup.procs`, open for the child to write itself into before exec.
    procs: Option<OwnedFd>,
}

/// Where this process's cgroup is in the cgroup2 hierarchy, if mounted:
/// the `0::PATH` line of `/proc/self/cgroup` under the cgroup2 mount.
fn own_cgroup() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let (root, mount) = mounts.lines().find_map(|l| {
        let (before, after) = l.split_once(" - ")?;
        if after.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let f: Vec<&str> = before.split_whitespace().collect();
        Some((f.get(3)?.to_string(), PathBuf::from(f.get(4)?)))
    })?;
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = groups.lines().find_map(|l| l.strip_prefix("0::"))?;
    // Inside a cgroup namespace the path is relative to the mount's root.
    let rel = path
        .strip_prefix(root.trim_end_matches('/'))
        .unwrap_or(path);
    Some(mount.join(rel.trim_start_matches('/')))
}

impl Base {
    /// Makes this daemon's directory of groups and proves a child can be
    /// put in one (moving a process needs write access where the daemon's
    /// own cgroup is, which a mkdir alone does not show). None when any
    /// step fails: the caller falls back to the process tree.
    pub fn create() -> Option<Base> {
        let dir = own_cgroup()?.join(format!("bluegreen-{}", std::process::id()));
        if !dir.exists() {
            std::fs::create_dir(&dir).ok()?;
        }
        let base = Base { dir };
        if !base.dir.join("cgroup.kill").exists() || !base.probe() {
            base.remove();
            return None;
        }
        Some(base)
    }

    /// Runs `/bin/true` in a group of its own.
    fn probe(&self) -> bool {
        let Ok(group) = self.group("probe") else {
            return false;
        };
        let mut cmd = std::process::Command::new("/bin/true");
        // SAFETY: `join_before_exec` only calls write(2) in the child.
        unsafe { group.join_before_exec(&mut cmd) };
        let ok = super::reaper::output(&mut cmd).is_ok_and(|o| o.status.success());
        group.remove();
        ok
    }

    /// A new, empty group named `name`.
    pub fn group(&self, name: &str) -> std::io::Result<Group> {
        let dir = self.dir.join(name);
        std::fs::create_dir(&dir)?;
        let procs = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))?;
        Ok(Group {
            dir,
            procs: Some(procs.into()),
        })
    }

    /// Empties and removes every group left, then the directory itself
    /// (at shutdown, after the instances were stopped).
    pub fn remove(&self) {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten().filter(|e| e.path().is_dir()) {
                Group::existing(e.path()).remove();
            }
        }
        let _ = std::fs::remove_dir(&self.dir);
    }
}

impl Group {
    /// A group made earlier (a record of a daemon that was killed).
    pub fn existing(dir: PathBuf) -> Group {
        Group { dir, procs: None }
    }

    /// Makes the child `cmd` spawns write itself into this group before it
    /// execs, so it is in the group before it can run or fork anything.
    ///
    /// # Safety
    /// As `CommandExt::pre_exec`: the hook runs between fork and exec.
    pub unsafe fn join_before_exec(&self, cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let Some(fd) = self.procs.as_ref().map(|f| f.as_raw_fd()) else {
            return;
        };
        // SAFETY: write(2) is async-signal-safe; the fd stays open in the
        // parent until after the spawn, so the child's copy is valid. It is
        // close-on-exec: the app never holds it.
        unsafe {
            cmd.pre_exec(move || {
                // "0" moves the writing process itself.
                if libc::write(fd, b"0".as_ptr().cast(), 1) == 1 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }

    /// Drops the parent's handle on `cgroup.procs` (after the spawn).
    pub fn spawned(&mut self) {
        self.procs = None;
    }

    /// The pids in the group (zombies may be listed until reaped).
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// SIGKILLs every process in the group, atomically with their forks.
    pub fn kill(&self) {
        let _ = write(&self.dir.join("cgroup.kill"), "1");
    }

    /// Kills what is left, waits (bounded) until the group is empty and
    /// removes it.
    pub fn remove(self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.dir).is_ok() || !self.dir.exists() {
                return;
            }
            self.kill();
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        crate::output::write_stderr(&format!(
            "cgroup {} could not be removed: processes in it do not die\n",
            self.dir.display()
        ));
    }
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all(text.as_bytes())
}
