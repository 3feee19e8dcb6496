//! The process table, read from `/proc`: who is whose child, who carries an
//! instance's marker, who holds which listening socket. The supervisor
//! uses it to find every process an app instance started (a `setsid`
//! child leaves the instance's process group, so signalling the group
//! misses it), the service check to learn who really listens on a port.
//!
//! A process is named by its pid *and* start time everywhere here: a pid
//! alone may belong to someone else by the time it is signalled.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// The environment variable each app and task process gets, naming its
/// instance with a per-start nonce (`<app>/<kind>/<index>/<nonce>`). A
/// child that leaves the process group keeps it; only the owner of a
/// process (and root) can read `/proc/PID/environ`, so no other user can
/// learn a marker to have a process of theirs signalled.
pub const MARKER_VAR: &str = "BLUEGREEN_INSTANCE";

/// One process: enough to walk the tree and to signal it safely.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// Clock ticks since boot (field 22 of `/proc/PID/stat`).
    pub started: u64,
    pub zombie: bool,
}

/// `/proc/PID/stat` of one process, if it exists.
pub fn stat(pid: u32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces or `)`.
    let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    Some(Proc {
        pid,
        zombie: matches!(*fields.first()?, "Z" | "X"),
        ppid: fields.get(1)?.parse().ok()?,
        started: fields.get(19)?.parse().ok()?,
    })
}

/// Every process whose real uid is ours (the only ones this daemon may
/// stop: apps run with its uid).
pub fn table() -> Vec<Proc> {
    // SAFETY: getuid has no preconditions.
    let me = unsafe { libc::getuid() };
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| uid(*pid) == Some(me))
        .filter_map(stat)
        .collect()
}

/// The real uid of `pid` (`Uid:` in `/proc/PID/status`).
pub fn uid(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

impl Proc {
    /// What names this process over time: its parent and state change,
    /// these two do not.
    pub fn id(&self) -> (u32, u64) {
        (self.pid, self.started)
    }
}

/// The processes named by `roots` and everything below them in `table`.
pub fn descendants(table: &[Proc], roots: &BTreeSet<(u32, u64)>) -> Vec<Proc> {
    let mut children: HashMap<u32, Vec<Proc>> = HashMap::new();
    for p in table {
        children.entry(p.ppid).or_default().push(*p);
    }
    let mut seen = BTreeSet::new();
    let mut found = Vec::new();
    let mut todo: Vec<Proc> = table
        .iter()
        .filter(|p| roots.contains(&p.id()))
        .copied()
        .collect();
    while let Some(p) = todo.pop() {
        if seen.insert(p.pid) {
            found.push(p);
            todo.extend(children.get(&p.pid).into_iter().flatten().copied());
        }
    }
    found
}

/// The value of `MARKER_VAR` in `pid`'s environment (none for a zombie,
/// whose environment is gone, or a process we may not read).
pub fn marker(pid: u32) -> Option<String> {
    let env = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{MARKER_VAR}=");
    env.split(|b| *b == 0)
        .find_map(|kv| kv.strip_prefix(prefix.as_bytes()))
        .and_then(|v| String::from_utf8(v.to_vec()).ok())
}

/// Whether `pid`'s environment holds `MARKER_VAR=marker`.
pub fn has_marker(pid: u32, marker: &str) -> bool {
    self::marker(pid).as_deref() == Some(marker)
}

/// Signals `p` if it is still the process we looked at (same start time).
pub fn signal(p: &Proc, sig: i32) {
    if stat(p.pid).is_some_and(|now| now.started == p.started) {
        // SAFETY: a plain syscall on a process we just identified.
        unsafe { libc::kill(p.pid as i32, sig) };
    }
}

/// Whether `p` still runs: not gone, not reused, not a zombie.
pub fn alive(p: &Proc) -> bool {
    stat(p.pid).is_some_and(|now| now.started == p.started && !now.zombie)
}

/// The inodes of the sockets listening on TCP `port` at an address a
/// client of `127.0.0.1:port` reaches (127.0.0.1, 0.0.0.0, `::`, or
/// `::ffff:127.0.0.1`): asked of the kernel over netlink, or read from
/// `/proc/net/tcp` and `/proc/net/tcp6` where netlink cannot be asked.
pub fn listeners(port: u16) -> Vec<u64> {
    let Ok(all) = super::sock_diag::listening() else {
        return listeners_in_proc(port);
    };
    let v4_mapped = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1];
    let reaches =
        |addr: &[u8]| addr == [127, 0, 0, 1] || addr.iter().all(|b| *b == 0) || addr == v4_mapped;
    all.into_iter()
        .filter(|l| l.port == port && reaches(&l.addr))
        .map(|l| l.inode)
        .collect()
}

/// `listeners`, from the socket tables in `/proc` (which list every
/// connection besides: slow on a busy machine).
pub fn listeners_in_proc(port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    let reaches = [
        "0100007F",
        "00000000",
        "00000000000000000000000000000000",
        "0000000000000000FFFF00000100007F",
    ];
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (f.get(1), f.get(3), f.get(9)) else {
                continue;
            };
            let Some((addr, p)) = local.split_once(':') else {
                continue;
            };
            if *state == LISTEN
                && u16::from_str_radix(p, 16) == Ok(port)
                && reaches.contains(&addr)
                && let Ok(inode) = inode.parse()
            {
                inodes.push(inode);
            }
        }
    }
    inodes
}

/// The socket inodes among `pid`'s open files.
pub fn sockets(pid: u32) -> BTreeSet<u64> {
    let dir = format!("/proc/{pid}/fd");
    let Ok(entries) = std::fs::read_dir(Path::new(&dir)) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Who holds the listening sockets in `inodes`: the pids of our uid whose
/// open files include one (others' `/proc/PID/fd` cannot be read).
pub fn holders(inodes: &[u64]) -> Vec<u32> {
    table()
        .iter()
        .filter(|p| !p.zombie)
        .filter(|p| sockets(p.pid).iter().any(|i| inodes.contains(i)))
        .map(|p| p.pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_of_ours_is_found_and_attributed_to_this_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let inodes = listeners(port);
        assert_eq!(inodes.len(), 1, "{inodes:?}");
        let me = std::process::id();
        assert!(sockets(me).contains(&inodes[0]));
        assert_eq!(holders(&inodes), vec![me]);
        drop(l);
        assert!(listeners(port).is_empty());
    }

    #[test]
    fn netlink_and_proc_agree_on_listeners_among_connections() {
        let (v4, v6) = (
            std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            std::net::TcpListener::bind("[::]:0").ok(),
        );
        // Open and closed (TIME_WAIT) connections in the tables too, which
        // are not listeners.
        let port = v4.local_addr().unwrap().port();
        let mut open = Vec::new();
        for _ in 0..20 {
            let c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            open.push((c, v4.accept().unwrap().0));
        }
        open.truncate(10);
        assert!(
            super::super::sock_diag::listening().is_ok(),
            "netlink answers here"
        );
        let mut ports = vec![port];
        ports.extend(v6.iter().map(|l| l.local_addr().unwrap().port()));
        for port in ports {
            let (mut asked, mut read) = (listeners(port), listeners_in_proc(port));
            asked.sort();
            read.sort();
            assert_eq!(asked.len(), 1, "port {port}: {asked:?}");
            assert_eq!(asked, read, "port {port}");
        }
        // Addresses a 127.0.0.1 client does not reach are not counted.
        let other = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        let elsewhere = other.local_addr().unwrap().port();
        assert!(listeners(elsewhere).is_empty() && listeners_in_proc(elsewhere).is_empty());
        drop(v4);
        assert!(listeners(port).is_empty());
    }

    #[test]
    fn descendants_follow_the_parent_links_from_the_roots_only() {
        let p = |pid, ppid| Proc {
            pid,
            ppid,
            started: 1,
            zombie: false,
        };
        let table = [p(10, 1), p(11, 10), p(12, 11), p(20, 1), p(21, 20)];
        let found = descendants(&table, &[(10, 1)].into());
        let mut pids: Vec<u32> = found.iter().map(|p| p.pid).collect();
        pids.sort();
        assert_eq!(pids, [10, 11, 12]);
    }

    #[test]
    fn this_process_is_alive_and_has_no_marker() {
        let me = stat(std::process::id()).unwrap();
        assert!(alive(&me) && !me.zombie);
        assert!(!has_marker(me.pid, "nope"));
        assert!(table().iter().any(|p| p.pid == me.pid));
    }
}
