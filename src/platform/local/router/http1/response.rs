//! The head of an app's answer as the client gets it, and how its body
//! ends: what `exchange` needs to copy the body through. An answer whose
//! framing is in any doubt (a length and chunks, a body where none may be)
//! reaches the client framed one way only, and its connection is not used
//! again: what the app sends after it is not read as another answer.

use super::super::{connection_tokens, is_hop_by_hop};
use super::Head;
use super::request::content_length;

/// How an answer's body ends.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// When the app closes the connection: re-chunked for the client, so
    /// its connection stays open.
    UntilClose,
}

/// An app's answer whose head is in `Conn::out`, ready for the client.
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) framing: Framing,
    /// The app keeps the connection open after it.
    pub(super) reusable: bool,
}

/// The head the client gets for the app's `resp`: its status and headers
/// less hop-by-hop ones (`Transfer-Encoding` kept when chunks pass
/// through as they came).
pub(super) fn client_head(
    resp: &httparse::Response,
    head: &Head,
    out: &mut Vec<u8>,
) -> Result<Answer, String> {
    let status = resp.code.unwrap_or(0);
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut close = false;
    let mut keep_alive = false;
    let mut named = Vec::new();
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match (content_length(h.value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err("the app's answer has a bad Content-Length".into()),
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = connection_tokens(h.value).last();
            chunked = Some(last.is_some_and(|c| c.eq_ignore_ascii_case("chunked")));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in connection_tokens(h.value) {
                close |= token.eq_ignore_ascii_case("close");
                keep_alive |= token.eq_ignore_ascii_case("keep-alive");
                named.push(token);
            }
        }
    }
    // Chunks and a length at once (RFC 9112 §6.3: the chunks win, and the
    // sender is suspect), a 204 that claims a body, a coding other than
    // chunked: the app's connection is not trusted with another request.
    let doubt = (chunked.is_some() && length.is_some())
        || (status == 204 && (chunked.is_some() || length.is_some_and(|n| n > 0)))
        || chunked == Some(false);
    let framing = if head.head_method || status == 204 || status == 304 {
        Framing::Empty
    } else {
        match (chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) | (None, None) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
        }
    };
    out.clear();
    let reason = resp.reason.unwrap_or("");
    out.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    for h in resp.headers.iter() {
        let passes =
            framing == Framing::Chunked && h.name.eq_ignore_ascii_case("transfer-encoding");
        let overridden = chunked.is_some() && h.name.eq_ignore_ascii_case("content-length");
        if overridden
            || !passes
                && (is_hop_by_hop(h.name) || named.iter().any(|n| n.eq_ignore_ascii_case(h.name)))
        {
            continue;
        }
        out.extend_from_slice(h.name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value);
        out.extend_from_slice(b"\r\n");
    }
    if framing == Framing::UntilClose {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if head.close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    let http11 = resp.version == Some(1);
    Ok(Answer {
        status,
        framing,
        reusable: !doubt
            && framing != Framing::UntilClose
            && if http11 { !close } else { keep_alive },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(head_method: bool) -> Head {
        Head {
            host: "a".into(),
            method: http::Method::GET,
            path: "/".into(),
            length: 0,
            head_method,
            idempotent: true,
            close: false,
            reuse: true,
            pin: None,
        }
    }

    fn answered(raw: &str, head_method: bool) -> (Result<Answer, String>, String) {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut resp = httparse::Response::new(&mut headers);
        resp.parse(raw.as_bytes()).unwrap();
        let mut out = Vec::new();
        let answer = client_head(&resp, &head(head_method), &mut out);
        (answer, String::from_utf8(out).unwrap())
    }

    #[test]
    fn framing_and_reuse_follow_the_apps_head() {
        let (a, out) = answered(
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: x-mine\r\nx-mine: 1\r\nx-kept: 1\r\n\r\n",
            false,
        );
        let a = a.unwrap();
        assert!(a.framing == Framing::Length(5) && a.reusable);
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-kept: 1\r\n\r\n"
        );

        let (a, out) = answered(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        );
        assert!(a.unwrap().framing == Framing::Chunked);
        assert!(out.contains("transfer-encoding: chunked\r\n"), "{out}");

        let (a, out) = answered("HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n", false);
        assert!(
            !a.unwrap().reusable,
            "HTTP/1.0 closes unless it says keep-alive"
        );
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"));
        let (a, _) = answered(
            "HTTP/1.0 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\n\r\n",
            false,
        );
        assert!(a.unwrap().reusable);

        let (a, out) = answered("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\n", false);
        let a = a.unwrap();
        assert!(a.framing == Framing::UntilClose && !a.reusable);
        assert!(out.ends_with("transfer-encoding: chunked\r\n\r\n"), "{out}");

        let (a, _) = answered("HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\n", true);
        assert!(a.unwrap().framing == Framing::Empty, "HEAD");
        let (a, _) = answered(
            "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n",
            false,
        );
        assert!(a.unwrap().framing == Framing::Empty);
        let (a, _) = answered(
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            false,
        );
        assert!(
            a.is_err(),
            "two lengths: which one ends the body is unknown"
        );
        let (a, _) = answered("HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n", false);
        assert!(a.is_err(), "a length is 1*DIGIT");
    }

    #[test]
    fn defect_12_3_an_answer_with_chunks_and_a_length_reaches_the_client_chunked_only() {
        let (a, out) = answered(
            "HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n",
            false,
        );
        let a = a.unwrap();
        assert!(a.framing == Framing::Chunked && !a.reusable);
        assert_eq!(out, "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
        let (a, _) = answered(
            "HTTP/1.1 204 No Content\r\ncontent-length: 9\r\n\r\n",
            false,
        );
        assert!(!a.unwrap().reusable, "a 204 that claims a body");
        let (a, _) = answered("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n", false);
        assert!(!a.unwrap().reusable);
    }
}
