//! The router's side of HTTP/1.1 towards an app: the request head written
//! out, the response head parsed, and how the response body is delimited
//! (RFC 9112 §6.3), including chunked decoding. The client side of the
//! router speaks this directly on the socket: no second HTTP state machine,
//! no channels between a connection and its requests.

use bytes::{Buf, Bytes, BytesMut};
use http::header::{
    CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING,
};
use http::{Method, Request, StatusCode};

/// A response head larger than this is refused.
pub const MAX_HEAD: usize = 64 << 10;
const MAX_HEADERS: usize = 100;
/// A chunk-size line or a trailer section larger than this is refused.
const MAX_CHUNK_LINE: usize = 4 << 10;
const MAX_TRAILERS: usize = 16 << 10;

/// Writes `req`'s head as HTTP/1.1 in origin form; with `chunked`, the body
/// that follows is sent in chunks (its length is not known).
pub fn encode_head<B>(req: &Request<B>, chunked: bool, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(req.method().as_str().as_bytes());
    out.push(b' ');
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(if path.is_empty() {
        b"/"
    } else {
        path.as_bytes()
    });
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in req.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A parsed response head.
pub struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The connection may carry another request after this response.
    pub keep_alive: bool,
}

/// Parses the response head at the start of `buf`, taking it off `buf`;
/// `Ok(None)` when more bytes are needed.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, String> {
    // The head ends at the first empty line (CRLF, or a bare LF).
    let Some(end) = head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(format!("response head larger than {MAX_HEAD} bytes"));
        }
        return Ok(None);
    };
    let head = buf.split_to(end).freeze();
    let mut lines = Lines {
        bytes: &head,
        at: 0,
    };
    let status_line = lines.next().unwrap_or((0, 0));
    let (keep_alive_default, status) = status_line_parts(&head[status_line.0..status_line.1])?;
    let mut headers = HeaderMap::with_capacity(8);
    for (start, stop) in lines {
        if stop == start {
            break;
        }
        let line = &head[start..stop];
        if matches!(line[0], b' ' | b'\t') {
            return Err("folded header line in the response".into());
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or("header line without a colon in the response")?;
        let name = HeaderName::from_bytes(&line[..colon])
            .map_err(|_| "invalid header name in the response")?;
        let (mut from, mut to) = (start + colon + 1, stop);
        while from < to && matches!(head[from], b' ' | b'\t') {
            from += 1;
        }
        while to > from && matches!(head[to - 1], b' ' | b'\t') {
            to -= 1;
        }
        let value = HeaderValue::from_maybe_shared(head.slice(from..to))
            .map_err(|_| format!("invalid value for header `{name}` in the response"))?;
        if headers.len() >= MAX_HEADERS {
            return Err(format!("more than {MAX_HEADERS} headers in the response"));
        }
        headers.append(name, value);
    }
    let keep_alive = keep_alive_default && !has_token(&headers, &CONNECTION, "close");
    Ok(Some(Head {
        status,
        headers,
        keep_alive,
    }))
}

/// Where the head ends: just past its empty line.
fn head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = buf[from..].iter().position(|&b| b == b'\n') {
        let nl = from + i;
        match buf.get(nl + 1) {
            Some(b'\n') => return Some(nl + 2),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
            Some(_) => from = nl + 1,
            None => return None,
        }
    }
    None
}

/// Line spans of a head, without their CRLF or LF.
struct Lines<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        if self.at >= self.bytes.len() {
            return None;
        }
        let start = self.at;
        let nl = self.bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.bytes.len(), |i| start + i);
        self.at = nl + 1;
        let stop = if nl > start && self.bytes[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        Some((start, stop))
    }
}

/// `HTTP/1.1 200 OK`: whether the version keeps connections alive by
/// default, and the status.
fn status_line_parts(line: &[u8]) -> Result<(bool, StatusCode), String> {
    let keep_alive = match line.get(..9) {
        Some(b"HTTP/1.1 ") => true,
        Some(b"HTTP/1.0 ") => false,
        _ => {
            return Err(format!(
                "not an HTTP/1.x status line: `{}`",
                String::from_utf8_lossy(&line[..line.len().min(40)])
            ));
        }
    };
    let code = line.get(9..12).ok_or("status line without a status")?;
    if line.get(12).is_some_and(|&b| b != b' ') {
        return Err("malformed status code in the response".into());
    }
    let status = StatusCode::from_bytes(code).map_err(|_| "invalid status code in the response")?;
    Ok((keep_alive, status))
}

/// Whether a comma-separated header lists `token` (case-insensitive).
pub fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// How a response body ends.
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304), or its end reached.
    Done,
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunks),
    /// Until the app closes the connection.
    Close,
}

impl Framing {
    /// RFC 9112 §6.3 for a response to `method`.
    pub fn of(method: &Method, head: &Head) -> Result<Framing, String> {
        let status = head.status.as_u16();
        if method == Method::HEAD || (100..200).contains(&status) || status == 204 || status == 304
        {
            return Ok(Framing::Done);
        }
        if head.headers.contains_key(TRANSFER_ENCODING) {
            let last = head
                .headers
                .get_all(TRANSFER_ENCODING)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .last();
            return Ok(match last {
                Some(t) if t.eq_ignore_ascii_case("chunked") => Framing::Chunked(Chunks::Size),
                _ => Framing::Close,
            });
        }
        let mut length = None;
        for v in head.headers.get_all(CONTENT_LENGTH) {
            for part in v.to_str().map_err(|_| "invalid content-length")?.split(',') {
                let n: u64 = part
                    .trim()
                    .parse()
                    .map_err(|_| "invalid content-length in the response")?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting content-lengths in the response".into());
                }
                length = Some(n);
            }
        }
        Ok(match length {
            Some(0) => Framing::Done,
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        })
    }
}

/// Where a chunked body's decoder is.
pub enum Chunks {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk, this many bytes left.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailers (dropped) up to an empty line.
    Trailers,
}

/// What decoding the buffered bytes gave.
pub enum Decoded {
    Data(Bytes),
    /// The last chunk and the trailers are read.
    End,
    /// More bytes are needed.
    More,
}

impl Chunks {
    /// Decodes from the start of `buf` as far as it goes.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, String> {
        loop {
            match self {
                Chunks::Size => {
                    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                        return more(buf.len() > MAX_CHUNK_LINE, "chunk-size line too long");
                    };
                    let line = &buf[..nl];
                    let digits = line
                        .split(|&b| b == b';')
                        .next()
                        .unwrap_or_default()
                        .trim_ascii();
                    let size = std::str::from_utf8(digits)
                        .ok()
                        .filter(|d| !d.is_empty() && d.len() <= 15)
                        .and_then(|d| u64::from_str_radix(d, 16).ok())
                        .ok_or("invalid chunk size in the response")?;
                    buf.advance(nl + 1);
                    *self = if size == 0 {
                        Chunks::Trailers
                    } else {
                        Chunks::Data(size)
                    };
                }
                Chunks::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::More);
                    }
                    let take = (*left).min(buf.len() as u64) as usize;
                    *left -= take as u64;
                    if *left == 0 {
                        *self = Chunks::DataEnd;
                    }
                    return Ok(Decoded::Data(buf.split_to(take).freeze()));
                }
                Chunks::DataEnd => match buf.first() {
                    None => return Ok(Decoded::More),
                    Some(b'\n') => {
                        buf.advance(1);
                        *self = Chunks::Size;
                    }
                    Some(b'\r') => match buf.get(1) {
                        None => return Ok(Decoded::More),
                        Some(b'\n') => {
                            buf.advance(2);
                            *self = Chunks::Size;
                        }
                        Some(_) => return Err("chunk not followed by CRLF".into()),
                    },
                    Some(_) => return Err("chunk not followed by CRLF".into()),
                },
                Chunks::Trailers => {
                    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                        return more(buf.len() > MAX_TRAILERS, "trailers too long");
                    };
                    let empty = nl == 0 || (nl == 1 && buf[0] == b'\r');
                    buf.advance(nl + 1);
                    if empty {
                        return Ok(Decoded::End);
                    }
                }
            }
        }
    }
}

fn more(too_long: bool, what: &str) -> Result<Decoded, String> {
    if too_long {
        Err(format!("{what} in the response"))
    } else {
        Ok(Decoded::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Option<Head>, String> {
        parse_head(&mut BytesMut::from(text))
    }

    #[test]
    fn heads_parse_with_crlf_or_bare_lf_and_keep_alive_follows_version_and_connection() {
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, 200);
        assert_eq!(h.headers["content-length"], "5");
        assert_eq!(h.headers["x-a"], "b");
        assert!(h.keep_alive);
        let h = parse("HTTP/1.0 404 Not Found\n\n").unwrap().unwrap();
        assert_eq!(h.status, 404);
        assert!(!h.keep_alive);
        let h = parse("HTTP/1.1 204\r\nConnection: Close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        assert!(parse("HTTP/1.1 200 OK\r\nA: b\r\n").unwrap().is_none());
        assert!(parse("HTTP/2 200\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\n folded\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 2000 OK\r\n\r\n").is_err());
    }

    #[test]
    fn chunked_bodies_decode_across_reads_and_drop_trailers() {
        let mut c = Chunks::Size;
        let mut buf = BytesMut::from("5;ext=1\r\nhel");
        let mut body = Vec::new();
        let mut feed = |buf: &mut BytesMut, c: &mut Chunks| loop {
            match c.decode(buf).unwrap() {
                Decoded::Data(d) => body.extend_from_slice(&d),
                Decoded::More => return false,
                Decoded::End => return true,
            }
        };
        assert!(!feed(&mut buf, &mut c));
        buf.extend_from_slice(b"lo\r\n6\r\n world\r\n0\r\nX-T: 1\r\n");
        assert!(!feed(&mut buf, &mut c));
        buf.extend_from_slice(b"\r\n");
        assert!(feed(&mut buf, &mut c));
        assert_eq!(body, b"hello world");
        assert!(buf.is_empty());
        assert!(Chunks::Size.decode(&mut BytesMut::from("zz\r\n")).is_err());
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let head = |t: &str| parse(t).unwrap().unwrap();
        let get = Method::GET;
        let of = |m: &Method, t: &str| Framing::of(m, &head(t)).unwrap();
        assert!(matches!(
            of(&get, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"),
            Framing::Length(3)
        ));
        assert!(matches!(
            of(
                &Method::HEAD,
                "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
            ),
            Framing::Done
        ));
        assert!(matches!(
            of(&get, "HTTP/1.1 304 Not Modified\r\n\r\n"),
            Framing::Done
        ));
        assert!(matches!(
            of(
                &get,
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            Framing::Chunked(_)
        ));
        assert!(matches!(
            of(&get, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Framing::Close
        ));
        assert!(matches!(
            of(&get, "HTTP/1.0 200 OK\r\n\r\n"),
            Framing::Close
        ));
        assert!(
            Framing::of(
                &get,
                &head("HTTP/1.1 200 OK\r\nContent-Length: 3, 4\r\n\r\n")
            )
            .is_err()
        );
    }
}
