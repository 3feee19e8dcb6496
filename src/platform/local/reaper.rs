//! The daemon as its apps' subreaper (`PR_SET_CHILD_SUBREAPER`): a process
//! an app orphans (a double fork, `setsid ... &` from a shell that exits)
//! becomes the daemon's child instead of init's, so it stays below the
//! daemon in the process tree, where a stop can find it, and the daemon
//! reaps it when it dies.
//!
//! Reaping needs care: the daemon's own children (apps, tasks, `pg_ctl`)
//! each have a waiter (tokio's or std's `wait`), and a `waitpid` that took
//! one of their statuses would make that wait fail. So every child the
//! daemon spawns is registered, under one lock, from before it can exit
//! until its waiter is done, and only zombies that are not registered (the
//! adopted ones) are reaped here, under the same lock.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The pids of children spawned here whose waiter has not finished.
static DIRECT: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());
static ADOPTING: AtomicBool = AtomicBool::new(false);

/// Registered while its child may still be waited for; unregisters on drop.
#[derive(Debug)]
pub struct Direct(Option<u32>);

impl Drop for Direct {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            lock().remove(&pid);
        }
    }
}

fn lock() -> std::sync::MutexGuard<'static, BTreeSet<u32>> {
    // A panic while holding it leaves a consistent set.
    DIRECT.lock().unwrap_or_else(|p| p.into_inner())
}

/// Makes this process the subreaper of everything it starts. Only for a
/// process that is the daemon and nothing else (not a test harness that
/// runs one in-process: it would adopt its other tests' orphans).
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with an integer argument; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    ADOPTING.store(true, Ordering::SeqCst);
    Ok(())
}

/// Whether orphans come to this process (a subreaper, or pid 1).
pub fn adopting() -> bool {
    ADOPTING.load(Ordering::SeqCst) || std::process::id() == 1
}

/// Spawns `cmd` (tokio) registered as a direct child.
pub fn spawn(
    cmd: &mut tokio::process::Command,
) -> std::io::Result<(tokio::process::Child, Direct)> {
    let mut direct = lock();
    let child = cmd.spawn()?;
    let pid = child.id();
    direct.extend(pid);
    Ok((child, Direct(pid)))
}

/// Runs `cmd` (std) to completion as a registered direct child.
pub fn output(cmd: &mut std::process::Command) -> std::io::Result<std::process::Output> {
    let (child, _direct) = {
        let mut direct = lock();
        let child = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let pid = child.id();
        direct.insert(pid);
        (child, Direct(Some(pid)))
    };
    child.wait_with_output()
}

/// Reaps the zombies among this process's children that no one waits for;
/// returns how many.
pub fn reap_adopted() -> usize {
    if !adopting() {
        return 0;
    }
    let direct = lock();
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut reaped = 0;
    for pid in dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        let Some(p) = super::procs::stat(pid) else {
            continue;
        };
        if p.ppid == me && p.zombie && !direct.contains(&pid) {
            let mut status = 0;
            // SAFETY: waits for one exited child of ours nobody else waits for.
            if unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) } > 0 {
                reaped += 1;
            }
        }
    }
    reaped
}

/// Reaps adopted zombies for as long as the daemon runs: at each SIGCHLD,
/// and every second in case one was coalesced with another.
pub async fn run() {
    if !adopting() {
        return;
    }
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut chld) = signal(SignalKind::child()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = chld.recv() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        let _ = tokio::task::spawn_blocking(reap_adopted).await;
    }
}
