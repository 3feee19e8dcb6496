//! Fault injection, for tests only: the daemon honours it only when started
//! with `BLUEGREEN_FAULT_INJECTION=1`, and then behind the API token like
//! everything else. `PUT /bluegreen/v1/faults` arms a plan and restarts the
//! count of API calls: at call `at` the daemon answers 500, hangs for
//! `hang_ms` (past the client's timeout), drops the connection mid-answer,
//! or refuses the token (401),
//! instead of doing the call; at call `kill_app_at` it SIGKILLs a running
//! app instance that is on no route and serves no request (a candidate), as
//! a crash would. `absent` lists endpoints (`"POST /v3/droplets"`, a path
//! prefix) to answer as a CF without them would (404, `Unknown request`),
//! the way Korifi lacks some; `korifi` makes the root document Korifi's
//! (`cf_on_k8s`, its CC version), and `extra_domains` lists more domains,
//! as a foundation has; `no_standby_sweep` leaves standbys whose time is
//! over running, as CF (no daemon) does. `GET` says how many calls it counted.

use super::state::Platform;
use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub const ENV: &str = "BLUEGREEN_FAULT_INJECTION";
pub const PATH: &str = "/bluegreen/v1/faults";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    #[default]
    Error500,
    Hang,
    Reset,
    /// 401 `CF-InvalidAuthToken`, as CF answers a token it no longer
    /// accepts (revoked, or expired by its clock before the client's).
    Unauthorized,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Plan {
    pub at: Option<u64>,
    pub mode: Mode,
    pub hang_ms: u64,
    pub kill_app_at: Option<u64>,
    pub absent: Vec<String>,
    pub korifi: bool,
    pub extra_domains: Vec<String>,
    /// The daemon leaves standbys whose time is over running, as a real
    /// Cloud Foundry does (it has no such daemon): the next bluegreen
    /// command has to stop them.
    pub no_standby_sweep: bool,
}

#[derive(Default)]
pub struct Faults {
    pub enabled: bool,
    plan: Mutex<Plan>,
    calls: AtomicU64,
}

impl Faults {
    pub fn from_env() -> Faults {
        Faults {
            enabled: std::env::var(ENV).is_ok_and(|v| v == "1"),
            ..Faults::default()
        }
    }
}

impl Faults {
    /// The root document answers as Korifi's does.
    pub fn like_korifi(&self) -> bool {
        self.enabled && self.plan.lock().unwrap().korifi
    }

    /// The daemon stops standbys whose time is over (`standby_sweep`).
    pub fn sweeps_standbys(&self) -> bool {
        !(self.enabled && self.plan.lock().unwrap().no_standby_sweep)
    }

    /// Domains `/v3/domains` lists besides the platform's own.
    pub fn extra_domains(&self) -> Vec<String> {
        match self.enabled {
            true => self.plan.lock().unwrap().extra_domains.clone(),
            false => Vec::new(),
        }
    }
}

#[derive(Serialize)]
struct Counted {
    calls: u64,
}

pub async fn arm(State(p): State<Arc<Platform>>, Json(plan): Json<Plan>) -> Response {
    if !p.faults.enabled {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    *p.faults.plan.lock().unwrap() = plan;
    let calls = p.faults.calls.swap(0, Ordering::SeqCst);
    Json(Counted { calls }).into_response()
}

pub async fn counted(State(p): State<Arc<Platform>>) -> Response {
    if !p.faults.enabled {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    let calls = p.faults.calls.load(Ordering::SeqCst);
    Json(Counted { calls }).into_response()
}

/// Counts each API call and, when the plan says so, fails it.
pub async fn inject(p: Arc<Platform>, req: Request, next: Next) -> Response {
    if !p.faults.enabled || req.uri().path() == PATH {
        return next.run(req).await;
    }
    let n = p.faults.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let plan = p.faults.plan.lock().unwrap().clone();
    if plan.kill_app_at == Some(n) {
        // A candidate, never an app on a shared route or still answering
        // requests: with one instance per color, killing one that serves
        // would fail requests by design, whatever the deploy does.
        let mut spare: std::collections::BTreeSet<String> = p
            .all::<crate::platform::v3::Route>(super::records::ROUTE)
            .unwrap_or_default()
            .into_iter()
            .flat_map(|r| r.destinations.into_iter().map(|d| d.app.guid))
            .collect();
        for app in p
            .all::<super::records::AppRec>(super::records::APP)
            .unwrap_or_default()
        {
            if p.router.inflight(&app.app.guid) > 0 {
                spare.insert(app.app.guid);
            }
        }
        // Answered only once the supervisor saw it die: on a loaded machine
        // a killed process can take a while to be scheduled to exit, and
        // until then its listening socket still completes connections,
        // which its exit then resets. A call that maps the app next (or a
        // request routed to it meanwhile) would meet that, where the test
        // means a candidate that is plainly down.
        if let Some((guid, port)) = p.supervisor.kill_one(&spare) {
            let until = tokio::time::Instant::now() + Duration::from_secs(10);
            while tokio::time::Instant::now() < until
                && p.supervisor
                    .running_instances(&guid)
                    .iter()
                    .any(|s| s.port == port)
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let call = format!("{} {}", req.method(), req.uri().path());
    if plan.absent.iter().any(|a| call.starts_with(a.as_str())) {
        return super::state::ApiErr(404, 10000, "CF-NotFound", "Unknown request".into())
            .into_response();
    }
    if plan.at != Some(n) {
        return next.run(req).await;
    }
    match plan.mode {
        Mode::Error500 => super::state::ApiErr::internal("injected fault").into_response(),
        Mode::Hang => {
            tokio::time::sleep(Duration::from_millis(plan.hang_ms)).await;
            super::state::ApiErr::internal("injected fault, after a hang").into_response()
        }
        Mode::Unauthorized => super::state::ApiErr(
            401,
            1000,
            "CF-InvalidAuthToken",
            "Invalid Auth Token".into(),
        )
        .into_response(),
        Mode::Reset => {
            // Headers go out, then the body fails: hyper drops the connection.
            let body = failing_body();
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(body)
                .expect("a response")
        }
    }
}

/// A body whose first read fails.
fn failing_body() -> Body {
    struct Failing(Option<std::io::Error>);
    impl futures_core::Stream for Failing {
        type Item = Result<bytes::Bytes, std::io::Error>;
        fn poll_next(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Self::Item>> {
            std::task::Poll::Ready(self.0.take().map(Err))
        }
    }
    Body::from_stream(Failing(Some(std::io::Error::other(
        "injected connection reset",
    ))))
}
