//! The built-in health probe: GET the candidate's own URL until it answers
//! with the expected status (and body text) `successes` times in a row, or
//! the deadline passes. Readiness is noticed within one interval.

use crate::config::Health;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
#[error("{url} was not healthy within {}: {last}", humantime::format_duration(*.waited))]
pub struct Unhealthy {
    pub url: String,
    pub waited: Duration,
    /// The last answer, or why there was none.
    pub last: String,
}

/// Probes `base` + `health.path`; returns the number of requests made.
pub async fn probe(base: &str, health: &Health, deadline: Instant) -> Result<u32, Unhealthy> {
    let started = Instant::now();
    let url = format!("{}{}", base.trim_end_matches('/'), health.path);
    let client = client(health.request_timeout);
    let mut in_a_row = 0;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let verdict = check(&client, &url, health).await;
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

async fn check(client: &reqwest::Client, url: &str, health: &Health) -> Result<(), String> {
    let resp = client.get(url).send().await.map_err(|e| {
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            msg = format!("{msg}: {s}");
            source = s.source();
        }
        msg
    })?;
    let status = resp.status().as_u16();
    let body = capped_body(resp).await;
    if status != health.status {
        return Err(format!(
            "HTTP {status} (expected {}): {}",
            health.status,
            snippet(&body)
        ));
    }
    match &health.body {
        Some(text) if !body.contains(text.as_str()) => Err(format!(
            "HTTP {status} without `{text}` in the body: {}",
            snippet(&body)
        )),
        _ => Ok(()),
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
