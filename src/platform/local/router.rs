//! The Host-header HTTP router: every route at `<host>.apps.localhost`,
//! spread over its destinations in turn, or by weight when every
//! destination has one (a canary step). The route table is replaced whole
//! (readers never see half a change). Per app it counts requests in flight,
//! so a deploy can wait for a color to drain after unmapping it, and the
//! traffic a deploy's analysis judges (status classes, latency histogram),
//! and a bounded record of each request, what log-cache's read serves.
//! Requests are served by the router's own HTTP/1.1 path (`http1`), and
//! what it does not serve by hyper (`handle`), with the same routing,
//! counters and retries.

use super::supervisor::Supervisor;
use crate::platform::traffic::Traffic;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Instant;

mod framing;
mod http1;
mod limits;
mod pool;
mod requests;
mod stalls;
mod weights;
mod workers;

pub use limits::Limits;
pub use requests::{Record, Window};
use requests::{Requests, Seen};
use stalls::Stalls;
use weights::Weights;
use workers::upstream_client;

pub const DOMAIN: &str = "apps.localhost";

/// How long connections open at shutdown get to finish.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);
/// Request bodies up to this size are kept, so the request can be sent to
/// the next destination when the first refuses the connection.
const RETRY_BODY_MAX: u64 = 64 << 10;
/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and
/// are never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type RouterBody = BoxBody<Bytes, BoxError>;
/// One destination of a host: an app, and its weight on a weighted route.
#[derive(Clone, Debug, PartialEq)]
pub struct Dest {
    pub app_guid: String,
    pub weight: Option<u32>,
}

/// Host name -> destinations, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table(pub HashMap<String, Vec<Dest>>);

/// What the router keeps per app, found once per table change rather than
/// once per request.
#[derive(Default)]
struct AppCounters {
    inflight: AtomicUsize,
    traffic: Traffic,
    requests: Requests,
}

/// gorouter's header that sends a request to one process instance.
pub(super) const PROCESS_INSTANCE: &str = "x-cf-process-instance";

/// One instance a request may go to: its app's counters, port and index.
struct Target {
    counters: Arc<AppCounters>,
    port: u16,
    index: u32,
    generation: Arc<str>,
    /// The first target's in-flight count, taken while the route table
    /// was read: a deploy that unmaps an app and then sees it with nothing
    /// in flight has seen every request that picked it.
    counted: Option<Inflight>,
}

impl Target {
    fn of(counters: &Arc<AppCounters>, s: super::supervisor::Serving) -> Target {
        Target {
            counters: counters.clone(),
            port: s.port,
            index: s.index,
            generation: s.generation,
            counted: None,
        }
    }

    /// This attempt's in-flight count (see `counted`).
    fn inflight(&mut self) -> Inflight {
        self.counted
            .take()
            .unwrap_or_else(|| Inflight::start(&self.counters))
    }

    /// One attempt answered with `status` (the app's, or the router's 502
    /// or 504 for it): counted, and recorded for log-cache's read.
    fn answered(&self, status: u16, started: Instant, seen: &Seen) {
        let took = started.elapsed();
        self.counters.traffic.record(status, took);
        self.counters
            .requests
            .push(seen, status, took, self.index, self.port, &self.generation);
    }
}

/// A host's destinations with their counters, and how to pick among them.
struct Route {
    apps: Vec<(String, Arc<AppCounters>)>,
    /// When every destination has a weight (adding up to more than 0);
    /// else requests go to every instance in turn.
    weights: Option<Weights>,
    /// This route's requests so far: where the next one goes.
    next: AtomicUsize,
    /// On a weighted route, each destination's requests so far.
    turns: Vec<AtomicUsize>,
}

#[derive(Clone)]
pub struct Router {
    table: Arc<RwLock<Arc<HashMap<String, Route>>>>,
    apps: Arc<Mutex<HashMap<String, Arc<AppCounters>>>>,
    supervisor: Supervisor,
    client: Client<HttpConnector, RouterBody>,
    /// Whether traffic is counted (see `Config::router_metrics`).
    metrics: bool,
    limits: Arc<Limits>,
    /// Every open connection, for closing the stalled ones at the cap.
    stalls: Stalls,
}

impl Router {
    pub fn new(supervisor: Supervisor, metrics: bool, limits: Limits) -> Router {
        Router {
            table: Arc::default(),
            apps: Arc::default(),
            supervisor,
            client: upstream_client(&limits),
            metrics,
            limits: Arc::new(limits),
            stalls: Stalls::default(),
        }
    }

    /// Atomically replaces the whole route table.
    pub fn set_table(&self, table: Table) {
        let resolved = table
            .0
            .into_iter()
            .map(|(host, dests)| {
                let weights: Option<Vec<u32>> = dests.iter().map(|d| d.weight).collect();
                let weights = weights.and_then(|w| Weights::new(&w));
                let apps: Vec<(String, Arc<AppCounters>)> = dests
                    .into_iter()
                    .map(|d| {
                        let c = self.counters(&d.app_guid);
                        (d.app_guid, c)
                    })
                    .collect();
                let next = AtomicUsize::new(0);
                let turns = apps.iter().map(|_| AtomicUsize::new(0)).collect();
                (
                    host,
                    Route {
                        apps,
                        weights,
                        next,
                        turns,
                    },
                )
            })
            .collect();
        *self.table.write().unwrap() = Arc::new(resolved);
    }

    /// Requests currently being served by `app_guid` through the router.
    pub fn inflight(&self, app_guid: &str) -> usize {
        self.counters(app_guid).inflight.load(Ordering::SeqCst)
    }

    /// Everything `app_guid` answered through the router so far.
    pub fn traffic(&self, app_guid: &str) -> crate::platform::traffic::Snapshot {
        self.counters(app_guid).traffic.snapshot()
    }

    /// `app_guid`'s requests in window `w` (none for an app the router
    /// never served).
    pub fn requests(&self, app_guid: &str, w: &Window) -> Vec<Record> {
        let counters = self.apps.lock().unwrap().get(app_guid).cloned();
        counters.map(|c| c.requests.read(w)).unwrap_or_default()
    }

    /// Drops a deleted app's counters and records (requests still in
    /// flight keep theirs until they finish).
    pub fn forget(&self, app_guid: &str) {
        self.apps.lock().unwrap().remove(app_guid);
    }

    fn counters(&self, app_guid: &str) -> Arc<AppCounters> {
        self.apps
            .lock()
            .unwrap()
            .entry(app_guid.to_string())
            .or_default()
            .clone()
    }

    /// One request of a connection `http1` handed to hyper.
    async fn handle(&self, mut req: Request<Incoming>, peer: &Peer) -> Response<RouterBody> {
        if req.headers().get_all(http::header::HOST).iter().count() > 1 {
            return text(
                StatusCode::BAD_REQUEST,
                "bluegreen router: two Host headers\n".into(),
            );
        }
        let idempotent = matches!(*req.method(), http::Method::GET | http::Method::HEAD)
            && req.body().is_end_stream();
        forwarding_headers(req.headers_mut(), peer, !idempotent);
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(host_name)
            .unwrap_or_default();
        let started = Instant::now();
        let pin = req
            .headers()
            .get(PROCESS_INSTANCE)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        let candidates = match self.pick(&host, pin.as_deref()) {
            Ok(c) => c,
            Err(refusal) => return text(refusal.status, refusal.message),
        };
        let method = req.method().clone();
        let target = req.uri().path().to_string();
        let seen = Seen {
            method: &method,
            host: &host,
            target: &target,
        };
        // A bodyless GET or HEAD is tried on the next destination after any
        // failure. Any other request is tried there only when the first
        // refused the connection (an instance that just went away: nothing
        // was sent), and only if its body is small enough to keep a copy.
        let small = !idempotent
            && req
                .body()
                .size_hint()
                .upper()
                .is_some_and(|n| n <= RETRY_BODY_MAX);
        let (parts, body) = req.into_parts();
        // A streamed body that breaks its framing (a bad chunk size) or is
        // cut short fails the upstream call: that is the client's 400, not
        // the app's 502.
        let client_failed = Arc::new(AtomicBool::new(false));
        let (kept, mut body) = if small {
            match body.collect().await {
                Ok(b) => (Some(b.to_bytes()), None),
                Err(e) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        format!("bluegreen router: reading the request body: {e}\n"),
                    );
                }
            }
        } else {
            let watched = Passed {
                body,
                _inflight: None,
                failed: Some(client_failed.clone()),
            };
            (None, Some(watched.boxed()))
        };
        let mut last = String::new();
        for mut t in candidates {
            let b = match (&kept, body.take()) {
                (Some(bytes), _) => Full::new(bytes.clone())
                    .map_err(|never| match never {})
                    .boxed(),
                (None, Some(b)) => b,
                (None, None) => break,
            };
            let mut up = Request::from_parts(parts.clone(), b);
            let path = parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            *up.uri_mut() = format!("http://127.0.0.1:{}{path}", t.port)
                .parse()
                .expect("valid upstream uri");
            let guard = t.inflight();
            let counters = &t.counters;
            let awaiting = self.metrics.then(|| counters.traffic.awaiting());
            let answered =
                tokio::time::timeout(self.limits.first_byte_timeout, self.client.request(up)).await;
            drop(awaiting);
            let Ok(answered) = answered else {
                // As on the http1 path: a silent app is a 504, counted.
                if self.metrics {
                    t.answered(504, started, &seen);
                }
                return text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "bluegreen router: the app for `{host}` did not answer within {}\n",
                        humantime::format_duration(self.limits.first_byte_timeout)
                    ),
                );
            };
            match answered {
                Ok(resp) => {
                    if self.metrics {
                        t.answered(resp.status().as_u16(), started, &seen);
                    }
                    return resp.map(|body| {
                        Passed {
                            body,
                            _inflight: Some(guard),
                            failed: None,
                        }
                        .boxed()
                    });
                }
                Err(_) if client_failed.load(Ordering::SeqCst) => {
                    return text(
                        StatusCode::BAD_REQUEST,
                        "bluegreen router: the request body is malformed or was cut short\n".into(),
                    );
                }
                Err(e) => {
                    // Counted against the app that failed it, whatever the
                    // next destination does (as on the http1 path).
                    if self.metrics {
                        t.answered(502, started, &seen);
                    }
                    let failed = e.is_connect();
                    last = e.to_string();
                    if kept.is_some() && !failed {
                        break;
                    }
                    if idempotent {
                        body = Some(
                            Full::new(Bytes::new())
                                .map_err(|never| match never {})
                                .boxed(),
                        );
                    }
                }
            }
        }
        text(
            StatusCode::BAD_GATEWAY,
            format!("bluegreen router: upstream for `{host}` failed: {last}\n"),
        )
    }

    /// Where a request for `host` may go, in the order to try.
    /// With `pin` (gorouter's `X-CF-Process-Instance: PROCESS_GUID:INDEX`),
    /// that one instance only, whatever the weights.
    fn pick(&self, host: &str, pin: Option<&str>) -> Result<Vec<Target>, Refusal> {
        let refuse = |status, message| Err(Refusal { status, message });
        // Held until the first target is counted (see `Target::counted`);
        // `set_table` waits for it.
        let table = self.table.read().unwrap();
        let Some(route) = table.get(host).filter(|_| !host.is_empty()) else {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("bluegreen router: no route for host `{host}`\n"),
            );
        };
        if route.apps.is_empty() {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("bluegreen router: route `{host}` has no destinations\n"),
            );
        }
        let mut candidates = match pin {
            Some(pin) => self.pinned(route, host, pin)?,
            None => self.candidates(route, route.next.fetch_add(1, Ordering::Relaxed)),
        };
        if let Some(first) = candidates.first_mut() {
            first.counted = Some(Inflight::start(&first.counters));
        }
        if candidates.is_empty() {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("bluegreen router: no destination of `{host}` is running\n"),
            );
        }
        Ok(candidates)
    }

    /// The instance `pin` names among the route's (a local web process's
    /// guid is its app's; see `supervisor::process_guid`).
    fn pinned(&self, route: &Route, host: &str, pin: &str) -> Result<Vec<Target>, Refusal> {
        let bad = |message: String| Refusal {
            status: StatusCode::BAD_REQUEST,
            message,
        };
        let Some((process, Ok(index))) = pin
            .rsplit_once(':')
            .map(|(p, i)| (p.trim(), i.trim().parse::<u32>()))
        else {
            return Err(bad(
                "bluegreen router: X-CF-Process-Instance must be PROCESS_GUID:INDEX\n".into(),
            ));
        };
        let found: Vec<Target> = route
            .apps
            .iter()
            .flat_map(|(guid, counters)| {
                self.supervisor
                    .running_instances(guid)
                    .into_iter()
                    .filter(|s| {
                        s.index == index
                            && super::supervisor::process_guid(guid, &s.generation) == process
                    })
                    .map(|s| Target::of(counters, s))
            })
            .collect();
        if found.is_empty() {
            return Err(bad(format!(
                "bluegreen router: no running instance {index} of process `{process}` on `{host}`\n"
            )));
        }
        Ok(found)
    }

    /// Where the `n`th request of a route goes, then where it may go next
    /// if that refuses: on a weighted route the app its weight picks (its
    /// instances in turn), then the others; else every running instance of
    /// every destination in turn.
    fn candidates(&self, route: &Route, n: usize) -> Vec<Target> {
        // Each list is turned once, by `n`: turned twice (each app's, then
        // all of them) the first pick would skip instances (with four, the
        // `2n`th: half of them never first).
        let turned = |mut all: Vec<Target>, n: usize| {
            if !all.is_empty() {
                let k = n % all.len();
                all.rotate_left(k);
            }
            all
        };
        let instances = |i: usize| {
            let (guid, counters) = &route.apps[i];
            self.supervisor
                .running_instances(guid)
                .into_iter()
                .map(|s| Target::of(counters, s))
                .collect::<Vec<_>>()
        };
        let Some(w) = &route.weights else {
            return turned((0..route.apps.len()).flat_map(instances).collect(), n);
        };
        // The chosen app's instances in turn by its own count: the `n`s
        // the weights send it are not evenly spread over its instances.
        let chosen = w.pick(n);
        let turn = route.turns[chosen].fetch_add(1, Ordering::Relaxed);
        let mut out = turned(instances(chosen), turn);
        for i in (0..route.apps.len()).filter(|&i| i != chosen) {
            out.extend(turned(instances(i), n));
        }
        out
    }
}

/// Drops hop-by-hop headers (and those the client's `Connection` names,
/// but never the framing: `Host`, `Content-Length`, `Transfer-Encoding`)
/// and replaces the client's forwarding headers with the router's. With
/// `close`, the app is asked to close after answering (see `Head::reuse`).
fn forwarding_headers(headers: &mut http::HeaderMap, peer: &Peer, close: bool) {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .flat_map(|v| connection_tokens(v.as_bytes()))
        .map(str::to_ascii_lowercase)
        .filter(|n| !is_framing(n))
        .collect();
    for name in named {
        headers.remove(name.as_str());
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    let forwarding: Vec<_> = headers
        .keys()
        .filter(|n| is_forwarding(n.as_str()))
        .cloned()
        .collect();
    for name in forwarding {
        headers.remove(name);
    }
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    peer.forwarding(host.as_deref(), |name, value| {
        if let Ok(v) = http::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    });
    if close {
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
}

/// Headers a client sets that describe the route to the app: the router is
/// the edge, so the client's own are dropped and the router's set.
fn is_forwarding(name: &str) -> bool {
    name.eq_ignore_ascii_case("forwarded")
        || name.eq_ignore_ascii_case("x-real-ip")
        || name
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-forwarded-"))
}

/// Framing the router owns: never removed through `Connection`, which
/// would let a body through with no length (request smuggling).
fn is_framing(name: &str) -> bool {
    ["host", "content-length", "transfer-encoding"]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n))
}

/// Who a connection came from, and the router port it reached.
pub(super) struct Peer {
    pub(super) ip: String,
    pub(super) port: u16,
}

impl Peer {
    /// The forwarding headers the app gets: `X-Forwarded-*` and RFC 7239's
    /// `Forwarded`, each set by the router alone.
    fn forwarding(&self, host: Option<&str>, mut set: impl FnMut(&'static str, &str)) {
        set("x-forwarded-for", &self.ip);
        set("x-forwarded-proto", "http");
        if let Some(h) = host {
            set("x-forwarded-host", h);
        }
        set("x-forwarded-port", &self.port.to_string());
        let node = if self.ip.contains(':') {
            format!("\"[{}]\"", self.ip)
        } else {
            self.ip.clone()
        };
        // A host with characters a quoted-string cannot hold plainly is left
        // out of `Forwarded` rather than escaped.
        let host = host
            .filter(|h| {
                h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
            })
            .map(|h| format!(";host=\"{h}\""))
            .unwrap_or_default();
        set("forwarded", &format!("for={node}{host};proto=http"));
    }
}

/// The tokens of a comma-separated header value (`Connection`,
/// `Transfer-Encoding`), trimmed, empty ones left out.
fn connection_tokens(value: &[u8]) -> impl Iterator<Item = &str> {
    std::str::from_utf8(value)
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

/// The route a `Host` header names: lowercased, without a port.
fn host_name(host: &str) -> String {
    host.rsplit_once(':')
        .map(|(name, _)| name)
        .unwrap_or(host)
        .to_ascii_lowercase()
}

/// An answer of the router's own instead of an app's.
struct Refusal {
    status: StatusCode,
    message: String,
}

fn text(status: StatusCode, body: String) -> Response<RouterBody> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("static response")
}

/// Decrements the app's in-flight count when the response is done.
struct Inflight(Arc<AppCounters>);

impl Inflight {
    fn start(counters: &Arc<AppCounters>) -> Inflight {
        counters.inflight.fetch_add(1, Ordering::SeqCst);
        Inflight(counters.clone())
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A body passed through the router: a response's holds its request's
/// in-flight count until the last byte is sent (or the client goes away);
/// a client's streamed request body remembers whether it failed.
struct Passed {
    body: Incoming,
    _inflight: Option<Inflight>,
    failed: Option<Arc<AtomicBool>>,
}

impl Body for Passed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let (Poll::Ready(Some(Err(_))), Some(failed)) = (&polled, &self.failed) {
            failed.store(true, Ordering::SeqCst);
        }
        polled.map_err(|e| Box::new(e) as BoxError)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
