//! The page's buttons: `POST /api/promote`, `/api/resume`, `/api/abort`
//! do what `bluegreen promote`/`resume`/`abort` do (`cli::operator::send`:
//! the command written next to the deploy's lease with this process's
//! credentials, acknowledged by the deploy, journaled with who and why),
//! as `dashboard (user@host)`.
//!
//! A button acts with the credentials of whoever started the dashboard, so
//! only the page this process served may press it. A POST must carry the
//! token that page embeds (`x-bluegreen-token`; another site's page cannot
//! read it, and cannot send the header cross-origin without a preflight we
//! never grant) and an `Origin` naming this server (the `Host` check is
//! the router's, for every request). Otherwise 403, and nothing is sent.

use super::Shared;
use crate::cli::operator::{NoDeploy, send};
use crate::platform::lease::control::Verb;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long a button waits for the deploy to take the command (as the
/// CLI's default `--wait`).
const WAIT: Duration = Duration::from_secs(30);
/// A reason longer than this is cut: it goes into the journal.
const REASON_MAX: usize = 500;
/// The header the page's buttons send the token in.
pub const TOKEN_HEADER: &str = "x-bluegreen-token";

pub fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/promote", post(|s, h, b| act(Verb::Promote, s, h, b)))
        .route("/api/resume", post(|s, h, b| act(Verb::Resume, s, h, b)))
        .route("/api/abort", post(|s, h, b| act(Verb::Abort, s, h, b)))
}

/// The body a button sends: `{"reason": "..."}` (optional).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Act {
    #[serde(default)]
    reason: Option<String>,
}

async fn act(
    verb: Verb,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(why) = allowed(&headers, &shared.token, &shared.hosts) {
        return super::forbidden(why);
    }
    let act: Act = match body.is_empty() {
        true => Act::default(),
        false => match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(e) => return answer(StatusCode::BAD_REQUEST, format!("the body: {e}")),
        },
    };
    let reason = act
        .reason
        .map(|r| r.trim().chars().take(REASON_MAX).collect::<String>())
        .filter(|r| !r.is_empty());
    match send(&shared.loaded, verb, reason, WAIT, shared.by.clone()).await {
        Ok(taken) => (StatusCode::OK, Json(taken.json())).into_response(),
        Err(e) if e.chain().any(|c| c.is::<NoDeploy>()) => {
            answer(StatusCode::CONFLICT, format!("{e:#}"))
        }
        Err(e) => answer(StatusCode::BAD_GATEWAY, format!("{e:#}")),
    }
}

fn answer(status: StatusCode, error: String) -> Response {
    let error = crate::output::printable(&error).to_string();
    (status, Json(json!({"error": error}))).into_response()
}

/// Whether a POST comes from the page this process served: its token, and
/// an `Origin` naming this server (browsers send one with every POST).
fn allowed(headers: &HeaderMap, token: &str, hosts: &[String]) -> Result<(), &'static str> {
    let sent = headers
        .get(TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same(sent, token.as_bytes()) {
        return Err("a button needs the token of the page this dashboard served");
    }
    let origin = headers
        .get(axum::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let ours = origin
        .strip_prefix("http://")
        .is_some_and(|o| hosts.iter().any(|h| h.eq_ignore_ascii_case(o)));
    if !ours {
        return Err("a button must be pressed on this dashboard's own page (Origin)");
    }
    Ok(())
}

/// Compares in time that does not depend on where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_post_needs_the_token_and_this_servers_origin() {
        let hosts = vec!["127.0.0.1:8900".to_string(), "localhost:8900".to_string()];
        let token = "ab".repeat(32);
        let ok = |h: &HeaderMap| allowed(h, &token, &hosts);
        let origin = ("origin", "http://127.0.0.1:8900");
        assert!(ok(&headers(&[(TOKEN_HEADER, &token), origin])).is_ok());
        let local = ("origin", "http://localhost:8900");
        assert!(ok(&headers(&[(TOKEN_HEADER, &token), local])).is_ok());
        // No token, a wrong one, one a byte short.
        assert!(ok(&headers(&[origin])).is_err());
        assert!(ok(&headers(&[(TOKEN_HEADER, &"cd".repeat(32)), origin])).is_err());
        assert!(ok(&headers(&[(TOKEN_HEADER, &token[1..]), origin])).is_err());
        // The token, but from another site, or with no Origin at all.
        for o in [
            "http://evil.example",
            "http://127.0.0.1:8901",
            "https://127.0.0.1:8900",
            "null",
        ] {
            assert!(
                ok(&headers(&[(TOKEN_HEADER, &token), ("origin", o)])).is_err(),
                "{o}"
            );
        }
        assert!(ok(&headers(&[(TOKEN_HEADER, &token)])).is_err());
    }
}
