//! The webhook URL and the one POST to it, through `wasi:http`, under one
//! overall deadline.
//!
//! A Slack-style webhook URL carries its secret in the path
//! (`/services/T000/B000/XXXX`), so nothing here ever shows more than the
//! origin: errors and log lines go through [`Webhook::origin`] and
//! [`Webhook::redact`], and bad settings never echo the value.

use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingResponse, Method, OutgoingBody, OutgoingRequest, RequestOptions,
    Scheme,
};
use wasip2::io::poll::{Pollable, poll};
use wasip2::io::streams::StreamError;

/// How much of an error answer's body is shown (Slack answers `no_service`,
/// `invalid_payload`, ...: short codes).
const SNIPPET: usize = 200;

/// A parsed webhook URL.
pub struct Webhook {
    https: bool,
    /// `host[:port]` as written.
    authority: String,
    /// Path and query: the secret part.
    path: String,
    /// `scheme://host:port`, the form the host's `allow_http` compares.
    origin: String,
}

/// Why the POST got no answer.
pub enum SendError {
    /// The sandbox refused the origin: it is not in `allow_http`.
    Denied,
    /// No answer within the deadline.
    Timeout(u64),
    /// Anything else (refused connection, TLS, DNS...), already redacted.
    Failed(String),
}

/// An answer: its status and the start of its body.
pub struct Answer {
    pub status: u16,
    pub snippet: String,
    /// A 2xx answer's body, up to the `read` bytes `post` was asked for.
    pub body: Vec<u8>,
}

impl Webhook {
    /// Parses the `webhook` setting. The messages never quote the value: it
    /// may be the secret itself.
    pub fn parse(url: &str) -> Result<Webhook, String> {
        let bad = |why: &str| format!("setting `webhook`: {why}");
        let url = url.trim();
        let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("must be an http:// or https:// URL"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') {
            return Err(bad("credentials in the URL (user:password@) are not supported"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            // `[::1]` alone has colons but no port.
            Some((h, p)) if !p.contains(']') => {
                (h, p.parse::<u16>().map_err(|_| bad("the port is not a number"))?)
            }
            _ => (authority, if https { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(bad("the URL has no host"));
        }
        let origin =
            format!("{}://{}:{port}", if https { "https" } else { "http" }, host.to_lowercase());
        Ok(Webhook { https, authority: authority.to_string(), path, origin })
    }

    /// `scheme://host:port`: all that may be shown of the URL.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// `text` with the URL's path (the secret) cut out, for anything that
    /// came back from the network or the host and might quote it.
    pub fn redact(&self, text: &str) -> String {
        if self.path.len() <= 1 {
            return text.to_string();
        }
        text.replace(&self.path, "/…")
    }

    /// POSTs `json` and waits for the status (and up to `read` bytes of a
    /// 2xx answer's body), all within `timeout_ms`.
    pub fn post(&self, json: &[u8], timeout_ms: u64, read: usize) -> Result<Answer, SendError> {
        let nanos = timeout_ms.saturating_mul(1_000_000);
        let deadline = monotonic_clock::subscribe_duration(nanos);
        let wait = |p: &Pollable| -> Result<(), SendError> {
            match poll(&[p, &deadline]).contains(&0) {
                true => Ok(()),
                false => Err(SendError::Timeout(timeout_ms)),
            }
        };
        let failed = |what: &str| SendError::Failed(what.to_string());

        let headers = Fields::from_list(&[
            ("content-type".to_string(), b"application/json".to_vec()),
            ("content-length".to_string(), json.len().to_string().into_bytes()),
            ("user-agent".to_string(), b"bluegreen-notify".to_vec()),
        ])
        .map_err(|e| SendError::Failed(format!("building headers: {e:?}")))?;
        let request = OutgoingRequest::new(headers);
        let scheme = if self.https { Scheme::Https } else { Scheme::Http };
        request.set_method(&Method::Post).map_err(|()| failed("invalid method"))?;
        request.set_scheme(Some(&scheme)).map_err(|()| failed("invalid scheme"))?;
        request
            .set_authority(Some(&self.authority))
            .map_err(|()| failed("the webhook's host is not a valid authority"))?;
        request
            .set_path_with_query(Some(&self.path))
            .map_err(|()| failed("the webhook's path is not valid in a URL"))?;
        let body = request.body().map_err(|()| failed("request body unavailable"))?;
        write_all(&body, json, &wait)?;

        let options = RequestOptions::new();
        // A host that does not support a timeout refuses it; the deadline
        // below still bounds the wait.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        let _ = options.set_between_bytes_timeout(Some(nanos));
        let pending = outgoing_handler::handle(request, Some(options))
            .map_err(|e| self.error(e, timeout_ms))?;
        OutgoingBody::finish(body, None).map_err(|e| self.error(e, timeout_ms))?;
        wait(&pending.subscribe())?;
        let response = match pending.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(e))) => return Err(self.error(e, timeout_ms)),
            Some(Err(())) | None => return Err(failed("the response was already taken")),
        };
        let status = response.status();
        let (snippet, body) = if (200..300).contains(&status) {
            (String::new(), read_body(&response, &wait, read))
        } else {
            (self.redact(&one_line(&read_body(&response, &wait, SNIPPET))), Vec::new())
        };
        Ok(Answer { status, snippet, body })
    }

    fn error(&self, e: ErrorCode, timeout_ms: u64) -> SendError {
        match e {
            ErrorCode::HttpRequestDenied => SendError::Denied,
            ErrorCode::ConnectionTimeout
            | ErrorCode::ConnectionReadTimeout
            | ErrorCode::HttpResponseTimeout => SendError::Timeout(timeout_ms),
            other => SendError::Failed(self.redact(&format!("{other:?}"))),
        }
    }
}

/// Writes the whole request body before the request is sent (it is small,
/// and the host buffers it), as the wasi:http examples do.
fn write_all(
    body: &OutgoingBody,
    mut bytes: &[u8],
    wait: &dyn Fn(&Pollable) -> Result<(), SendError>,
) -> Result<(), SendError> {
    let broken = |e: StreamError| SendError::Failed(format!("writing the request body: {e:?}"));
    let out =
        body.write().map_err(|()| SendError::Failed("request body stream unavailable".into()))?;
    let ready = out.subscribe();
    while !bytes.is_empty() {
        wait(&ready)?;
        let room = out.check_write().map_err(broken)? as usize;
        let (now, rest) = bytes.split_at(room.min(bytes.len()));
        out.write(now).map_err(broken)?;
        bytes = rest;
    }
    out.flush().map_err(broken)?;
    wait(&ready)?;
    out.check_write().map_err(broken)?;
    Ok(())
}

/// Up to `max` bytes of an answer's body; whatever arrives before the
/// deadline.
fn read_body(
    response: &IncomingResponse,
    wait: &dyn Fn(&Pollable) -> Result<(), SendError>,
    max: usize,
) -> Vec<u8> {
    let mut bytes = Vec::new();
    if max == 0 {
        return bytes;
    }
    let Ok(body) = response.consume() else { return bytes };
    let Ok(stream) = body.stream() else { return bytes };
    {
        let ready = stream.subscribe();
        while bytes.len() < max {
            match stream.read((max - bytes.len()) as u64) {
                Ok(chunk) if chunk.is_empty() => {
                    if wait(&ready).is_err() {
                        break;
                    }
                }
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(_) => break,
            }
        }
    }
    bytes
}

/// An error answer's start, on one line.
fn one_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}
