//! The TCP sockets listening on this machine, asked of the kernel over
//! netlink (sock_diag, what `ss -lt` uses) instead of read from
//! `/proc/net/tcp`. The supervisor asks every 25 ms while an app starts
//! (is the port the app's own yet?), and `/proc/net/tcp` lists every
//! connection and TIME_WAIT entry besides the listeners: tens of thousands
//! on a machine serving traffic, and reading them kept a core busy. Asked
//! for listeners only, the kernel walks its listening table and nothing
//! else.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const TCP_LISTEN: u32 = 10;
/// `struct nlmsghdr`, then `struct inet_diag_req_v2` (linux/inet_diag.h).
const HEADER: usize = 16;
const REQUEST: usize = HEADER + 56;
/// `struct inet_diag_msg`: family, state, timer, retrans, the 48-byte
/// `inet_diag_sockid`, then expires, rqueue, wqueue, uid and inode.
const MESSAGE: usize = 72;

/// A listening socket: its local address (network order, 4 or 16 bytes),
/// port and inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: Vec<u8>,
    pub port: u16,
    pub inode: u64,
}

/// Every listening TCP socket, IPv4 and IPv6. An error where netlink is not
/// there to ask (a sandbox without it): the caller reads `/proc` instead.
pub fn listening() -> io::Result<Vec<Listener>> {
    let mut all = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        dump(family as u8, &mut all)?;
    }
    Ok(all)
}

fn dump(family: u8, into: &mut Vec<Listener>) -> io::Result<()> {
    // SAFETY: plain syscalls; the descriptor is owned (and closed) at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    // A kernel that never answers must not hang the supervisor.
    let limit = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: a valid timeval, its size passed with it.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&limit as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let request = request(family);
    // SAFETY: the buffer is valid for its length; netlink sends to the kernel.
    let sent = unsafe {
        libc::send(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
        )
    };
    if sent != request.len() as isize {
        return Err(io::Error::last_os_error());
    }
    let mut buf = vec![0u8; 64 << 10];
    // Bounded: a dump ends with NLMSG_DONE, and each read waits 1 s at most.
    for _ in 0..10_000 {
        // SAFETY: the buffer is valid and writable for its length.
        let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if parse(&buf[..n as usize], into)? {
            return Ok(());
        }
    }
    Err(io::Error::other("sock_diag: the dump never ended"))
}

/// A dump of the sockets of `family` in state LISTEN.
fn request(family: u8) -> [u8; REQUEST] {
    let mut r = [0u8; REQUEST];
    r[0..4].copy_from_slice(&(REQUEST as u32).to_ne_bytes());
    r[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    r[6..8].copy_from_slice(&flags.to_ne_bytes());
    r[8..12].copy_from_slice(&1u32.to_ne_bytes());
    r[HEADER] = family;
    r[HEADER + 1] = libc::IPPROTO_TCP as u8;
    r[HEADER + 4..HEADER + 8].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    r
}

/// Reads one datagram of the dump into `into`; true once the dump is done.
fn parse(mut data: &[u8], into: &mut Vec<Listener>) -> io::Result<bool> {
    while data.len() >= HEADER {
        let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
        if len < HEADER || len > data.len() {
            return Err(io::Error::other("sock_diag: a malformed answer"));
        }
        match kind as i32 {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => {
                let code = data
                    .get(HEADER..HEADER + 4)
                    .map(|b| i32::from_ne_bytes(b.try_into().unwrap()))
                    .unwrap_or(0);
                return Err(io::Error::from_raw_os_error(-code));
            }
            _ if kind == SOCK_DIAG_BY_FAMILY && len >= HEADER + MESSAGE => {
                let m = &data[HEADER..HEADER + MESSAGE];
                let addr_len = if m[0] == libc::AF_INET as u8 { 4 } else { 16 };
                into.push(Listener {
                    addr: m[8..8 + addr_len].to_vec(),
                    port: u16::from_be_bytes([m[4], m[5]]),
                    inode: u64::from(u32::from_ne_bytes(m[68..72].try_into().unwrap())),
                });
            }
            _ => {}
        }
        // Messages are 4-byte aligned.
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    Ok(false)
}
