//! What each endpoint of the local platform implements of its query, and
//! CF's answer for the rest. Cloud Controller documents more filters than
//! the local platform implements (`label_selector`, `include`, `order_by`,
//! `created_ats`, ...): a filter ignored with a 200 would hand a script that
//! selects apps by label, then deletes what it found, every app. So a query
//! parameter the endpoint does not implement is CF's own 400
//! (`CF-BadQueryParameter`, as CC answers for unknown ones), and a path or
//! method the platform does not serve is CF's own 404 envelope, never an
//! empty body.

use super::state::ApiErr;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// `page` and `per_page` go with every list below.
const LISTS: &[(&str, &[&str])] = &[
    ("/v3/apps", &["names", "guids", "space_guids"]),
    ("/v3/organizations", &["names"]),
    ("/v3/spaces", &["names", "organization_guids"]),
    ("/v3/domains", &["names"]),
    ("/v3/routes", &["hosts", "domain_guids", "space_guids"]),
    ("/v3/routes/{guid}/destinations", &["app_guids"]),
    ("/v3/apps/{guid}/routes", &["hosts"]),
    ("/v3/apps/{guid}/droplets", &["order_by"]),
    ("/v3/apps/{guid}/processes", &[]),
    ("/v3/processes", &["guids", "types", "app_guids"]),
    ("/v3/deployments", super::deployments_api::FILTERS),
    ("/v3/apps/{guid}/revisions", super::revisions_api::FILTERS),
    ("/v3/service_instances", &["names", "space_guids"]),
    (
        "/v3/service_credential_bindings",
        &["type", "app_guids", "service_instance_guids"],
    ),
];

/// Endpoints that are not lists but take a query of their own.
const OTHERS: &[(&str, &[&str])] = &[
    ("/v3/droplets", &["source_guid"]),
    ("/bluegreen/v1/locks/{app}", &["force", "id"]),
    (super::log_cache_api::PATH, super::log_cache_api::PARAMETERS),
];

/// The query parameters `path` (a route's pattern) implements.
fn implemented(path: &str) -> Vec<&'static str> {
    if let Some((_, names)) = LISTS.iter().find(|(p, _)| *p == path) {
        let mut all = names.to_vec();
        all.extend(["page", "per_page"]);
        return all;
    }
    OTHERS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, names)| names.to_vec())
        .unwrap_or_default()
}

/// Refuses a query parameter the matched endpoint does not implement, with
/// the parameters it does, as CC words it.
pub(super) async fn known_query(req: Request, next: Next) -> Response {
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let query = req.uri().query().unwrap_or_default().to_string();
    let valid = implemented(&path);
    let mut unknown: Vec<String> = query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split('=').next().unwrap_or_default().to_string())
        .filter(|name| !valid.contains(&name.as_str()))
        .collect();
    unknown.dedup();
    if unknown.is_empty() {
        return next.run(req).await;
    }
    let quoted = |names: &[String]| {
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let valid: Vec<String> = valid.iter().map(|s| s.to_string()).collect();
    ApiErr(
        400,
        10005,
        "CF-BadQueryParameter",
        format!(
            "The query parameter is invalid: Unknown query parameter(s): {}. Valid parameters \
             are: {} (the local platform implements only these)",
            quoted(&unknown),
            if valid.is_empty() {
                "none".to_string()
            } else {
                quoted(&valid)
            }
        ),
    )
    .into_response()
}

/// A path or method the platform does not serve: CC's own answer.
pub(super) async fn unknown_request() -> Response {
    ApiErr(404, 10000, "CF-NotFound", "Unknown request".into()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_page_and_the_rest_take_only_their_own() {
        assert!(implemented("/v3/apps").contains(&"per_page"));
        assert!(!implemented("/v3/apps").contains(&"label_selector"));
        assert_eq!(implemented("/v3/droplets"), ["source_guid"]);
        assert!(implemented("/v3/apps/{guid}").is_empty());
    }
}
