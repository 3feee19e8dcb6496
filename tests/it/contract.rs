//! Contract tests: the client's types and behaviour against JSON taken from
//! Cloud Foundry's published v3 API docs (`tests/fixtures/cf/`, sources in
//! its README), so the client works against a real CF, not only our daemon.
//! The fake server here stands in for a remote CF we cannot run; it serves
//! only those documented shapes.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bluegreen::platform::auth::{self, CfConfig};
use bluegreen::platform::client::CfClient;
use bluegreen::platform::{PlatformError, v3};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod lock_app;
mod log_cache;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/cf/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parse<T: DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&fixture(name))
        .unwrap_or_else(|e| panic!("{name} does not fit the client's type: {e}"))
}

#[test]
fn documented_responses_parse_into_the_clients_types() {
    let app: v3::App = parse("app.json");
    assert!(!app.guid.is_empty() && !app.name.is_empty());
    let page1: v3::List<v3::App> = parse("apps_list_page1.json");
    assert!(page1.pagination.next.is_some());
    let page2: v3::List<v3::App> = parse("apps_list_page2.json");
    assert!(page2.pagination.next.is_none());
    for name in [
        "organizations_list.json",
        "spaces_list.json",
        "domains_list.json",
    ] {
        let list: v3::List<v3::Named> = parse(name);
        assert!(!list.resources.is_empty(), "{name}");
    }
    let _: v3::Package = parse("package_awaiting_upload.json");
    assert_eq!(parse::<v3::Package>("package_ready.json").state, "READY");
    assert_eq!(parse::<v3::Build>("build_staging.json").state, "STAGING");
    let staged: v3::Build = parse("build_staged.json");
    assert!(staged.droplet.is_some_and(|d| !d.guid.is_empty()));
    let failed: v3::Build = parse("build_failed.json");
    assert!(failed.error.is_some() && failed.droplet.is_none());
    let _: v3::Droplet = parse("droplet.json");
    let droplets: v3::List<v3::Droplet> = parse("droplets_list.json");
    assert!(!droplets.resources.is_empty());
    assert!(
        parse::<v3::ToOne>("current_droplet_relationship.json")
            .guid()
            .is_some()
    );
    // An app without a droplet: CC answers {"data": {"guid": null}}.
    assert_eq!(
        serde_json::from_str::<v3::ToOne>(r#"{"data":{"guid":null}}"#)
            .unwrap()
            .guid(),
        None
    );
    let process: v3::Process = parse("process.json");
    assert_eq!(process.kind, "web");
    let stats: Value = serde_json::from_str(&fixture("process_stats.json")).unwrap();
    let stats: Vec<v3::ProcessStats> = serde_json::from_value(stats["resources"].clone()).unwrap();
    assert_eq!(stats[0].state, "RUNNING");
    let null_ports: v3::ProcessStats =
        serde_json::from_str(r#"{"type":"web","index":0,"state":"DOWN","instance_ports":null}"#)
            .unwrap();
    assert!(null_ports.instance_ports.is_empty());
    assert_eq!(parse::<v3::Task>("task_running.json").state, "RUNNING");
    assert_eq!(parse::<v3::Task>("task_succeeded.json").state, "SUCCEEDED");
    assert!(
        parse::<v3::Task>("task_failed.json")
            .result
            .failure_reason
            .is_some()
    );
    let route: v3::Route = parse("route.json");
    assert!(!route.destinations.is_empty());
    let _: v3::List<v3::Route> = parse("routes_list.json");
    assert!(
        !parse::<v3::Destinations>("destinations.json")
            .destinations
            .is_empty()
    );
    assert_eq!(parse::<v3::Job>("job_complete.json").state, "COMPLETE");
    assert!(!parse::<v3::Job>("job_failed.json").errors.is_empty());
    for (name, code) in [
        ("error_not_found.json", 10010),
        ("error_invalid_auth_token.json", 1000),
        ("error_unprocessable.json", 10008),
    ] {
        assert_eq!(
            parse::<v3::ErrorEnvelope>(name).errors[0].code,
            code,
            "{name}"
        );
    }
    let token: auth::TokenResponse = parse("uaa_token_response.json");
    assert!(!token.access_token.is_empty());
    let config: CfConfig = parse("cf_config.json");
    assert!(auth::jwt_expiry(&config.access_token).is_some());
    assert!(
        !format!("{config:?}").contains(config.bearer()),
        "Debug must not print the token"
    );
}

/// A stand-in for a remote CF + UAA that answers with the documented shapes.
#[derive(Default)]
struct Fake {
    base: Mutex<String>,
    fresh_token: String,
    calls: Mutex<HashMap<String, usize>>,
    refreshes: AtomicUsize,
}

impl Fake {
    fn count(&self, key: &str) -> usize {
        let mut calls = self.calls.lock().unwrap();
        let n = calls.entry(key.to_string()).or_default();
        *n += 1;
        *n
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers.get("authorization").and_then(|h| h.to_str().ok())
            == Some(&format!("bearer {}", self.fresh_token))
            || headers.get("authorization").and_then(|h| h.to_str().ok())
                == Some(&format!("Bearer {}", self.fresh_token))
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [("content-type", "application/json")], body).into_response()
}

async fn apps(
    State(f): State<Arc<Fake>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if !f.authorized(&headers) {
        return json(
            StatusCode::UNAUTHORIZED,
            fixture("error_invalid_auth_token.json"),
        );
    }
    let base = f.base.lock().unwrap().clone();
    let page = if q.get("page").map(String::as_str) == Some("2") {
        "apps_list_page2.json"
    } else {
        "apps_list_page1.json"
    };
    let mut v: Value = serde_json::from_str(&fixture(page)).unwrap();
    if page.ends_with("page1.json") {
        v["pagination"]["next"]["href"] = format!("{base}/v3/apps?page=2&per_page=1").into();
    }
    json(StatusCode::OK, v.to_string())
}

async fn orgs(State(f): State<Arc<Fake>>) -> Response {
    if f.count("orgs") == 1 {
        // CC's rate limiter: 429, Retry-After, a JSON body labelled text/plain.
        let body = fixture("error_rate_limited.json");
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1"), ("content-type", "text/plain")],
            body,
        )
            .into_response();
    }
    json(StatusCode::OK, fixture("organizations_list.json"))
}

async fn flaky_get(State(f): State<Arc<Fake>>) -> Response {
    if f.count("flaky-get") < 3 {
        return json(StatusCode::SERVICE_UNAVAILABLE, "{}".into());
    }
    json(StatusCode::OK, fixture("process.json"))
}

async fn flaky_post(State(f): State<Arc<Fake>>) -> Response {
    f.count("flaky-post");
    json(StatusCode::SERVICE_UNAVAILABLE, "{}".into())
}

async fn missing() -> Response {
    json(StatusCode::NOT_FOUND, fixture("error_not_found.json"))
}

async fn token(State(f): State<Arc<Fake>>, headers: HeaderMap, body: String) -> Response {
    let form: HashMap<String, String> = serde_urlencoded_pairs(&body);
    let config: CfConfig = parse("cf_config.json");
    let rotated = parse::<auth::TokenResponse>("uaa_token_response.json").refresh_token;
    let basic = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if form.get("grant_type").map(String::as_str) != Some("refresh_token")
        // The first refresh uses the login's token, later ones the rotated one.
        || ![Some(&config.refresh_token), rotated.as_ref()].contains(&form.get("refresh_token"))
        || !basic.starts_with("Basic ")
    {
        return json(
            StatusCode::UNAUTHORIZED,
            r#"{"error":"invalid_grant"}"#.into(),
        );
    }
    f.refreshes.fetch_add(1, Ordering::SeqCst);
    json(StatusCode::OK, fixture("uaa_token_response.json"))
}

fn serde_urlencoded_pairs(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(v: &str) -> String {
    let mut out = Vec::new();
    let mut bytes = v.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'%' => {
                let hex: String = bytes.by_ref().take(2).map(char::from).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap());
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn the_client_handles_pagination_errors_retries_and_token_refresh() {
    let fake = Arc::new(Fake {
        fresh_token: parse::<auth::TokenResponse>("uaa_token_response.json").access_token,
        ..Fake::default()
    });
    let app = axum::Router::new()
        .route("/v3/apps", get(apps))
        .route("/v3/organizations", get(orgs))
        .route("/v3/processes/flaky", get(flaky_get).patch(flaky_get))
        .route("/v3/apps/flaky", post(flaky_post))
        .route("/v3/apps/missing", get(missing))
        .route("/uaa/oauth/token", post(token))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *fake.base.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The cf CLI's login state, pointed at the fake.
    let mut config: Value = serde_json::from_str(&fixture("cf_config.json")).unwrap();
    config["Target"] = base.clone().into();
    config["AuthorizationEndpoint"] = format!("{base}/uaa").into();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let client = CfClient::from_cf_login(CfConfig::load(&path).unwrap());

    // A stale token gets CF-InvalidAuthToken: refresh once, retry, then follow both pages.
    let apps: Vec<v3::App> = client.list("/v3/apps?per_page=1").await.unwrap();
    let expected = parse::<v3::List<v3::App>>("apps_list_page1.json")
        .resources
        .len()
        + parse::<v3::List<v3::App>>("apps_list_page2.json")
            .resources
            .len();
    assert_eq!(apps.len(), expected);
    assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1);

    // 429 waits for Retry-After.
    let started = Instant::now();
    let orgs: Vec<v3::Named> = client.list("/v3/organizations").await.unwrap();
    assert!(!orgs.is_empty());
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );

    // 5xx: an idempotent GET is retried, a POST is not.
    let p: v3::Process = client.get("/v3/processes/flaky").await.unwrap();
    assert_eq!(p.kind, "web");
    let err = client
        .post::<Value>("/v3/apps/flaky", &serde_json::json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, PlatformError::Api { status: 503, .. }),
        "{err}"
    );
    assert_eq!(fake.calls.lock().unwrap()["flaky-post"], 1);

    // Errors keep CF's code, title and detail.
    let err = client.get::<v3::App>("/v3/apps/missing").await.unwrap_err();
    let expected = parse::<v3::ErrorEnvelope>("error_not_found.json")
        .errors
        .remove(0);
    match &err {
        PlatformError::Api {
            status,
            code,
            title,
            detail,
            ..
        } => {
            assert_eq!(
                (*status, *code, title, detail),
                (404, expected.code, &expected.title, &expected.detail)
            );
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        !text.contains("fresh-access-token")
            && !text.contains(&parse::<CfConfig>("cf_config.json").refresh_token)
    );
}

#[test]
fn ci_variables_take_precedence_over_the_cf_login() {
    let dir = tempfile::tempdir().unwrap();
    let vars = |ci: bool| {
        let home = dir.path().display().to_string();
        move |k: &str| match k {
            "CF_API" if ci => Some("https://api.example.org".to_string()),
            "CF_ACCESS_TOKEN" if ci => Some("bearer ci-token".to_string()),
            "CF_HOME" => Some(home.clone()),
            _ => None,
        }
    };
    assert_eq!(
        CfClient::for_cloud_foundry(vars(true)).unwrap().api(),
        "https://api.example.org"
    );
    let err = CfClient::for_cloud_foundry(vars(false))
        .err()
        .expect("no login yet");
    assert!(err.to_string().contains("run `cf login` first"), "{err}");
    std::fs::create_dir_all(dir.path().join(".cf")).unwrap();
    std::fs::write(
        dir.path().join(".cf/config.json"),
        fixture("cf_config.json"),
    )
    .unwrap();
    let client = CfClient::for_cloud_foundry(vars(false)).unwrap();
    assert_eq!(
        client.api(),
        parse::<CfConfig>("cf_config.json")
            .target
            .trim_end_matches('/')
    );
}

/// What the fake CF saw of the binding calls.
#[derive(Default)]
struct Bindings {
    queries: Vec<String>,
    posted: Vec<Value>,
    bound: bool,
    job_polls: usize,
}

type B = State<Arc<Mutex<Bindings>>>;

async fn list_bindings(State(b): B, uri: axum::http::Uri) -> Response {
    let mut b = b.lock().unwrap();
    b.queries.push(uri.query().unwrap_or("").to_string());
    let mut list: Value = serde_json::from_str(&fixture("service_instances_list.json")).unwrap();
    list["resources"] = if b.bound {
        serde_json::json!([serde_json::from_str::<Value>(&fixture(
            "service_credential_binding_app.json"
        ))
        .unwrap()])
    } else {
        serde_json::json!([])
    };
    list["pagination"]["total_results"] = list["resources"].as_array().unwrap().len().into();
    json(StatusCode::OK, list.to_string())
}

/// A managed instance: CF answers 202 with the job that binds it.
async fn create_binding(State(b): B, body: String) -> Response {
    b.lock()
        .unwrap()
        .posted
        .push(serde_json::from_str(&body).unwrap());
    (
        StatusCode::ACCEPTED,
        [("location", "/v3/jobs/b1c2d3e4-0000-4000-8000-000000000001")],
    )
        .into_response()
}

async fn binding_job(State(b): B) -> Response {
    let mut b = b.lock().unwrap();
    b.job_polls += 1;
    let state = if b.job_polls < 2 {
        "PROCESSING"
    } else {
        "COMPLETE"
    };
    if state == "COMPLETE" {
        b.bound = true;
    }
    json(
        StatusCode::OK,
        serde_json::json!({"guid": "b1c2d3e4-0000-4000-8000-000000000001", "state": state,
            "operation": "service_bindings.create", "errors": [], "warnings": []})
        .to_string(),
    )
}

#[tokio::test]
async fn services_bind_once_through_the_documented_calls() {
    let instances: v3::List<v3::ServiceInstance> = parse("service_instances_list.json");
    assert_eq!(
        instances
            .resources
            .iter()
            .map(|i| i.kind.as_str())
            .collect::<Vec<_>>(),
        ["managed", "user-provided"]
    );
    let binding: v3::ServiceCredentialBinding = parse("service_credential_binding_app.json");
    assert_eq!(binding.kind, "app");

    let state = Arc::new(Mutex::new(Bindings::default()));
    let app = axum::Router::new()
        .route(
            "/v3/service_credential_bindings",
            get(list_bindings).post(create_binding),
        )
        .route("/v3/jobs/{guid}", get(binding_job))
        .with_state(state.clone());
    let base = crate::util::serve(app).await;
    let client = CfClient::with_token(&base, "token");
    let (instance, app_guid) = (
        "c89b3280-fe8d-4aa0-a42e-44465bb1c61c",
        "1cb006ee-fb05-47e1-b541-c34179ddc446",
    );

    let made = client
        .bind_service(instance, app_guid, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(made);
    {
        let b = state.lock().unwrap();
        assert_eq!(
            b.queries[0],
            format!("type=app&app_guids={app_guid}&service_instance_guids={instance}")
        );
        assert_eq!(
            b.posted,
            [serde_json::json!({
                "type": "app",
                "relationships": {
                    "service_instance": { "data": { "guid": instance } },
                    "app": { "data": { "guid": app_guid } },
                },
            })]
        );
        assert!(b.job_polls >= 2, "waited for the job to complete");
    }
    // Bound already: nothing is posted again.
    let made = client
        .bind_service(instance, app_guid, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(!made);
    assert_eq!(state.lock().unwrap().posted.len(), 1);
}

/// What the fake CF saw of `apply_manifest`.
#[derive(Default)]
struct Applied {
    content_type: String,
    bodies: Vec<String>,
    polls: usize,
    fail: bool,
}

type A = State<Arc<Mutex<Applied>>>;

async fn apply_manifest(State(a): A, headers: HeaderMap, body: String) -> Response {
    let mut a = a.lock().unwrap();
    a.content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    a.bodies.push(body);
    (
        StatusCode::ACCEPTED,
        [("location", "/v3/jobs/m1c2d3e4-0000-4000-8000-000000000001")],
    )
        .into_response()
}

async fn manifest_job(State(a): A) -> Response {
    let mut a = a.lock().unwrap();
    a.polls += 1;
    let mut job: Value = serde_json::from_str(&fixture(if a.fail {
        "job_failed.json"
    } else {
        "job_complete.json"
    }))
    .unwrap();
    if a.polls < 2 {
        job["state"] = "PROCESSING".into();
        job["errors"] = serde_json::json!([]);
    }
    json(StatusCode::OK, job.to_string())
}

/// «9 · CF fidelity»: each color's manifest goes to CF's server-side
/// endpoint as YAML, under the color's name, without `routes`, and the
/// client waits for its job (a FAILED job's errors reach the caller).
#[tokio::test]
async fn a_manifest_is_applied_per_color_through_the_documented_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.yml");
    std::fs::write(
        &path,
        "applications:\n- name: shop\n  instances: 3\n  memory: 256M\n  buildpacks: [ruby_buildpack]\n  \
         routes:\n  - route: shop.example.com\n  services: [db]\n  processes:\n  - type: worker\n    instances: 2\n",
    )
    .unwrap();
    let m = bluegreen::config::manifest::Manifest::load(&path, None).unwrap();
    assert_eq!(m.dropped, ["routes"]);

    let state = Arc::new(Mutex::new(Applied::default()));
    let app = axum::Router::new()
        .route(
            "/v3/spaces/{guid}/actions/apply_manifest",
            post(apply_manifest),
        )
        .route("/v3/jobs/{guid}", get(manifest_job))
        .with_state(state.clone());
    let base = crate::util::serve(app).await;
    let client = CfClient::with_token(&base, "token");
    let space = "a1b2c3d4-0000-4000-8000-00000000000b";
    client
        .apply_manifest(
            space,
            &m.for_color("shop-green", Some(5)),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    {
        let a = state.lock().unwrap();
        assert_eq!(a.content_type, "application/x-yaml");
        assert!(a.polls >= 2, "waited for the job");
        let sent: Value = serde_yaml::from_str(&a.bodies[0]).unwrap();
        let entry = &sent["applications"][0];
        assert_eq!(entry["name"], "shop-green");
        assert_eq!(entry["instances"], 5, "the live count kept");
        assert_eq!(entry["memory"], "256M");
        assert_eq!(entry["buildpacks"][0], "ruby_buildpack");
        assert_eq!(entry["services"][0], "db");
        assert_eq!(entry["processes"][0]["type"], "worker");
        assert!(
            entry.get("routes").is_none(),
            "routes are bluegreen's: {entry}"
        );
    }
    state.lock().unwrap().fail = true;
    state.lock().unwrap().polls = 0;
    let err = client
        .apply_manifest(
            space,
            &m.for_color("shop-blue", None),
            Duration::from_secs(10),
        )
        .await
        .unwrap_err()
        .to_string();
    let failed: Value = serde_json::from_str(&fixture("job_failed.json")).unwrap();
    let detail = failed["errors"][0]["detail"].as_str().unwrap();
    assert!(err.contains(detail), "{err}");
}
