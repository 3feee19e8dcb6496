//! The local platform's HTTP API: the Cloud Foundry v3 subset bluegreen uses
//! (see `../../../shared/cf-v3-api.md` in the steering repo), with CF's
//! envelopes, pagination and errors, behind a bearer token.
//!
//! This file assembles the router and holds what every endpoint shares
//! (the token check, the error envelope, pages, filters, jobs, the blocking
//! pool); the endpoints themselves are in one `*_api.rs` file per resource,
//! and what they do is `Platform`'s (`state.rs`).

use super::state::{ApiErr, ApiResult, Platform};
use crate::platform::v3;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = v3::ErrorEnvelope {
            errors: vec![v3::ApiError {
                code: self.1,
                title: self.2.to_string(),
                detail: self.3,
            }],
        };
        (status, Json(body)).into_response()
    }
}

pub fn routes(platform: Arc<Platform>, token: String) -> Router {
    let tokens = Arc::new(super::tokens::Tokens::from_env(token));
    let bearer = tokens.clone();
    Router::new()
        .merge(super::meta_api::routes())
        .merge(super::apps_api::routes())
        .merge(super::packages_api::routes())
        .merge(super::routes_api::routes())
        .merge(super::service_api::routes())
        .merge(super::process_api::routes())
        .merge(super::manifest_api::routes())
        .merge(super::log_cache_api::routes())
        .merge(super::deployments_api::routes())
        .merge(super::revisions_api::routes())
        .route(
            super::faults::PATH,
            get(super::faults::counted).put(super::faults::arm),
        )
        .route_layer(axum::middleware::from_fn(super::query_check::known_query))
        .fallback(super::query_check::unknown_request)
        .method_not_allowed_fallback(super::query_check::unknown_request)
        .layer(axum::middleware::from_fn_with_state(
            platform.clone(),
            |State(p): State<Arc<Platform>>, req: Request, next: Next| {
                super::faults::inject(p, req, next)
            },
        ))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let tokens = bearer.clone();
                async move { authorize(&tokens, req, next).await }
            },
        ))
        // The root names the API's endpoints, and UAA hands out tokens: CF
        // serves both to anyone.
        .route("/", get(super::meta_api::root))
        .route("/v3", get(super::meta_api::v3_root))
        .merge(super::uaa::routes(platform.clone(), tokens))
        .with_state(platform)
}

/// The API token, or an unexpired access token this daemon issued
/// (`tokens.rs`). Whatever was given stays out of every answer and log.
async fn authorize(tokens: &super::tokens::Tokens, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    match given.as_deref().and_then(|h| h.split_once(' ')) {
        Some((scheme, t))
            if scheme.eq_ignore_ascii_case("bearer") && tokens.check_bearer(t.trim()).is_ok() =>
        {
            next.run(req).await
        }
        Some(_) => ApiErr(
            401,
            1000,
            "CF-InvalidAuthToken",
            "Invalid Auth Token".into(),
        )
        .into_response(),
        None => ApiErr(
            401,
            10002,
            "CF-NotAuthenticated",
            "Authentication error".into(),
        )
        .into_response(),
    }
}

/// Runs `f` on tokio's blocking pool. The store is SQLite that syncs each
/// commit to disk, and staging, uploads and logs are file work: done on an
/// async worker they would stall every other request that worker serves.
pub(super) async fn blocking<R: Send + 'static>(
    p: &Arc<Platform>,
    f: impl FnOnce(&Platform) -> ApiResult<R> + Send + 'static,
) -> ApiResult<R> {
    let p = p.clone();
    tokio::task::spawn_blocking(move || f(&p))
        .await
        .map_err(ApiErr::internal)?
}

/// A CF list page over `items`, honouring `page` and `per_page`.
pub(super) fn page<T: serde::Serialize>(
    p: &Platform,
    path: &str,
    q: &HashMap<String, String>,
    items: Vec<T>,
) -> ApiResult<Json<Value>> {
    let per_page: usize = q.get("per_page").and_then(|v| v.parse().ok()).unwrap_or(50);
    let page: usize = q.get("page").and_then(|v| v.parse().ok()).unwrap_or(1);
    if !(1..=5000).contains(&per_page) || page == 0 {
        return Err(ApiErr(
            400,
            10005,
            "CF-BadQueryParameter",
            "page must be >= 1 and per_page 1-5000".into(),
        ));
    }
    let total = items.len();
    let pages = total.div_ceil(per_page).max(1);
    let mut others: Vec<(String, String)> = q
        .iter()
        .filter(|(k, _)| *k != "page" && *k != "per_page")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    others.sort();
    let href = |n: usize| {
        let mut query: Vec<String> = others.iter().map(|(k, v)| format!("{k}={v}")).collect();
        query.push(format!("page={n}"));
        query.push(format!("per_page={per_page}"));
        json!({ "href": format!("{}{path}?{}", p.base_url(), query.join("&")) })
    };
    let resources: Vec<T> = items
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .collect();
    Ok(Json(json!({
        "pagination": {
            "total_results": total,
            "total_pages": pages,
            "first": href(1),
            "last": href(pages),
            "next": if page < pages { href(page + 1) } else { Value::Null },
            "previous": if page > 1 { href(page - 1) } else { Value::Null },
        },
        "resources": resources,
    })))
}

/// Whether `value` is in the comma-separated filter `key` (absent: match all).
pub(super) fn filter(q: &HashMap<String, String>, key: &str, value: &str) -> bool {
    q.get(key)
        .is_none_or(|list| list.split(',').any(|v| v == value))
}

/// The local platform finishes work before answering; a job still tells the
/// client where to look, as CF's asynchronous endpoints do (`meta_api`
/// serves `GET /v3/jobs/:guid`).
pub(super) fn completed_job(p: &Platform, operation: &str) -> Response {
    let guid = format!("{operation}~{}", super::records::new_guid());
    let location = format!("{}/v3/jobs/{guid}", p.base_url());
    (StatusCode::ACCEPTED, [("location", location)]).into_response()
}
