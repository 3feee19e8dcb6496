//! `http-probe`: a health-check plugin that GETs configured paths on the
//! candidate's own URL through `wasi:http` and checks status and body text.
//!
//! Settings (all optional):
//! - `paths`: comma-separated paths to GET, default `/`
//! - `status`: the expected status code, default `200`
//! - `body-contains`: text the body must contain
//! - `request-timeout-ms`: per-request connect and first-byte timeout, default `2000`
//! - `retry-after-ms`: how long the host should wait before asking again while
//!   the candidate is not ready, default `500`
//!
//! A candidate that does not answer as expected is "not ready yet"
//! (`retry-after-ms`), not a veto: the host's health timeout decides when to
//! give up. Only bad settings are a plugin error.

use bluegreen_plugin::health_check::log::log;
use bluegreen_plugin::health_check::{Deploy, Finding, Outcome, Severity, Target, Verdict};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, RequestOptions, Scheme};
use wasip2::io::streams::StreamError;

/// Bodies beyond this are not read: a health endpoint answers briefly.
const MAX_BODY: usize = 1 << 20;

struct Probe;

struct Settings {
    paths: Vec<String>,
    status: u16,
    body_contains: Option<String>,
    request_timeout_ms: u64,
    retry_after_ms: u32,
}

fn setting<'a>(d: &'a Deploy, key: &str) -> Option<&'a str> {
    d.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn number<T: std::str::FromStr>(d: &Deploy, key: &str, default: T) -> Result<T, String> {
    match setting(d, key) {
        None => Ok(default),
        Some(v) => {
            v.trim().parse().map_err(|_| format!("setting `{key}`: `{v}` is not a valid number"))
        }
    }
}

impl Settings {
    fn from(d: &Deploy) -> Result<Settings, String> {
        let paths = setting(d, "paths")
            .unwrap_or("/")
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(String::from)
            .collect::<Vec<_>>();
        if let Some(bad) = paths.iter().find(|p| !p.starts_with('/')) {
            return Err(format!("setting `paths`: `{bad}` must start with `/`"));
        }
        Ok(Settings {
            paths,
            status: number(d, "status", 200)?,
            body_contains: setting(d, "body-contains").map(String::from),
            request_timeout_ms: number(d, "request-timeout-ms", 2000)?,
            retry_after_ms: number(d, "retry-after-ms", 500)?,
        })
    }
}

/// Splits `http://host:port/base` into scheme, authority and base path.
fn split_url(url: &str) -> Result<(Scheme, &str, &str), String> {
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, rest)
    } else {
        return Err(format!("candidate URL `{url}` is not http:// or https://"));
    };
    let (authority, base) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
        None => (rest, ""),
    };
    Ok((scheme, authority, base))
}

/// One GET; `Ok((status, body))` or a description of why it did not answer.
fn get(url: &str, path: &str, timeout_ms: u64) -> Result<(u16, String), String> {
    let (scheme, authority, base) = split_url(url)?;
    let request = OutgoingRequest::new(Fields::new());
    let full = format!("{base}{path}");
    let invalid = |what: &str| format!("invalid request {what} for `{url}{path}`");
    request.set_method(&Method::Get).map_err(|()| invalid("method"))?;
    request.set_scheme(Some(&scheme)).map_err(|()| invalid("scheme"))?;
    request.set_authority(Some(authority)).map_err(|()| invalid("authority"))?;
    request.set_path_with_query(Some(&full)).map_err(|()| invalid("path"))?;
    let options = RequestOptions::new();
    let nanos = timeout_ms * 1_000_000;
    // Some hosts do not support every timeout; a refusal here is not an error.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let _ = options.set_between_bytes_timeout(Some(nanos));

    let pending = outgoing_handler::handle(request, Some(options)).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(e))) => return Err(format!("{e:?}")),
        Some(Err(())) | None => return Err("response already taken".into()),
    };
    let status = response.status();
    let body = response.consume().map_err(|()| "response body unavailable".to_string())?;
    let stream = body.stream().map_err(|()| "response body stream unavailable".to_string())?;
    let mut bytes = Vec::new();
    while bytes.len() < MAX_BODY {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(format!("reading body: {}", e.to_debug_string()));
            }
        }
    }
    drop(stream);
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

fn not_ready(rule: &str, message: String) -> Finding {
    Finding {
        severity: Severity::Warning,
        rule: rule.into(),
        message,
        file: None,
        line: None,
        fix: None,
    }
}

impl bluegreen_plugin::health_check::Guest for Probe {
    fn handle(d: Deploy, t: Target, attempt: u32) -> Result<Outcome, String> {
        let s = Settings::from(&d)?;
        let mut findings = Vec::new();
        for path in &s.paths {
            let url = format!("{}{path}", t.candidate_url.trim_end_matches('/'));
            match get(&t.candidate_url, path, s.request_timeout_ms) {
                Err(why) => findings.push(not_ready("unreachable", format!("GET {url}: {why}"))),
                Ok((status, _)) if status != s.status => findings.push(not_ready(
                    "status",
                    format!("GET {url}: status {status}, expected {}", s.status),
                )),
                Ok((_, body)) => match &s.body_contains {
                    Some(text) if !body.contains(text.as_str()) => findings.push(not_ready(
                        "body",
                        format!("GET {url}: body does not contain `{text}`"),
                    )),
                    _ => log(Severity::Info, &format!("GET {url}: ok (attempt {attempt})")),
                },
            }
        }
        let verdict = if findings.is_empty() {
            Verdict::Proceed
        } else {
            Verdict::RetryAfterMs(s.retry_after_ms)
        };
        Ok(Outcome { verdict, findings })
    }
}

bluegreen_plugin::health_check::export!(Probe);
