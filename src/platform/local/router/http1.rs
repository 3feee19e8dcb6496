//! The router's own HTTP/1.1 path, for the requests nearly all traffic is
//! made of: HTTP/1.1 with a body of known length or none. Through hyper's
//! server and pooled client a proxied request cost about three times
//! nginx's CPU (a dispatch task, channels and a pool checkout per request).
//! Here a connection's task parses the head in place (httparse), writes it
//! with the body to an idle connection of this thread's pool in one call,
//! and copies the answer through by its framing, head and first bytes in
//! one write. Anything else (HTTP/1.0, `Expect`, `Upgrade`, a chunked
//! request, a head over `MAX_HEAD`, bad syntax) is handed with the bytes
//! read so far to hyper, which serves the rest of the connection.

use super::framing::Buf;
use super::{HEADER_READ_TIMEOUT, Refusal, Router, connection_tokens, host_name, is_hop_by_hop};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

mod exchange;
mod response;

/// The largest request or response head read.
const MAX_HEAD: usize = 16 << 10;
/// Headers per head; a head with more goes to hyper.
const MAX_HEADERS: usize = 64;
/// How long a kept-alive client connection may sit idle between requests.
const KEEP_ALIVE: Duration = Duration::from_secs(60);

/// How a connection left this path.
pub(super) enum End {
    Closed,
    /// For hyper, with the bytes read and not yet served.
    Handoff(Vec<u8>),
}

/// A request head, parsed, with the head to send upstream in `Conn::out`.
struct Head {
    host: String,
    /// The body's length (`Content-Length`, 0 without one).
    length: u64,
    /// HEAD: the answer has no body whatever its headers say.
    head_method: bool,
    /// A bodyless GET or HEAD: tried on the next destination after any
    /// failure, like the hyper path.
    idempotent: bool,
    /// The client asked to close after this answer.
    close: bool,
    /// The app surely read the whole request: it had no body, or one on a
    /// method whose body apps read. A body on GET or DELETE is often left
    /// unread by apps that keep the connection open, and would be taken as
    /// the start of the next request on it, so that connection is not
    /// reused.
    read_whole: bool,
}

enum Parsed {
    Complete(Head, usize),
    Partial,
    Handoff,
}

/// One client connection's buffers: what it sent, what an app answered, and
/// the bytes being written next.
struct Conn<'a> {
    router: &'a Router,
    client: &'a mut TcpStream,
    peer: &'a str,
    from_client: Buf,
    from_app: Buf,
    out: Vec<u8>,
}

/// Serves `client` until it closes, or hands it to hyper.
pub(super) async fn serve(
    router: &Router,
    client: &mut TcpStream,
    peer: &str,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut conn = Conn {
        router,
        client,
        peer,
        from_client: Buf::new(),
        from_app: Buf::new(),
        out: Vec::with_capacity(1024),
    };
    let mut fresh = true;
    loop {
        let (head, len) = match conn.read_head(fresh, stop).await {
            Some(Parsed::Complete(head, len)) => (head, len),
            Some(Parsed::Handoff) => return End::Handoff(conn.from_client.filled().to_vec()),
            Some(Parsed::Partial) | None => return End::Closed,
        };
        conn.from_client.consume(len);
        let keep = conn.proxy(&head).await && !head.close && !*stop.borrow();
        if !keep {
            let _ = conn.client.shutdown().await;
            return End::Closed;
        }
        fresh = false;
    }
}

impl Conn<'_> {
    /// Waits for the next request's head: on a new connection all of it
    /// within `HEADER_READ_TIMEOUT`; on a kept-alive one its first byte
    /// within `KEEP_ALIVE`, then the rest within `HEADER_READ_TIMEOUT`. None
    /// when the client closed, was too slow, or the router is stopping.
    async fn read_head(&mut self, fresh: bool, stop: &mut watch::Receiver<bool>) -> Option<Parsed> {
        let started = Instant::now();
        if self.from_client.is_empty() {
            if *stop.borrow() {
                return None;
            }
            let idle = if fresh {
                HEADER_READ_TIMEOUT
            } else {
                KEEP_ALIVE
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
        self.finish_head(from + HEADER_READ_TIMEOUT).await
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

    /// Sends an answer of the router's own.
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
        self.client.write_all(&self.out).await.is_ok() && !close
    }
}

/// Parses a request head at the start of `buf`; when complete, writes the
/// head to send upstream into `out`: hop-by-hop headers and those the
/// client's `Connection` names dropped, `X-Forwarded-*` set by the router
/// (a client's own are replaced, not trusted).
fn parse(buf: &[u8], peer: &str, out: &mut Vec<u8>) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        _ => return Parsed::Handoff,
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Handoff;
    };
    if !path.starts_with('/') || method == "CONNECT" {
        return Parsed::Handoff;
    }
    let mut host: Option<&[u8]> = None;
    let mut length: Option<u64> = None;
    let mut close = false;
    let mut named = Vec::new();
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Parsed::Handoff;
            }
            host = Some(h.value);
        } else if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
            match (n, length) {
                (Some(n), None) => length = Some(n),
                _ => return Parsed::Handoff,
            }
        } else if ["transfer-encoding", "expect", "upgrade"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            return Parsed::Handoff;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in connection_tokens(h.value) {
                close |= token.eq_ignore_ascii_case("close");
                named.push(token);
            }
        }
    }
    out.clear();
    for part in [method, " ", path, " HTTP/1.1\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    for h in req.headers.iter() {
        let name = h.name;
        if is_hop_by_hop(name)
            || named.iter().any(|n| n.eq_ignore_ascii_case(name))
            || ["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]
                .iter()
                .any(|n| name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    out.extend_from_slice(peer.as_bytes());
    out.extend_from_slice(b"\r\nx-forwarded-proto: http\r\n");
    if let Some(h) = host {
        out.extend_from_slice(b"x-forwarded-host: ");
        out.extend_from_slice(h);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let head_method = method == "HEAD";
    let length = length.unwrap_or(0);
    Parsed::Complete(
        Head {
            host: host
                .and_then(|h| std::str::from_utf8(h).ok())
                .map(host_name)
                .unwrap_or_default(),
            length,
            head_method,
            idempotent: (method == "GET" || head_method) && length == 0,
            close,
            read_whole: length == 0 || ["POST", "PUT", "PATCH"].contains(&method),
        },
        len,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(req: &str) -> (Head, String) {
        let mut out = Vec::new();
        match parse(req.as_bytes(), "10.0.0.1", &mut out) {
            Parsed::Complete(head, len) => {
                assert_eq!(len, req.find("\r\n\r\n").unwrap() + 4);
                (head, String::from_utf8(out).unwrap())
            }
            Parsed::Partial => panic!("partial: {req}"),
            Parsed::Handoff => panic!("handed off: {req}"),
        }
    }

    fn handed_off(req: &str) -> bool {
        matches!(
            parse(req.as_bytes(), "10.0.0.1", &mut Vec::new()),
            Parsed::Handoff
        )
    }

    #[test]
    fn the_head_sent_on_drops_hop_by_hop_headers_and_sets_forwarding_ones() {
        let (head, out) = parsed(
            "GET /a?b=1 HTTP/1.1\r\nHost: Shop.apps.localhost:8080\r\nX-Forwarded-For: 6.6.6.6\r\n\
             Connection: keep-alive, X-Secret\r\nx-secret: s\r\nKeep-Alive: 5\r\nX-Kept: yes\r\n\r\nBODY",
        );
        assert_eq!(head.host, "shop.apps.localhost");
        assert!(head.idempotent && !head.close && !head.head_method);
        assert_eq!(
            out,
            "GET /a?b=1 HTTP/1.1\r\nHost: Shop.apps.localhost:8080\r\nX-Kept: yes\r\n\
             x-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: Shop.apps.localhost:8080\r\n\r\n"
        );
    }

    #[test]
    fn a_body_close_and_head_are_read_from_the_head() {
        let (head, out) =
            parsed("POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\nconnection: close\r\n\r\n");
        assert_eq!(head.length, 5);
        assert!(head.close && !head.idempotent);
        assert!(out.contains("content-length: 5\r\n") && !out.contains("close"));
        let (head, _) = parsed("HEAD / HTTP/1.1\r\nhost: a\r\n\r\n");
        assert!(head.head_method && head.idempotent);
        let (head, _) = parsed("GET / HTTP/1.1\r\n\r\n");
        assert_eq!(head.host, "");
    }

    #[test]
    fn what_this_path_does_not_serve_goes_to_hyper() {
        for req in [
            "GET / HTTP/1.0\r\nhost: a\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 9\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\ncontent-length: -1\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nhost: a\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nhost: a\r\n\r\n",
            "GET / HTTP/1.1\r\nbad header\r\n\r\n",
        ] {
            assert!(handed_off(req), "{req}");
        }
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("x-{i}: v\r\n"))
            .collect();
        assert!(handed_off(&format!("GET / HTTP/1.1\r\n{many}\r\n")));
        let long = "x".repeat(MAX_HEAD);
        assert!(handed_off(&format!("GET /{long}")));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nhost: a\r\n", "p", &mut Vec::new()),
            Parsed::Partial
        ));
    }
}
