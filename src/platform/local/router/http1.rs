//! The router's own HTTP/1.1 path, for the requests nearly all traffic is
//! made of: HTTP/1.1 with a body of known length or none. Through hyper's
//! server and pooled client a proxied request cost about three times
//! nginx's CPU (a dispatch task, channels and a pool checkout per request).
//! Here a connection's task parses the head in place (httparse), writes it
//! with the body to an idle connection of this thread's pool in one call,
//! and copies the answer through by its framing, head and first bytes in
//! one write. Anything else (HTTP/1.0, `Expect`, `Upgrade`, a chunked
//! request, a head over `MAX_HEAD`) is handed with the bytes read so far
//! to hyper, which serves the rest of the connection; bad syntax and any
//! doubt about framing are refused here (`request`). Every wait has a
//! bound (`Limits`), and every wait on the client is marked in the
//! connection's `Slot`, so the stalled ones are closed first at the cap.

use super::framing::Buf;
use super::stalls::Slot;
use super::{Peer, Refusal, Router};
use http::StatusCode;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

#[cfg(test)]
mod differential;
mod exchange;
mod request;
mod response;

pub(super) use request::Head;
use request::{Parsed, parse};

/// The largest request or response head read.
const MAX_HEAD: usize = 16 << 10;
/// Headers per head; a head with more goes to hyper.
const MAX_HEADERS: usize = 64;

/// How a connection left this path.
pub(super) enum End {
    Closed,
    /// For hyper, with the bytes read and not yet served.
    Handoff(Vec<u8>),
}

/// One client connection's buffers: what it sent, what an app answered, and
/// the bytes being written next.
struct Conn<'a> {
    router: &'a Router,
    client: &'a mut TcpStream,
    peer: &'a Peer,
    slot: &'a Slot,
    from_client: Buf,
    from_app: Buf,
    out: Vec<u8>,
}

/// Serves `client` until it closes, or hands it to hyper.
pub(super) async fn serve(
    router: &Router,
    client: &mut TcpStream,
    peer: &Peer,
    slot: &Slot,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut conn = Conn {
        router,
        client,
        peer,
        slot,
        from_client: Buf::new(),
        from_app: Buf::new(),
        out: Vec::with_capacity(1024),
    };
    let mut fresh = true;
    loop {
        let (head, len) = match conn.read_head(fresh, stop).await {
            Some(Parsed::Complete(head, len)) => (head, len),
            Some(Parsed::Handoff) => return End::Handoff(conn.from_client.filled().to_vec()),
            Some(Parsed::Refused(status, why)) => {
                let refusal = Refusal {
                    status,
                    message: format!("bluegreen router: {why}\n"),
                };
                conn.refuse(&refusal, true).await;
                let _ = conn.client.shutdown().await;
                return End::Closed;
            }
            Some(Parsed::Partial) | None => return End::Closed,
        };
        conn.slot.busy();
        conn.from_client.consume(len);
        // One request and its answer, whole, are bounded too: a trickle
        // that keeps every single wait short must still end.
        let limit = router.limits.request_timeout;
        let served = tokio::time::timeout(limit, conn.proxy(&head)).await;
        let keep = served.unwrap_or(false) && !head.close && !*stop.borrow();
        if !keep {
            let _ = conn.client.shutdown().await;
            return End::Closed;
        }
        fresh = false;
    }
}

impl Conn<'_> {
    /// Waits for the next request's head: on a new connection all of it
    /// within the header timeout; on a kept-alive one its first byte within
    /// the keep-alive time, then the rest within the header timeout. None
    /// when the client closed, was too slow, or the router is stopping.
    async fn read_head(&mut self, fresh: bool, stop: &mut watch::Receiver<bool>) -> Option<Parsed> {
        let started = Instant::now();
        let limits = &self.router.limits;
        self.slot.waiting();
        if self.from_client.is_empty() {
            if *stop.borrow() {
                return None;
            }
            let idle = if fresh {
                limits.header_timeout
            } else {
                limits.keep_alive
            };
            let first = tokio::select! {
                r = tokio::time::timeout(idle, self.from_client.fill(self.client, MAX_HEAD)) => r,
                _ = stop.changed() => return None,
            };
            if !matches!(first, Ok(Ok(n)) if n > 0) {
                return None;
            }
        }
        let from = if fresh { started } else { Instant::now() };
        self.finish_head(from + limits.header_timeout).await
    }

    /// Reads until the head in the buffer is complete, by `deadline`.
    async fn finish_head(&mut self, deadline: Instant) -> Option<Parsed> {
        loop {
            match parse(self.from_client.filled(), self.peer, &mut self.out) {
                Parsed::Partial => {}
                done => return Some(done),
            }
            match tokio::time::timeout_at(
                deadline.into(),
                self.from_client.fill(self.client, MAX_HEAD),
            )
            .await
            {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None,
            }
        }
    }

    /// Sends an answer of the router's own (within the read timeout: a
    /// client that reads nothing is not waited for).
    async fn refuse(&mut self, refusal: &Refusal, close: bool) -> bool {
        self.out.clear();
        self.out.extend_from_slice(
            format!(
                "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\n\
                 content-length: {}\r\n{}\r\n",
                refusal.status.as_u16(),
                refusal.status.canonical_reason().unwrap_or(""),
                refusal.message.len(),
                if close { "connection: close\r\n" } else { "" },
            )
            .as_bytes(),
        );
        self.out.extend_from_slice(refusal.message.as_bytes());
        let write = self.client.write_all(&self.out);
        let sent = tokio::time::timeout(self.router.limits.read_timeout, write).await;
        matches!(sent, Ok(Ok(()))) && !close
    }

    /// A refusal for a request that waited too long on its client or app.
    fn timed_out(status: StatusCode, what: &str) -> Refusal {
        Refusal {
            status,
            message: format!("bluegreen router: {what}\n"),
        }
    }
}
