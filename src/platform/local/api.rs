//! The local platform's HTTP API: the Cloud Foundry v3 subset bluegreen uses
//! (see `../../../shared/cf-v3-api.md` in the steering repo), with CF's
//! envelopes, pagination and errors, behind a bearer token.

use super::records::*;
use super::state::{ApiErr, ApiResult, Platform};
use crate::platform::lease::{AcquireRequest, Acquired, Lease};
use crate::platform::v3;
use axum::extract::{Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

type S = State<Arc<Platform>>;
type Q = Query<HashMap<String, String>>;

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
    let token = Arc::new(token);
    Router::new()
        .route("/v3/organizations", get(orgs))
        .route("/v3/spaces", get(spaces))
        .route("/v3/domains", get(domains))
        .route("/v3/apps", get(list_apps).post(create_app))
        .route(
            "/v3/apps/{guid}",
            get(get_app).patch(update_app).delete(delete_app),
        )
        .route(
            "/v3/apps/{guid}/environment_variables",
            get(get_env).patch(patch_env),
        )
        .route("/v3/apps/{guid}/actions/{action}", post(app_action))
        .route("/v3/apps/{guid}/droplets", get(app_droplets))
        .route("/v3/apps/{guid}/droplets/current", get(current_droplet))
        .route(
            "/v3/apps/{guid}/relationships/current_droplet",
            get(current_rel).patch(set_current),
        )
        .route("/v3/apps/{guid}/tasks", post(create_task))
        .route("/v3/packages", post(create_package))
        .route("/v3/packages/{guid}", get(get_package))
        .route(
            "/v3/packages/{guid}/upload",
            // The handler enforces the platform's own limit while streaming.
            post(upload_package).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v3/builds", post(create_build))
        .route("/v3/builds/{guid}", get(get_build))
        .route("/v3/droplets/{guid}", get(get_droplet))
        .route("/v3/tasks/{guid}", get(get_task))
        .route("/v3/routes", get(list_routes).post(create_route))
        .route("/v3/routes/{guid}", get(get_route))
        .route(
            "/v3/routes/{guid}/destinations",
            get(get_dests).post(add_dests).patch(replace_dests),
        )
        .route(
            "/v3/routes/{guid}/destinations/{dest}",
            axum::routing::delete(remove_dest),
        )
        .route("/v3/jobs/{guid}", get(get_job))
        .route("/bluegreen/v1/apps/{guid}/inflight", get(inflight))
        .route("/bluegreen/v1/apps/{guid}/logs", get(logs))
        .route(
            "/bluegreen/v1/locks/{app}",
            get(get_lock).put(put_lock).delete(delete_lock),
        )
        .route("/v3/droplets", post(copy_droplet))
        .merge(super::service_api::routes())
        .merge(super::process_api::routes())
        .merge(super::manifest_api::routes())
        .route(
            super::faults::PATH,
            get(super::faults::counted).put(super::faults::arm),
        )
        .layer(axum::middleware::from_fn_with_state(
            platform.clone(),
            |State(p): S, req: Request, next: Next| super::faults::inject(p, req, next),
        ))
        .layer(axum::middleware::from_fn(
            move |req: Request, next: Next| {
                let token = token.clone();
                async move { authorize(&token, req, next).await }
            },
        ))
        .route("/", get(root))
        .with_state(platform)
}

async fn authorize(token: &str, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    match given.as_deref().and_then(|h| h.split_once(' ')) {
        Some((scheme, t))
            if scheme.eq_ignore_ascii_case("bearer") && constant_eq(t.trim(), token) =>
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

/// Comparing in constant time keeps the token from leaking through timing.
fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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
        json!({ "href": format!("{}{path}?{}", p.api_url, query.join("&")) })
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

async fn root(State(p): S) -> Json<Value> {
    Json(json!({ "links": {
        "self": { "href": p.api_url },
        "cloud_controller_v3": { "href": format!("{}/v3", p.api_url) },
        "login": { "href": p.api_url },
        "uaa": null,
        "bluegreen_router": { "href": format!("http://{}:{}", super::router::DOMAIN, p.router_port) },
    }}))
}

async fn orgs(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let all = vec![v3::Named {
        guid: ORG_GUID.into(),
        name: ORG_NAME.into(),
        relationships: BTreeMap::new(),
    }];
    page(
        &p,
        "/v3/organizations",
        &q,
        all.into_iter()
            .filter(|o| filter(&q, "names", &o.name))
            .collect(),
    )
}

async fn spaces(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let space = v3::Named {
        guid: SPACE_GUID.into(),
        name: SPACE_NAME.into(),
        relationships: [("organization".to_string(), v3::ToOne::to(ORG_GUID))].into(),
    };
    let keep = filter(&q, "names", SPACE_NAME) && filter(&q, "organization_guids", ORG_GUID);
    page(
        &p,
        "/v3/spaces",
        &q,
        if keep { vec![space] } else { vec![] },
    )
}

async fn domains(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let d = v3::Named {
        guid: DOMAIN_GUID.into(),
        name: super::router::DOMAIN.into(),
        relationships: BTreeMap::new(),
    };
    page(
        &p,
        "/v3/domains",
        &q,
        if filter(&q, "names", &d.name) {
            vec![d]
        } else {
            vec![]
        },
    )
}

async fn list_apps(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let apps: Vec<v3::App> = p
        .all::<AppRec>(APP)?
        .into_iter()
        .map(|r| r.app)
        .filter(|a| filter(&q, "names", &a.name) && filter(&q, "space_guids", SPACE_GUID))
        .collect();
    page(&p, "/v3/apps", &q, apps)
}

#[derive(Deserialize)]
struct CreateApp {
    name: String,
    relationships: BTreeMap<String, v3::ToOne>,
    #[serde(default)]
    environment_variables: BTreeMap<String, String>,
}

async fn create_app(
    State(p): S,
    Json(body): Json<CreateApp>,
) -> ApiResult<(StatusCode, Json<v3::App>)> {
    let space = body
        .relationships
        .get("space")
        .and_then(|r| r.guid().map(String::from));
    if space.as_deref() != Some(SPACE_GUID) {
        return Err(ApiErr::unprocessable(
            "Invalid space. Ensure that the space exists and you have access to it.".into(),
        ));
    }
    Ok((
        StatusCode::CREATED,
        Json(p.create_app(&body.name, body.environment_variables)?.app),
    ))
}

async fn get_app(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::App>> {
    Ok(Json(p.app(&guid)?.app))
}

#[derive(Deserialize)]
struct UpdateApp {
    #[serde(default)]
    metadata: Option<v3::Metadata>,
}

async fn update_app(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<UpdateApp>,
) -> ApiResult<Json<v3::App>> {
    let mut rec = p.app(&guid)?;
    if let Some(meta) = body.metadata {
        // CF merges metadata; a null value deletes the key.
        for (target, changes) in [
            (&mut rec.app.metadata.labels, meta.labels),
            (&mut rec.app.metadata.annotations, meta.annotations),
        ] {
            for (k, v) in changes {
                match v {
                    Some(v) => target.insert(k, Some(v)),
                    None => target.remove(&k),
                };
            }
        }
    }
    rec.app.updated_at = now();
    p.put(APP, &guid, &rec)?;
    Ok(Json(rec.app))
}

async fn delete_app(State(p): S, Path(guid): Path<String>) -> ApiResult<Response> {
    p.delete_app(&guid).await?;
    Ok(completed_job(&p, "app.delete"))
}

/// The local platform finishes work before answering; a job still tells the
/// client where to look, as CF's asynchronous endpoints do.
pub(super) fn completed_job(p: &Platform, operation: &str) -> Response {
    let guid = format!("{operation}~{}", new_guid());
    let location = format!("{}/v3/jobs/{guid}", p.api_url);
    (StatusCode::ACCEPTED, [("location", location)]).into_response()
}

async fn get_job(Path(guid): Path<String>) -> ApiResult<Json<v3::Job>> {
    let operation = guid
        .split_once('~')
        .map(|(op, _)| op.to_string())
        .ok_or_else(|| ApiErr::not_found("Job"))?;
    Ok(Json(v3::Job {
        guid,
        state: "COMPLETE".into(),
        operation,
        errors: vec![],
    }))
}

async fn get_env(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({ "var": p.app(&guid)?.env })))
}

async fn patch_env(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<Value>,
) -> ApiResult<Json<Value>> {
    let mut rec = p.app(&guid)?;
    let vars = body
        .get("var")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiErr::unprocessable("expected {\"var\": {...}}".into()))?;
    for (k, v) in vars {
        match v {
            Value::Null => rec.env.remove(k),
            Value::String(s) => rec.env.insert(k.clone(), s.clone()),
            other => rec.env.insert(k.clone(), other.to_string()),
        };
    }
    p.put(APP, &guid, &rec)?;
    Ok(Json(json!({ "var": rec.env })))
}

async fn app_action(
    State(p): S,
    Path((guid, action)): Path<(String, String)>,
) -> ApiResult<Json<v3::App>> {
    Ok(Json(p.set_state(&guid, &action).await?.app))
}

async fn app_droplets(
    State(p): S,
    Path(guid): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    p.app(&guid)?;
    let mut droplets: Vec<v3::Droplet> = p
        .all::<DropletRec>(DROPLET)?
        .into_iter()
        .filter(|d| d.app_guid == guid)
        .map(|d| d.droplet)
        .collect();
    // CF lists oldest first unless asked for `order_by=-created_at`.
    if q.get("order_by").map(String::as_str) == Some("-created_at") {
        droplets.reverse();
    }
    page(&p, &format!("/v3/apps/{guid}/droplets"), &q, droplets)
}

async fn current_droplet(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Droplet>> {
    let rec = p.app(&guid)?;
    let d = rec
        .current_droplet
        .ok_or_else(|| ApiErr::not_found("Droplet"))?;
    Ok(Json(p.get::<DropletRec>(DROPLET, &d)?.droplet))
}

async fn current_rel(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::ToOne>> {
    let rec = p.app(&guid)?;
    Ok(Json(v3::ToOne {
        data: Some(v3::GuidRef {
            guid: rec.current_droplet,
        }),
    }))
}

async fn set_current(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<v3::ToOne>,
) -> ApiResult<Json<v3::ToOne>> {
    let mut rec = p.app(&guid)?;
    let droplet = body
        .guid()
        .ok_or_else(|| ApiErr::unprocessable("a droplet guid is required".into()))?;
    let d: DropletRec = p.get(DROPLET, droplet)?;
    if d.app_guid != guid {
        return Err(ApiErr::unprocessable(format!(
            "droplet {droplet} belongs to another app"
        )));
    }
    rec.current_droplet = Some(droplet.to_string());
    p.put(APP, &guid, &rec)?;
    Ok(Json(body))
}

#[derive(Deserialize)]
struct CreateTask {
    command: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create_task(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<CreateTask>,
) -> ApiResult<(StatusCode, Json<v3::Task>)> {
    Ok((
        StatusCode::ACCEPTED,
        Json(p.start_task(&guid, &body.command, body.name)?),
    ))
}

async fn get_task(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Task>> {
    Ok(Json(p.get::<TaskRec>(TASK, &guid)?.task))
}

#[derive(Deserialize)]
struct CreatePackage {
    #[serde(rename = "type")]
    kind: String,
    relationships: BTreeMap<String, v3::ToOne>,
}

async fn create_package(
    State(p): S,
    Json(body): Json<CreatePackage>,
) -> ApiResult<(StatusCode, Json<v3::Package>)> {
    if body.kind != "bits" {
        return Err(ApiErr::unprocessable(format!(
            "package type `{}` is not supported; use bits",
            body.kind
        )));
    }
    let app_guid = body
        .relationships
        .get("app")
        .and_then(|r| r.guid())
        .ok_or_else(|| ApiErr::unprocessable("an app relationship is required".into()))?;
    p.app(app_guid)?;
    let guid = new_guid();
    let package = v3::Package {
        guid: guid.clone(),
        kind: "bits".into(),
        state: "AWAITING_UPLOAD".into(),
        created_at: now(),
    };
    let zip = p.dir.join("packages").join(format!("{guid}.zip"));
    p.put(
        PACKAGE,
        &guid,
        &PackageRec {
            package: package.clone(),
            app_guid: app_guid.into(),
            zip,
        },
    )?;
    Ok((StatusCode::CREATED, Json(package)))
}

async fn get_package(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Package>> {
    Ok(Json(p.get::<PackageRec>(PACKAGE, &guid)?.package))
}

/// Streams the `bits` field to disk chunk by chunk: an upload costs the
/// daemon a few buffers, whatever its size.
async fn upload_package(
    State(p): S,
    Path(guid): Path<String>,
    headers: axum::http::HeaderMap,
    mut form: Multipart,
) -> ApiResult<Json<v3::Package>> {
    let mut rec: PackageRec = p.get(PACKAGE, &guid)?;
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > p.max_upload) {
        return Err(too_large(p.max_upload));
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(p.max_upload)
        } else {
            ApiErr::unprocessable(format!("bad upload: {}", e.body_text()))
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        if field.name() != Some("bits") {
            continue;
        }
        let partial = rec.zip.with_extension("zip.part");
        let io = |e: std::io::Error| ApiErr::internal(format!("{}: {e}", partial.display()));
        let mut file = tokio::fs::File::create(&partial).await.map_err(io)?;
        let mut written = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            written += chunk.len() as u64;
            if written > p.max_upload {
                drop(file);
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(too_large(p.max_upload));
            }
            tokio::io::AsyncWriteExt::write_all(&mut file, &chunk)
                .await
                .map_err(io)?;
        }
        tokio::io::AsyncWriteExt::flush(&mut file)
            .await
            .map_err(io)?;
        drop(file);
        tokio::fs::rename(&partial, &rec.zip).await.map_err(io)?;
        rec.package.state = "READY".into();
        p.put(PACKAGE, &guid, &rec)?;
        return Ok(Json(rec.package));
    }
    Err(ApiErr::unprocessable(
        "the upload needs a multipart field named `bits`".into(),
    ))
}

fn too_large(limit: u64) -> ApiErr {
    ApiErr(
        413,
        10000,
        "CF-PayloadTooLarge",
        format!(
            "the package is larger than the local platform's upload limit of {}; raise it with \
             `bluegreen platform stop` then `bluegreen platform start --max-upload SIZE` \
             (or BLUEGREEN_MAX_UPLOAD=SIZE)",
            crate::units::format_size(limit)
        ),
    )
}

#[derive(Deserialize)]
struct CreateBuild {
    package: v3::Guid,
}

async fn create_build(
    State(p): S,
    Json(body): Json<CreateBuild>,
) -> ApiResult<(StatusCode, Json<v3::Build>)> {
    // Unzipping a large app takes a while: keep it off the async workers.
    let rec = tokio::task::spawn_blocking(move || p.stage(&body.package.guid))
        .await
        .map_err(ApiErr::internal)??;
    Ok((StatusCode::CREATED, Json(rec.build)))
}

async fn get_build(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Build>> {
    Ok(Json(p.get::<BuildRec>(BUILD, &guid)?.build))
}

async fn get_droplet(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Droplet>> {
    Ok(Json(p.get::<DropletRec>(DROPLET, &guid)?.droplet))
}

async fn list_routes(State(p): S, Query(q): Q) -> ApiResult<Json<Value>> {
    let routes: Vec<v3::Route> = p
        .all::<v3::Route>(ROUTE)?
        .into_iter()
        .filter(|r| {
            filter(&q, "hosts", &r.host)
                && filter(&q, "domain_guids", DOMAIN_GUID)
                && filter(&q, "space_guids", SPACE_GUID)
        })
        .collect();
    page(&p, "/v3/routes", &q, routes)
}

#[derive(Deserialize)]
struct CreateRoute {
    host: String,
    relationships: BTreeMap<String, v3::ToOne>,
}

async fn create_route(
    State(p): S,
    Json(body): Json<CreateRoute>,
) -> ApiResult<(StatusCode, Json<v3::Route>)> {
    let domain = body.relationships.get("domain").and_then(|r| r.guid());
    if domain != Some(DOMAIN_GUID) {
        return Err(ApiErr::unprocessable(
            "Invalid domain. The local platform has one domain, apps.localhost.".into(),
        ));
    }
    if p.all::<v3::Route>(ROUTE)?
        .iter()
        .any(|r| r.host == body.host)
        || p.all::<AppRec>(APP)?
            .iter()
            .any(|a| a.app.name == body.host)
    {
        return Err(ApiErr::unprocessable(format!(
            "Route already exists with host '{}' for domain 'apps.localhost'.",
            body.host
        )));
    }
    let guid = new_guid();
    let route = v3::Route {
        guid: guid.clone(),
        host: body.host.clone(),
        path: String::new(),
        url: format!("{}.{}", body.host, super::router::DOMAIN),
        destinations: vec![],
        relationships: [
            ("space".to_string(), v3::ToOne::to(SPACE_GUID)),
            ("domain".to_string(), v3::ToOne::to(DOMAIN_GUID)),
        ]
        .into(),
    };
    p.put(ROUTE, &guid, &route)?;
    p.refresh_routes()?;
    Ok((StatusCode::CREATED, Json(route)))
}

async fn get_route(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<v3::Route>> {
    Ok(Json(p.get(ROUTE, &guid)?))
}

async fn get_dests(
    State(p): S,
    Path(guid): Path<String>,
    Query(q): Q,
) -> ApiResult<Json<v3::Destinations>> {
    let route: v3::Route = p.get(ROUTE, &guid)?;
    let destinations = route
        .destinations
        .into_iter()
        .filter(|d| filter(&q, "app_guids", &d.app.guid))
        .collect();
    Ok(Json(v3::Destinations { destinations }))
}

async fn change_dests(
    p: &Platform,
    guid: &str,
    body: v3::Destinations,
    replace: bool,
) -> ApiResult<Json<v3::Destinations>> {
    let mut route: v3::Route = p.get(ROUTE, guid)?;
    if replace {
        route.destinations.clear();
    }
    for mut d in body.destinations {
        p.app(&d.app.guid)?;
        if route.destinations.iter().any(|x| x.app.guid == d.app.guid) {
            continue;
        }
        d.guid = new_guid();
        d.app
            .process
            .get_or_insert(v3::ProcessType { kind: "web".into() });
        route.destinations.push(d);
    }
    p.put(ROUTE, guid, &route)?;
    p.refresh_routes()?;
    Ok(Json(v3::Destinations {
        destinations: route.destinations,
    }))
}

async fn add_dests(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<v3::Destinations>,
) -> ApiResult<Json<v3::Destinations>> {
    change_dests(&p, &guid, body, false).await
}

async fn replace_dests(
    State(p): S,
    Path(guid): Path<String>,
    Json(body): Json<v3::Destinations>,
) -> ApiResult<Json<v3::Destinations>> {
    change_dests(&p, &guid, body, true).await
}

async fn remove_dest(
    State(p): S,
    Path((guid, dest)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let mut route: v3::Route = p.get(ROUTE, &guid)?;
    let before = route.destinations.len();
    route.destinations.retain(|d| d.guid != dest);
    if route.destinations.len() == before {
        return Err(ApiErr::not_found("Destination"));
    }
    p.put(ROUTE, &guid, &route)?;
    p.refresh_routes()?;
    Ok(StatusCode::NO_CONTENT)
}

async fn inflight(State(p): S, Path(guid): Path<String>) -> ApiResult<Json<Value>> {
    p.app(&guid)?;
    Ok(Json(json!({ "inflight": p.router.inflight(&guid) })))
}

async fn logs(State(p): S, Path(guid): Path<String>) -> ApiResult<String> {
    p.app(&guid)?;
    Ok(std::fs::read_to_string(p.supervisor.log_path(&guid)).unwrap_or_default())
}

/// Lease checks and writes happen under this mutex, so two deploys cannot
/// both see a free lock (the daemon is the single writer of its store).
static LEASES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn get_lock(State(p): S, Path(app): Path<String>) -> ApiResult<Json<Value>> {
    let holder: Option<Lease> = p.get(LEASE, &app).ok();
    Ok(Json(json!({ "holder": holder })))
}

async fn put_lock(
    State(p): S,
    Path(app): Path<String>,
    Json(req): Json<AcquireRequest>,
) -> ApiResult<Json<Acquired>> {
    if req.lease.app != app {
        return Err(ApiErr::unprocessable(format!(
            "the lease is for {}, not {app}",
            req.lease.app
        )));
    }
    let _guard = LEASES.lock().await;
    let decision = crate::platform::lease::decide(p.get(LEASE, &app).ok(), &req);
    if decision.acquired {
        p.put(LEASE, &app, &req.lease)?;
    }
    Ok(Json(decision))
}

async fn delete_lock(State(p): S, Path(app): Path<String>, Query(q): Q) -> ApiResult<Json<Value>> {
    let _guard = LEASES.lock().await;
    let held: Option<Lease> = p.get(LEASE, &app).ok();
    let force = q.get("force").is_some_and(|f| f == "true");
    let released = match &held {
        Some(h) if force || q.get("id") == Some(&h.id) => {
            p.delete(LEASE, &app)?;
            true
        }
        _ => false,
    };
    Ok(Json(json!({ "released": released, "holder": held })))
}

#[derive(Deserialize)]
struct CopyDroplet {
    relationships: BTreeMap<String, v3::ToOne>,
}

/// `POST /v3/droplets?source_guid=G`: the droplet for another app. Droplets
/// are immutable, so the copy shares the source's files.
async fn copy_droplet(
    State(p): S,
    Query(q): Q,
    Json(body): Json<CopyDroplet>,
) -> ApiResult<(StatusCode, Json<v3::Droplet>)> {
    let source = q
        .get("source_guid")
        .ok_or_else(|| ApiErr::unprocessable("source_guid is required".into()))?;
    let app_guid = body
        .relationships
        .get("app")
        .and_then(|r| r.guid())
        .ok_or_else(|| ApiErr::unprocessable("relationships.app is required".into()))?
        .to_string();
    p.app(&app_guid)?;
    let src: DropletRec = p.get(DROPLET, source)?;
    let guid = new_guid();
    let droplet = v3::Droplet {
        guid: guid.clone(),
        created_at: now(),
        ..src.droplet
    };
    p.put(
        DROPLET,
        &guid,
        &DropletRec {
            droplet: droplet.clone(),
            app_guid: app_guid.clone(),
            dir: src.dir,
        },
    )?;
    p.prune(&app_guid)?;
    Ok((StatusCode::CREATED, Json(droplet)))
}
