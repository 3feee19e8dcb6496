//! The built-in health probe: GET the candidate's own URL until it answers
//! with the expected status (and body text) `successes` times in a row, or
//! the deadline passes. Readiness is noticed within one interval.

use crate::config::Health;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("{url} was not healthy within {}: {last}", crate::units::human_duration(*.waited))]
pub struct Unhealthy {
    pub url: String,
    pub waited: Duration,
    /// The last answer, or why there was none.
    pub last: String,
}

/// Probes `base` + `health.path`; returns the number of requests made.
pub async fn probe(base: &str, health: &Health, deadline: Instant) -> Result<u32, Unhealthy> {
    probe_with(&client(health.request_timeout), base, health, deadline).await
}

/// As `probe`, with this client (one that pins an instance, say).
pub async fn probe_with(
    client: &reqwest::Client,
    base: &str,
    health: &Health,
    deadline: Instant,
) -> Result<u32, Unhealthy> {
    let started = Instant::now();
    let url = format!("{}{}", base.trim_end_matches('/'), health.path);
    let mut in_a_row = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let verdict = check(client, &url, health).await;
        match &verdict {
            Ok(()) => in_a_row += 1,
            Err(_) => in_a_row = 0,
        }
        if in_a_row >= health.successes {
            return Ok(attempts);
        }
        let now = Instant::now();
        if now + health.interval > deadline {
            return Err(Unhealthy {
                url,
                waited: started.elapsed(),
                last: verdict.err().unwrap_or_else(|| {
                    format!(
                        "{in_a_row} of {} healthy answers in a row",
                        health.successes
                    )
                }),
            });
        }
        tokio::time::sleep(health.interval).await;
    }
}

/// The probes' HTTP client. A redirect is an answer of its own: following
/// it could pass a candidate on the strength of some other, healthy host.
pub fn client(timeout: Duration) -> reqwest::Client {
    crate::platform::trust::client_builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .build()
        .expect("HTTP client")
}

/// The probes' client with gorouter's `X-CF-Process-Instance: pin` on
/// every request: each one reaches that one instance of a process.
pub fn pinned_client(timeout: Duration, pin: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Ok(v) = reqwest::header::HeaderValue::from_str(pin) {
        headers.insert(PROCESS_INSTANCE, v);
    }
    crate::platform::trust::client_builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .default_headers(headers)
        .build()
        .expect("HTTP client")
}

/// gorouter's header that sends a request to one process instance
/// (`PROCESS_GUID:INDEX`).
pub const PROCESS_INSTANCE: &str = "x-cf-process-instance";

/// The most of an answer's body a probe reads: enough for any health
/// text, and an app (or whoever holds its port) cannot make the deploy
/// hold gigabytes.
pub const PROBE_BODY_MAX: usize = 64 << 10;

/// Up to `PROBE_BODY_MAX` bytes of `resp`'s body, as text.
async fn capped_body(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = PROBE_BODY_MAX - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == PROBE_BODY_MAX {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// One GET of `url`: `Ok` when it answers as `health` asks, else why not,
/// with the likely cause and its fix where the failure names one.
pub async fn check(client: &reqwest::Client, url: &str, health: &Health) -> Result<(), String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| unanswered(&e, url, health))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .map(|l| crate::output::printable(&String::from_utf8_lossy(l.as_bytes())));
    let body = capped_body(resp).await;
    if status != health.status {
        let mut why = format!("HTTP {status} (expected {})", health.status);
        if (300..400).contains(&status) {
            why.push_str(&format!(
                ", a redirect to {}: redirects are not followed, so `health.path` must name a \
                 path that answers {} itself (or set `health.status: {status}`)",
                location.as_deref().unwrap_or("nowhere (no Location)"),
                health.status
            ));
        } else if !body.trim().is_empty() {
            why.push_str(&format!(": {}", snippet(&body)));
        }
        return Err(why);
    }
    match &health.body {
        Some(text) if !body.contains(text.as_str()) => Err(if body.trim().is_empty() {
            format!("HTTP {status} without `{text}` in the body: the body is empty")
        } else {
            format!(
                "HTTP {status} without `{text}` in the body: {}",
                snippet(&body)
            )
        }),
        _ => Ok(()),
    }
}

/// Why a GET got no answer: the likely cause and its fix for a refused
/// connection on an instance's own port (the app does not listen on
/// `$PORT`) and a timeout (`health.request_timeout`); else the client's
/// error chain.
fn unanswered(e: &reqwest::Error, url: &str, health: &Health) -> String {
    let mut chain = e.to_string();
    let mut refused = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain = format!("{chain}: {s}");
        refused |= s
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        source = s.source();
    }
    refused |= e.is_connect() && chain.contains("Connection refused");
    if e.is_timeout() {
        return format!(
            "no answer within {} (`health.request_timeout`): the app is too slow to answer \
             {} or hangs; make it answer sooner, or raise `health.request_timeout`",
            crate::units::human_duration(health.request_timeout),
            health.path
        );
    }
    let instance = reqwest::Url::parse(url)
        .ok()
        .filter(|u| matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")));
    match (refused, instance.and_then(|u| u.port())) {
        (true, Some(port)) => format!(
            "connection refused: nothing listens on port {port}, the instance's own. The app \
             must listen on the port in `$PORT` (the platform sets it, here {port}), not a \
             fixed one"
        ),
        (true, None) => format!("connection refused: nothing accepts connections at {url}"),
        _ => chain,
    }
}

fn snippet(body: &str) -> String {
    let one_line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 120 {
        format!("{}…", one_line.chars().take(120).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Answers every connection with `reply` (after `delay`), on a free
    /// loopback port; returns the base URL.
    async fn server(reply: &'static str, delay: Duration) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let _ = s.read(&mut buf).await;
                    tokio::time::sleep(delay).await;
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        base
    }

    async fn why(url: &str, health: &Health) -> String {
        check(&client(health.request_timeout), url, health)
            .await
            .unwrap_err()
    }

    /// «19 · The first hour»: a refused connection was `Connection refused
    /// (os error 111)`, a redirect `HTTP 302 (expected 200): ` with a
    /// dangling colon; each now says its likely cause and the fix.
    #[tokio::test]
    async fn a_failed_check_says_the_likely_cause_and_the_fix() {
        let health = Health {
            path: "/health".into(),
            request_timeout: Duration::from_millis(200),
            ..Health::default()
        };
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = why(&format!("http://127.0.0.1:{closed}/health"), &health).await;
        assert!(
            err.starts_with(&format!(
                "connection refused: nothing listens on port {closed}, the instance's own"
            )) && err.contains("`$PORT`"),
            "{err}"
        );

        let redirect =
            "HTTP/1.1 302 Found\r\nlocation: /login\u{202e}x\r\ncontent-length: 0\r\n\r\n";
        let base = server(redirect, Duration::ZERO).await;
        let err = why(&format!("{base}/health"), &health).await;
        assert!(
            err.starts_with("HTTP 302 (expected 200), a redirect to /login\\u{202e}x: "),
            "{err}"
        );
        assert!(err.contains("`health.status: 302`"), "{err}");

        let empty = "HTTP/1.1 503 Unavailable\r\ncontent-length: 0\r\n\r\n";
        let base = server(empty, Duration::ZERO).await;
        assert_eq!(
            why(&format!("{base}/health"), &health).await,
            "HTTP 503 (expected 200)"
        );
        let body = "HTTP/1.1 500 Oops\r\ncontent-length: 9\r\n\r\ndb down\r\n";
        let base = server(body, Duration::ZERO).await;
        assert_eq!(
            why(&format!("{base}/health"), &health).await,
            "HTTP 500 (expected 200): db down"
        );

        let slow = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        let base = server(slow, Duration::from_secs(2)).await;
        let err = why(&format!("{base}/health"), &health).await;
        assert!(
            err.starts_with("no answer within 200ms (`health.request_timeout`)"),
            "{err}"
        );
    }
}
