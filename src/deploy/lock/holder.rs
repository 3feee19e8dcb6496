//! Whether a lease's holder may still be at work, as this machine can tell.
//! Host name and pid alone were fooled by containers that share a host name
//! (each counts pids in its own namespace, so a live holder's pid may be
//! free here, or taken by another process), by a pid reused after its
//! process ended, and by a reboot. So a lease also names its process by
//! boot id, pid namespace and start time ([`ProcessIdentity`]), and a local
//! pid is consulted only for a holder in this boot and this pid namespace.

use crate::platform::lease::{Lease, ProcessIdentity, process_started};

/// What this machine can say about a lease's holder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// On another host: only its lease's expiry tells.
    Elsewhere,
    /// On this host in another pid namespace (another container): its pid
    /// means nothing here, so, as for a holder elsewhere, only its lease's
    /// expiry tells; it is never judged gone by a local pid.
    OtherNamespace,
    /// Its process runs.
    Running,
    /// Its process is gone, and why.
    Gone(&'static str),
}

/// Judges `h` from this process, by `/proc`.
pub fn judge(h: &Lease) -> Holder {
    judge_from(
        h,
        &super::hostname(),
        ProcessIdentity::this().as_ref(),
        crate::platform::local::pid_alive,
        process_started,
    )
}

/// Judges `h` from a process on `host` that is `here` (none: `/proc` could
/// not say); `alive` says whether a local pid exists, `started` when it
/// started (none: no such process).
fn judge_from(
    h: &Lease,
    host: &str,
    here: Option<&ProcessIdentity>,
    alive: impl Fn(u32) -> bool,
    started: impl Fn(u32) -> Option<u64>,
) -> Holder {
    if h.host != host {
        return Holder::Elsewhere;
    }
    let Some((theirs, here)) = h.process.as_ref().zip(here) else {
        // A lease from before identities were recorded (or no /proc here):
        // the pid alone, as then.
        return if alive(h.pid) {
            Holder::Running
        } else {
            Holder::Gone("no process has its pid now")
        };
    };
    if theirs.boot_id != here.boot_id {
        return Holder::Gone("it ran before this machine last booted");
    }
    if theirs.pid_ns != here.pid_ns {
        return Holder::OtherNamespace;
    }
    match started(h.pid) {
        Some(t) if t == theirs.started => Holder::Running,
        Some(_) => Holder::Gone("its pid belongs to a later process now"),
        None => Holder::Gone("no process has its pid now"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(boot: &str, ns: &str, started: u64) -> ProcessIdentity {
        ProcessIdentity {
            boot_id: boot.into(),
            pid_ns: ns.into(),
            started,
        }
    }

    fn lease(host: &str, pid: u32, process: Option<ProcessIdentity>) -> Lease {
        Lease {
            id: "d1".into(),
            app: "shop".into(),
            host: host.into(),
            pid,
            command: "bluegreen deploy".into(),
            since: "2026-01-01T00:00:00Z".into(),
            expires: 0,
            process,
        }
    }

    /// Defect 7 of «12 · Hardening, round two»: a holder in another
    /// container sharing the host name was judged by a local pid.
    #[test]
    fn defect_7_the_lock_holder_is_known_by_boot_pid_namespace_and_start_time() {
        let here = identity("boot-a", "pid:[1]", 500);
        // Pid 7 runs here, started at tick 900; pid 8 does not exist here.
        let started = |pid| (pid == 7).then_some(900);
        let judge = |h: &Lease| judge_from(h, "box", Some(&here), |pid| pid == 7, started);

        // Another container on this boot: its pid 8 is not ours to look up,
        // nor is its pid 7.
        for pid in [7, 8] {
            let other_ns = lease("box", pid, Some(identity("boot-a", "pid:[2]", 900)));
            assert_eq!(judge(&other_ns), Holder::OtherNamespace);
        }
        // An earlier boot: gone, even where its pid runs now.
        let rebooted = lease("box", 7, Some(identity("boot-b", "pid:[1]", 900)));
        assert!(matches!(judge(&rebooted), Holder::Gone(why) if why.contains("booted")));
        // This boot and namespace: the pid and its start time.
        let running = lease("box", 7, Some(identity("boot-a", "pid:[1]", 900)));
        assert_eq!(judge(&running), Holder::Running);
        let reused = lease("box", 7, Some(identity("boot-a", "pid:[1]", 899)));
        assert!(matches!(judge(&reused), Holder::Gone(why) if why.contains("later process")));
        let ended = lease("box", 8, Some(identity("boot-a", "pid:[1]", 900)));
        assert!(matches!(judge(&ended), Holder::Gone(_)));
        // Another host; a lease without an identity goes by its pid.
        assert_eq!(judge(&lease("other", 7, None)), Holder::Elsewhere);
        assert_eq!(judge(&lease("box", 7, None)), Holder::Running);
        assert!(matches!(judge(&lease("box", 8, None)), Holder::Gone(_)));
    }

    #[test]
    fn leases_without_an_identity_still_read_and_new_ones_carry_it() {
        let old = r#"{"id":"d1","app":"shop","host":"box","pid":7,"command":"c",
            "since":"2026-01-01T00:00:00Z","expires":5}"#;
        let l: Lease = serde_json::from_str(old).unwrap();
        assert_eq!(l.process, None);
        assert!(!serde_json::to_string(&l).unwrap().contains("process"));

        let this = ProcessIdentity::this().expect("/proc tells this process");
        assert_eq!(this.boot_id.len(), 36, "{this:?}");
        assert!(this.pid_ns.starts_with("pid:["), "{this:?}");
        assert_eq!(
            judge(&lease(
                &super::super::hostname(),
                std::process::id(),
                Some(this)
            )),
            Holder::Running
        );
    }
}
