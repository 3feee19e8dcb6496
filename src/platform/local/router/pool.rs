//! Idle keep-alive connections to the apps, one pool per router thread (as
//! each nginx worker keeps its own): a connection is only ever used by the
//! thread that opened it, so taking one needs no lock.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle connections kept per app port.
const PER_PORT: usize = 64;
/// An idle connection older than this is closed rather than reused: apps
/// close theirs after a while, and a port whose instance went away is
/// never asked for again.
const MAX_IDLE: Duration = Duration::from_secs(30);
/// How often the whole pool is swept for connections past `MAX_IDLE`.
const SWEEP_EVERY: Duration = Duration::from_secs(10);

struct Pool {
    idle: HashMap<u16, Vec<(TcpStream, Instant)>>,
    swept: Instant,
}

thread_local! {
    static POOL: RefCell<Pool> = RefCell::new(Pool {
        idle: HashMap::new(),
        swept: Instant::now(),
    });
}

/// The most recently used idle connection to `port` on this thread that
/// has nothing to read: one the app closed, or sent bytes on after its
/// last answer ended, is dropped. Those bytes would be taken for the next
/// request's answer and reach another client (a desync): one `recv` per
/// request is the price of never reusing such a connection.
pub(super) fn take(port: u16) -> Option<TcpStream> {
    POOL.with_borrow_mut(|pool| {
        let now = Instant::now();
        pool.sweep(now);
        let idle = pool.idle.get_mut(&port)?;
        while let Some((stream, since)) = idle.pop() {
            let open = matches!(stream.try_read(&mut [0u8; 1]),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock);
            if open && now.duration_since(since) < MAX_IDLE {
                return Some(stream);
            }
        }
        None
    })
}

/// Keeps `stream`, whose last answer was read to its end, for the next
/// request to `port` on this thread.
pub(super) fn give(port: u16, stream: TcpStream) {
    POOL.with_borrow_mut(|pool| {
        let idle = pool.idle.entry(port).or_default();
        if idle.len() < PER_PORT {
            idle.push((stream, Instant::now()));
        }
    })
}

/// Closes this thread's idle connections (its runtime is stopping).
pub(super) fn close_all() {
    POOL.with_borrow_mut(|pool| pool.idle.clear());
}

/// A new connection to the app on `port`.
pub(super) async fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Pool {
    fn sweep(&mut self, now: Instant) {
        if now.duration_since(self.swept) < SWEEP_EVERY {
            return;
        }
        self.swept = now;
        for idle in self.idle.values_mut() {
            idle.retain(|(_, since)| now.duration_since(*since) < MAX_IDLE);
        }
        self.idle.retain(|_, idle| !idle.is_empty());
    }
}
