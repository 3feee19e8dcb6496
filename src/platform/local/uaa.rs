//! The local platform's UAA: `POST /oauth/token` as Cloud Foundry's UAA
//! answers it, so a CF client (the cf CLI, bluegreen's `platform: cf`) can
//! log in here as at any foundation. The root document links it as both
//! `login` and `uaa`; it is served outside the bearer check, as UAA is.
//!
//! Form-encoded, the client in HTTP Basic auth (or `client_id` and
//! `client_secret` in the form). Two clients:
//! - `cf`, empty secret (the cf CLI's): grants `password` for user `admin`,
//!   whose password is the daemon's API token (`$BLUEGREEN_HOME/platform/
//!   token`), and `refresh_token`;
//! - `bluegreen`, whose secret is the same API token: `client_credentials`.
//!
//! Errors in UAA's shape (`{"error", "error_description"}`): 401
//! `unauthorized` "Bad credentials" for a wrong password or secret, 400
//! `invalid_grant` for a refresh token that is expired, foreign or not one,
//! 400 `unsupported_grant_type`. No token is ever logged or echoed.

use super::state::Platform;
use super::tokens::{Grant, Refresh, Tokens};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use std::sync::Arc;

pub const USER: &str = "admin";
pub const CF_CLIENT: &str = "cf";
pub const BLUEGREEN_CLIENT: &str = "bluegreen";
/// What user `admin` gets through the `cf` client: what CF gives an admin
/// that this platform has a use for (`doppler.firehose` reads log-cache).
const USER_SCOPES: &[&str] = &[
    "openid",
    "uaa.user",
    "cloud_controller.read",
    "cloud_controller.write",
    "cloud_controller.admin",
    "doppler.firehose",
];
/// The `bluegreen` client's authorities, as a CF operator would grant a
/// deploy pipeline's client.
const CLIENT_SCOPES: &[&str] = &[
    "cloud_controller.read",
    "cloud_controller.write",
    "cloud_controller.admin",
    "doppler.firehose",
    "logs.admin",
];

#[derive(Clone)]
struct Uaa {
    platform: Arc<Platform>,
    tokens: Arc<Tokens>,
}

pub(super) fn routes(platform: Arc<Platform>, tokens: Arc<Tokens>) -> Router<Arc<Platform>> {
    use axum::routing::{get, post};
    Router::new()
        .route("/oauth/token", post(token))
        .route("/login", get(login))
        .with_state(Uaa { platform, tokens })
}

/// UAA's error answer.
fn refuse(status: StatusCode, error: &str, description: &str) -> Response {
    let body = Json(json!({ "error": error, "error_description": description }));
    let mut resp = (status, no_store(), body).into_response();
    if status == StatusCode::UNAUTHORIZED {
        let challenge = format!("Basic realm=\"UAA/client\", error=\"{error}\"");
        if let Ok(v) = challenge.parse() {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

/// RFC 6749 §5.1: token answers are never cached.
fn no_store() -> [(header::HeaderName, &'static str); 2] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::PRAGMA, "no-cache"),
    ]
}

fn bad_credentials() -> Response {
    refuse(StatusCode::UNAUTHORIZED, "unauthorized", "Bad credentials")
}

async fn token(State(u): State<Uaa>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let Some(form) = decode_form(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "The request body must be application/x-www-form-urlencoded",
        );
    };
    let param = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some((client, secret)) = client_credentials(&headers, param) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Full authentication is required to access this resource",
        );
    };
    let allowed: &[&str] = match client.as_str() {
        CF_CLIENT if secret.is_empty() => &["password", "refresh_token"],
        BLUEGREEN_CLIENT if u.tokens.is_api_token(&secret) => &["client_credentials"],
        _ => return bad_credentials(),
    };
    let grant_type = match param("grant_type") {
        None => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Missing grant type",
            );
        }
        Some(g @ ("password" | "refresh_token" | "client_credentials")) => g,
        Some(other) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                &format!("Unsupported grant type: {other}"),
            );
        }
    };
    if !allowed.contains(&grant_type) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("Unauthorized grant type: {grant_type}"),
        );
    }
    let issuer = format!("{}/oauth/token", u.platform.base_url());
    let requested = param("scope");
    let (grant, refresh) = match grant_type {
        "password" => {
            let good = param("username") == Some(USER)
                && param("password").is_some_and(|p| u.tokens.is_api_token(p));
            if !good {
                return bad_credentials();
            }
            let Some(scopes) = narrowed(USER_SCOPES, requested) else {
                return invalid_scope(requested);
            };
            let grant = Grant {
                grant_type: grant_type.into(),
                client_id: client,
                user_name: Some(USER.into()),
                scopes,
            };
            (grant, Refresh::New)
        }
        "refresh_token" => {
            let given = param("refresh_token").unwrap_or_default();
            let mut grant = match u.tokens.refresh(given, &client) {
                Ok(g) => g,
                Err(why) => return refuse(StatusCode::BAD_REQUEST, "invalid_grant", why),
            };
            let had: Vec<&str> = grant.scopes.iter().map(String::as_str).collect();
            let Some(scopes) = narrowed(&had, requested) else {
                return invalid_scope(requested);
            };
            grant.scopes = scopes;
            (grant, Refresh::Keep(given))
        }
        _ => {
            let Some(scopes) = narrowed(CLIENT_SCOPES, requested) else {
                return invalid_scope(requested);
            };
            let grant = Grant {
                grant_type: grant_type.into(),
                client_id: client,
                user_name: None,
                scopes,
            };
            (grant, Refresh::None)
        }
    };
    let answer = u.tokens.issue(&grant, &issuer, refresh);
    (no_store(), Json(answer)).into_response()
}

/// The scopes asked for (space-separated) if all are `allowed`; all of
/// them when none are asked for.
fn narrowed(allowed: &[&str], requested: Option<&str>) -> Option<Vec<String>> {
    let Some(asked) = requested.filter(|r| !r.trim().is_empty()) else {
        return Some(allowed.iter().map(|s| s.to_string()).collect());
    };
    asked
        .split_whitespace()
        .map(|s| allowed.contains(&s).then(|| s.to_string()))
        .collect()
}

fn invalid_scope(requested: Option<&str>) -> Response {
    refuse(
        StatusCode::BAD_REQUEST,
        "invalid_scope",
        &format!(
            "Invalid scope: {}. Leave `scope` out to get the default scopes.",
            requested.unwrap_or_default()
        ),
    )
}

/// The client's id and secret: from HTTP Basic auth, as the cf CLI sends
/// them, else from the form.
fn client_credentials<'a>(
    headers: &HeaderMap,
    param: impl Fn(&str) -> Option<&'a str>,
) -> Option<(String, String)> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let (scheme, encoded) = auth.to_str().ok()?.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        return Some((id.to_string(), secret.to_string()));
    }
    let id = param("client_id")?;
    Some((
        id.to_string(),
        param("client_secret").unwrap_or("").to_string(),
    ))
}

/// `application/x-www-form-urlencoded` pairs; None if the body is not that
/// (a bad `%` escape, or text that is not UTF-8).
pub(super) fn decode_form(body: &[u8]) -> Option<Vec<(String, String)>> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Some((unescape(k)?, unescape(v)?))
        })
        .collect()
}

fn unescape(s: &str) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            b => b,
        });
    }
    String::from_utf8(out).ok()
}

/// `GET /login`: UAA's info document, where the cf CLI reads the prompts
/// `cf login` asks.
async fn login(State(u): State<Uaa>) -> Json<Value> {
    let base = u.platform.base_url();
    Json(json!({
        "app": { "version": env!("CARGO_PKG_VERSION") },
        "links": { "uaa": base, "login": base },
        "zone_name": "uaa",
        "prompts": {
            "username": ["text", "Username"],
            "password": ["password", "Password"],
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode_as_browsers_encode_them() {
        let f = decode_form(b"grant_type=password&username=a%2Bb+c&password=&x").unwrap();
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            pairs,
            [
                ("grant_type", "password"),
                ("username", "a+b c"),
                ("password", ""),
                ("x", "")
            ]
        );
        assert!(decode_form(b"a=%zz").is_none());
        assert!(decode_form(b"a=%4").is_none());
        assert!(decode_form(b"a=%ff").is_none(), "not UTF-8");
        assert!(decode_form(b"").unwrap().is_empty());
    }

    #[test]
    fn a_scope_outside_the_clients_is_refused_not_dropped() {
        assert_eq!(
            narrowed(USER_SCOPES, None).unwrap().len(),
            USER_SCOPES.len()
        );
        assert_eq!(
            narrowed(USER_SCOPES, Some("openid cloud_controller.read")).unwrap(),
            ["openid", "cloud_controller.read"]
        );
        assert!(narrowed(USER_SCOPES, Some("openid uaa.admin")).is_none());
    }
}
