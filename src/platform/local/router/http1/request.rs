//! A client's request head, judged once: where its body ends, and the head
//! the app gets instead. The router owns the framing it sends: the app gets
//! the router's own `Content-Length`, never the client's spelling of it,
//! and no header a client names in `Connection` can remove `Host`,
//! `Content-Length` or `Transfer-Encoding` (that let a body through with no
//! length, which the app then read as a second request). Every ambiguity
//! in framing is a refusal, as in hyper's and nginx's parsers: two lengths,
//! a length and chunks, a length that is not `1*DIGIT`, a coding other than
//! `chunked`, no `Host` or two.

use super::super::{Peer, connection_tokens, host_name, is_forwarding, is_framing, is_hop_by_hop};
use super::{MAX_HEAD, MAX_HEADERS};
use http::StatusCode;

/// A request head, parsed, with the head to send upstream in `Conn::out`.
pub(in super::super) struct Head {
    pub(in super::super) host: String,
    /// The method and the target's path (its query dropped): what the
    /// router records of the request (`requests.rs`).
    pub(in super::super) method: http::Method,
    pub(in super::super) path: String,
    /// The body's length (`Content-Length`, 0 without one).
    pub(in super::super) length: u64,
    /// HEAD: the answer has no body whatever its headers say.
    pub(in super::super) head_method: bool,
    /// A bodyless GET or HEAD: tried on the next destination after any
    /// failure, like the hyper path.
    pub(in super::super) idempotent: bool,
    /// The client asked to close after this answer.
    pub(in super::super) close: bool,
    /// The app's connection may carry another request after this one: it
    /// had no body. An app may answer without reading a body (on a GET, or
    /// on a POST it refuses) and take the body for its next request, so a
    /// request with a body is sent with `Connection: close` and its
    /// connection is never reused.
    pub(in super::super) reuse: bool,
    /// `X-CF-Process-Instance`: the one instance to send to.
    pub(in super::super) pin: Option<String>,
}

pub(super) enum Parsed {
    Complete(Head, usize),
    Partial,
    /// For hyper: valid, but not what this path serves.
    Handoff,
    /// The router's answer, after which the connection closes.
    Refused(StatusCode, &'static str),
}

/// `Content-Length` as RFC 9110 §8.6 writes it: `1*DIGIT`, nothing else
/// (no sign, no spaces inside, no list), and small enough to count.
pub(super) fn content_length(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(value).ok()?.parse().ok()
}

/// Parses a request head at the start of `buf`; when complete, writes the
/// head to send upstream into `out`.
pub(super) fn parse(buf: &[u8], peer: &Peer, out: &mut Vec<u8>) -> Parsed {
    use Parsed::Refused;
    let bad = StatusCode::BAD_REQUEST;
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
            return Parsed::Handoff;
        }
        Err(_) => return Refused(bad, "malformed request head"),
    };
    let (Some(method), Some(path), Some(1)) = (req.method, req.path, req.version) else {
        return Parsed::Handoff;
    };
    if !path.starts_with('/') || method == "CONNECT" {
        return Parsed::Handoff;
    }
    // httparse allows only token characters, which `http` takes too.
    let Ok(parsed_method) = http::Method::from_bytes(method.as_bytes()) else {
        return Parsed::Handoff;
    };
    let mut host: Option<&[u8]> = None;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut close = false;
    let mut handoff = false;
    let mut named = Vec::new();
    let mut pin: Option<&[u8]> = None;
    for h in req.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            if host.replace(h.value).is_some() {
                return Refused(bad, "two Host headers");
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            match (content_length(h.value), length) {
                (Some(n), None) => length = Some(n),
                (None, _) => return Refused(bad, "Content-Length is not a number of bytes"),
                (Some(_), Some(_)) => return Refused(bad, "two Content-Length headers"),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if chunked || !h.value.eq_ignore_ascii_case(b"chunked") {
                return Refused(
                    StatusCode::NOT_IMPLEMENTED,
                    "only `Transfer-Encoding: chunked` is served",
                );
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case(super::super::PROCESS_INSTANCE) {
            if pin.replace(h.value).is_some() {
                return Refused(bad, "two X-CF-Process-Instance headers");
            }
        } else if name.eq_ignore_ascii_case("expect") || name.eq_ignore_ascii_case("upgrade") {
            handoff = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in connection_tokens(h.value) {
                close |= token.eq_ignore_ascii_case("close");
                named.push(token);
            }
        }
    }
    if chunked && length.is_some() {
        return Refused(bad, "both Content-Length and Transfer-Encoding");
    }
    let Some(host) = host else {
        return Refused(bad, "no Host header");
    };
    if chunked || handoff {
        return Parsed::Handoff;
    }
    let body = length.unwrap_or(0);
    let reuse = body == 0;
    out.clear();
    for part in [method, " ", path, " HTTP/1.1\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    for h in req.headers.iter() {
        let name = h.name;
        let dropped = named.iter().any(|n| n.eq_ignore_ascii_case(name)) && !is_framing(name);
        if dropped
            || is_hop_by_hop(name)
            || is_forwarding(name)
            || name.eq_ignore_ascii_case("content-length")
        {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(n) = length {
        out.extend_from_slice(format!("content-length: {n}\r\n").as_bytes());
    }
    if !reuse {
        out.extend_from_slice(b"connection: close\r\n");
    }
    let host_text = std::str::from_utf8(host).ok();
    peer.forwarding(host_text, |name, value| {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
    out.extend_from_slice(b"\r\n");
    let head_method = method == "HEAD";
    Parsed::Complete(
        Head {
            host: host_text.map(host_name).unwrap_or_default(),
            method: parsed_method,
            path: path.split('?').next().unwrap_or_default().to_string(),
            length: body,
            head_method,
            idempotent: (method == "GET" || head_method) && body == 0,
            close,
            reuse,
            pin: pin.map(|p| String::from_utf8_lossy(p).into_owned()),
        },
        len,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn peer() -> Peer {
        Peer {
            ip: "10.0.0.1".into(),
            port: 8080,
        }
    }

    fn parsed(req: &str) -> (Head, String) {
        let mut out = Vec::new();
        match parse(req.as_bytes(), &peer(), &mut out) {
            Parsed::Complete(head, len) => {
                assert_eq!(len, req.find("\r\n\r\n").unwrap() + 4);
                (head, String::from_utf8(out).unwrap())
            }
            Parsed::Partial => panic!("partial: {req}"),
            Parsed::Handoff => panic!("handed off: {req}"),
            Parsed::Refused(s, why) => panic!("refused {s}: {why}: {req}"),
        }
    }

    fn outcome(req: &str) -> String {
        match parse(req.as_bytes(), &peer(), &mut Vec::new()) {
            Parsed::Complete(..) => "served".into(),
            Parsed::Partial => "partial".into(),
            Parsed::Handoff => "hyper".into(),
            Parsed::Refused(s, _) => s.as_u16().to_string(),
        }
    }

    #[test]
    fn the_head_sent_on_drops_hop_by_hop_headers_and_replaces_forwarding_ones() {
        let (head, out) = parsed(
            "GET /a?b=1 HTTP/1.1\r\nHost: Shop.apps.localhost:8080\r\nX-Forwarded-For: 6.6.6.6\r\n\
             Forwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Port: 1\r\n\
             Connection: keep-alive, X-Secret\r\nx-secret: s\r\nKeep-Alive: 5\r\nX-Kept: yes\r\n\r\nBODY",
        );
        assert_eq!(head.host, "shop.apps.localhost");
        assert!(head.idempotent && !head.close && !head.head_method && head.reuse);
        assert_eq!(
            out,
            "GET /a?b=1 HTTP/1.1\r\nHost: Shop.apps.localhost:8080\r\nX-Kept: yes\r\n\
             x-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\n\
             x-forwarded-host: Shop.apps.localhost:8080\r\nx-forwarded-port: 8080\r\n\
             forwarded: for=10.0.0.1;host=\"Shop.apps.localhost:8080\";proto=http\r\n\r\n"
        );
    }

    #[test]
    fn defect_12_1_connection_cannot_remove_the_framing_the_router_sends() {
        let (head, out) = parsed(
            "POST /c HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\
             Connection: content-length, host, transfer-encoding, x-forwarded-for\r\n\r\n",
        );
        assert_eq!(head.length, 5);
        assert!(!head.reuse, "a body: the app's connection is not reused");
        assert!(out.contains("Host: a\r\n"), "{out}");
        assert!(out.contains("content-length: 5\r\n"), "{out}");
        assert!(out.contains("connection: close\r\n"), "{out}");
        assert!(out.contains("x-forwarded-for: 10.0.0.1\r\n"), "{out}");
        assert_eq!(out.matches("ontent-length").count(), 1, "{out}");
    }

    #[test]
    fn a_body_close_and_head_are_read_from_the_head() {
        let (head, out) = parsed(
            "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0005\r\nconnection: close\r\n\r\n",
        );
        assert_eq!(head.length, 5);
        assert!(head.close && !head.idempotent);
        assert!(out.contains("content-length: 5\r\n"), "{out}");
        let (head, _) = parsed("HEAD / HTTP/1.1\r\nhost: a\r\n\r\n");
        assert!(head.head_method && head.idempotent);
    }

    #[test]
    fn defect_12_3_framing_doubts_are_refused_not_guessed() {
        for (req, want) in [
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: +5\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: -1\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 0x5\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5, 5\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 5 5\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: \r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 99999999999999999999\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
                "400",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: xchunked\r\n\r\n",
                "501",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, identity\r\n\r\n",
                "501",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ntransfer-encoding: x\r\n\r\n",
                "501",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
                "501",
            ),
            (
                "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding : chunked\r\n\r\n",
                "400",
            ),
            ("GET / HTTP/1.1\r\nhost: a\r\nx-a: a\r\n b\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nhost: a\r\nx-a: a\rb\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nhost: a\r\nx-a: a\0b\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nhost: a\r\nx a: b\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\n\r\n", "400"),
            ("GET / HTTP/1.1\r\nbad header\r\n\r\n", "400"),
        ] {
            assert_eq!(outcome(req), want, "{req:?}");
        }
    }

    #[test]
    fn what_this_path_does_not_serve_goes_to_hyper() {
        for req in [
            "GET / HTTP/1.0\r\nhost: a\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\nTransfer-Encoding: CHUNKED\r\n\r\n",
            "POST / HTTP/1.1\r\nhost: a\r\nexpect: 100-continue\r\ncontent-length: 9\r\n\r\n",
            "GET / HTTP/1.1\r\nhost: a\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n",
            "GET http://a/ HTTP/1.1\r\nhost: a\r\n\r\n",
            "CONNECT a:443 HTTP/1.1\r\nhost: a\r\n\r\n",
        ] {
            assert_eq!(outcome(req), "hyper", "{req}");
        }
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("x-{i}: v\r\n"))
            .collect();
        assert_eq!(outcome(&format!("GET / HTTP/1.1\r\n{many}\r\n")), "hyper");
        let long = "x".repeat(MAX_HEAD);
        assert_eq!(outcome(&format!("GET /{long}")), "hyper");
        assert_eq!(outcome("GET / HTTP/1.1\r\nhost: a\r\n"), "partial");
    }
}
