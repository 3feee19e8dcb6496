//! Every process an app instance or task started, and stopping them all.
//! Signalling the instance's process group is not enough: a child that
//! calls `setsid` (or `setpgid`) leaves the group and used to outlive
//! `platform stop`, a restart and a rollback.
//!
//! Where the daemon can make cgroups, each run gets one (`cgroup.rs`) and
//! the group is the truth. Elsewhere an instance's processes are found by
//! two means that each catch what the other misses: the process tree below
//! the instance's first process (and below every member seen since, which
//! keeps a child found after its parent died), and the marker variable
//! each run's environment carries (`procs::MARKER_VAR`), which a child
//! that was orphaned keeps. The daemon is the subreaper of what its apps
//! orphan (`reaper.rs`), so an orphan that also scrubbed its environment
//! still dies with the platform (`sweep`); only per instance can it
//! escape, and only without cgroups.

use super::cgroup::{Base, Group};
use super::procs::{self, Proc};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Child;

/// How processes are tracked, for the whole daemon.
#[derive(Clone, Debug, Default)]
pub struct Tracking {
    cgroups: Option<Arc<Base>>,
}

/// The processes of one run (one start of an instance, or one task).
#[derive(Debug)]
pub struct Tracked {
    pub marker: String,
    pub cgroup: Option<Group>,
    /// Members seen so far, by pid and start time.
    seen: BTreeSet<(u32, u64)>,
}

impl Tracking {
    /// cgroups when `cgroups` asks and they work here, else the tree.
    pub fn new(cgroups: bool) -> Tracking {
        Tracking {
            cgroups: cgroups.then(Base::create).flatten().map(Arc::new),
        }
    }

    /// What a daemon uses (see `Config::own_processes`): when it is a
    /// process of its own, it becomes the subreaper of its apps, starts
    /// reaping what it adopts, and uses cgroups unless
    /// `BLUEGREEN_CGROUPS=off` (which also tests the fallback).
    pub fn for_daemon(own_processes: bool) -> Tracking {
        if !own_processes {
            return Tracking::new(false);
        }
        if let Err(e) = super::reaper::become_subreaper() {
            crate::output::write_stderr(&format!(
                "cannot adopt the apps' orphaned processes (prctl PR_SET_CHILD_SUBREAPER: {e}); \
                 a stop still finds them by their marker\n"
            ));
        }
        tokio::spawn(super::reaper::run());
        Tracking::new(std::env::var("BLUEGREEN_CGROUPS").as_deref() != Ok("off"))
    }

    pub fn uses_cgroups(&self) -> bool {
        self.cgroups.is_some()
    }

    /// Marks the run `cmd` is about to start (`key` names the instance)
    /// and, with cgroups, puts it in a fresh group. A group that cannot be
    /// made fails the start: an untracked run is not started.
    pub fn prepare(
        &self,
        key: &str,
        cmd: &mut tokio::process::Command,
    ) -> std::io::Result<Tracked> {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let marker = format!("{key}/{nonce}");
        cmd.env(procs::MARKER_VAR, &marker);
        let cgroup = match &self.cgroups {
            Some(base) => {
                let group = base.group(&nonce)?;
                // SAFETY: the hook only calls write(2) (see `join_before_exec`).
                unsafe { group.join_before_exec(cmd.as_std_mut()) };
                Some(group)
            }
            None => None,
        };
        Ok(Tracked {
            marker,
            cgroup,
            seen: BTreeSet::new(),
        })
    }

    /// Removes the daemon's cgroups (at shutdown, after every stop).
    pub fn close(&self) {
        if let Some(base) = &self.cgroups {
            base.remove();
        }
    }
}

impl Drop for Tracked {
    /// A run that never started (or whose supervisor went away) leaves no
    /// empty group behind; one with processes in it is kept for `reap`.
    fn drop(&mut self) {
        if let Some(group) = self.cgroup.take() {
            let _ = std::fs::remove_dir(&group.dir);
        }
    }
}

impl Tracked {
    /// Call once spawned, with the first process's pid.
    pub fn started(&mut self, pid: Option<u32>) {
        if let Some(group) = &mut self.cgroup {
            group.spawned();
        }
        if let Some(p) = pid.and_then(procs::stat) {
            self.seen.insert(p.id());
        }
    }

    /// Whether the sockets listening where `127.0.0.1:port` reaches are
    /// all this run's: the port is chosen free and then handed to the app,
    /// so another local user could bind it first and take the route's
    /// traffic (and pass a connect check). `Ok(false)`: nothing listens
    /// yet; `None`: `/proc` cannot tell (not Linux).
    pub fn holds_port(&mut self, port: u16) -> Option<Result<bool, String>> {
        if !std::path::Path::new("/proc/net/tcp").exists() {
            return None;
        }
        let listening = procs::listeners(port);
        if listening.is_empty() {
            return Some(Ok(false));
        }
        let ours: BTreeSet<u64> = self
            .members()
            .iter()
            .flat_map(|p| procs::sockets(p.pid))
            .collect();
        if listening.iter().all(|inode| ours.contains(inode)) {
            return Some(Ok(true));
        }
        let others: Vec<String> = procs::holders(&listening)
            .into_iter()
            .filter(|pid| !self.seen.iter().any(|(p, _)| p == pid))
            .map(|pid| pid.to_string())
            .collect();
        Some(Err(format!(
            "port {port} is held by a process that is not this instance's ({}): it gets no \
             traffic until the app itself listens there",
            if others.is_empty() {
                "another user's".to_string()
            } else {
                format!("pid {}", others.join(", "))
            }
        )))
    }

    /// The run's processes still alive (zombies are done).
    fn members(&mut self) -> Vec<Proc> {
        let found: Vec<Proc> = match &self.cgroup {
            Some(group) => group.pids().into_iter().filter_map(procs::stat).collect(),
            None => {
                let table = procs::table();
                let mut found = procs::descendants(&table, &self.seen);
                let below: BTreeSet<u32> = found.iter().map(|p| p.pid).collect();
                found.extend(
                    table
                        .iter()
                        .filter(|p| !below.contains(&p.pid) && !p.zombie)
                        .filter(|p| procs::has_marker(p.pid, &self.marker)),
                );
                found
            }
        };
        self.seen.extend(found.iter().map(Proc::id));
        found.into_iter().filter(|p| !p.zombie).collect()
    }

    /// Whether a member seen so far (or, with a cgroup, any member) still
    /// runs: cheap enough to poll, unlike a scan of the process table. A
    /// process forked since the last scan is found by `kill`'s scans.
    fn any_alive(&self) -> bool {
        match &self.cgroup {
            Some(group) => group
                .pids()
                .into_iter()
                .filter_map(procs::stat)
                .any(|p| !p.zombie),
            None => self
                .seen
                .iter()
                .filter_map(|(pid, _)| procs::stat(*pid))
                .any(|p| self.seen.contains(&p.id()) && !p.zombie),
        }
    }

    fn signal_all(&mut self, sig: i32) {
        for p in self.members() {
            procs::signal(&p, sig);
        }
    }

    /// SIGTERM to every process of the run, SIGKILL to those left after
    /// `grace`; returns once all are gone (bounded) and `child` is reaped.
    pub async fn stop(mut self, child: &mut Child, grace: Duration) {
        if let Some(pid) = child.id() {
            // The group as well: it reaches a fork made since the last look.
            // SAFETY: signalling the process group we created.
            unsafe { libc::kill(-(pid as i32), libc::SIGTERM) };
        }
        self.signal_all(libc::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            let leader_done = !matches!(child.try_wait(), Ok(None));
            if (leader_done && !self.any_alive()) || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.kill(child.id()).await;
        let _ = child.wait().await;
    }

    /// SIGKILLs every process left (after the first process exited, or
    /// when a task finished: what it leaves behind goes with it).
    pub async fn kill(mut self, leader: Option<u32>) {
        if let Some(pid) = leader {
            // SAFETY: signalling the process group we created.
            unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        }
        // Bounded: a fork bomb outside a cgroup could outpace one round.
        for _ in 0..200 {
            let left = self.members();
            if left.is_empty() {
                break;
            }
            if let Some(group) = &self.cgroup {
                group.kill();
            }
            for p in &left {
                procs::signal(p, libc::SIGKILL);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(group) = self.cgroup.take() {
            let _ = tokio::task::spawn_blocking(move || group.remove()).await;
        }
    }
}

/// Stops every process below the daemon (run at shutdown, after its apps
/// and services were stopped: what is left is what apps orphaned). Only
/// for a daemon that is the subreaper of its apps.
pub async fn sweep(grace: Duration) {
    let me = procs::stat(std::process::id()).map(|p| p.id());
    let left = || {
        let table = procs::table();
        let roots = me.into_iter().collect();
        let all = procs::descendants(&table, &roots);
        all.into_iter()
            .filter(|p| Some(p.id()) != me && !p.zombie)
            .collect::<Vec<_>>()
    };
    for p in left() {
        procs::signal(&p, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while !left().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    for _ in 0..200 {
        let rest = left();
        if rest.is_empty() {
            break;
        }
        for p in &rest {
            procs::signal(p, libc::SIGKILL);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Reap what died, so no pid of an app outlives the daemon's exit.
    let _ = tokio::task::spawn_blocking(super::reaper::reap_adopted).await;
}
