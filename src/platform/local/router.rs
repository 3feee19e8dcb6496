//! The Host-header HTTP router: every app at `<app>.apps.localhost`, shared
//! routes spread over their destinations in turn. The route table is replaced
//! whole (readers never see half a change), and requests in flight are counted
//! per app so a deploy can wait for a color to drain after unmapping it.

use super::supervisor::Supervisor;
use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use upstream::{Counted, Inflight, Pool};

mod h1;
mod upstream;

pub const DOMAIN: &str = "apps.localhost";

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 4096;
/// Worker threads at most, whatever the number of cores.
const MAX_WORKERS: usize = 8;
/// How long a client may take to send a request's headers (slowloris).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and
/// are never forwarded.
const HOP_BY_HOP: [HeaderName; 9] = [
    http::header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    http::header::PROXY_AUTHENTICATE,
    http::header::PROXY_AUTHORIZATION,
    http::header::TE,
    http::header::TRAILER,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
];
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// An app's response, or the router's own word.
type RouterBody = Either<Counted, Full<Bytes>>;

/// Host name -> app guids, in destination order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table(pub HashMap<String, Vec<String>>);

/// One destination of a route, with its app's in-flight counter looked up
/// when the table was set rather than per request.
struct Dest {
    guid: String,
    inflight: Arc<AtomicUsize>,
}

/// A cheap handle: clones share one router.
#[derive(Clone)]
pub struct Router(Arc<Inner>);

struct Inner {
    routes: RwLock<Arc<HashMap<String, Arc<[Dest]>>>>,
    /// Per app, never removed: an unmapped app's requests in flight still
    /// count down on the counter they counted up on.
    inflight: Mutex<HashMap<String, Arc<AtomicUsize>>>,
    next: AtomicUsize,
    supervisor: Supervisor,
}

impl Router {
    pub fn new(supervisor: Supervisor) -> Router {
        Router(Arc::new(Inner {
            routes: RwLock::default(),
            inflight: Mutex::default(),
            next: AtomicUsize::new(0),
            supervisor,
        }))
    }

    /// Atomically replaces the whole route table.
    pub fn set_table(&self, table: Table) {
        let routes = {
            let mut counters = self.0.inflight.lock().unwrap();
            table
                .0
                .into_iter()
                .map(|(host, guids)| {
                    let dests: Arc<[Dest]> = guids
                        .into_iter()
                        .map(|guid| Dest {
                            inflight: counters.entry(guid.clone()).or_default().clone(),
                            guid,
                        })
                        .collect();
                    (host, dests)
                })
                .collect()
        };
        *self.0.routes.write().unwrap() = Arc::new(routes);
    }

    /// Requests currently being served by `app_guid` through the router.
    pub fn inflight(&self, app_guid: &str) -> usize {
        self.0
            .inflight
            .lock()
            .unwrap()
            .get(app_guid)
            .map(|c| c.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    /// Serves until `shutdown` turns true, at most `MAX_CONNECTIONS`
    /// connections at once. Connections are accepted here and handed in
    /// turn to worker threads, one per core (at most `MAX_WORKERS`), as
    /// nginx runs a worker process per core: a worker serves a connection
    /// whole on its single-threaded runtime, with its own pool of
    /// connections to the apps, so a request never waits on another thread.
    pub async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let count = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_WORKERS);
        // Each worker holds a sender; `recv` ends when the last one is gone.
        let (done, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
        let mut workers = Vec::new();
        for i in 0..count {
            let worker = self.worker();
            match start_worker(i, worker.pool.clone(), shutdown.clone(), done.clone()) {
                Ok(handle) => workers.push((handle, worker, None)),
                Err(e) => eprintln!("bluegreen router: starting worker {i}: {e}"),
            }
        }
        drop(done);
        if workers.is_empty() {
            // Serve from this runtime rather than not at all.
            let stop = Some(shutdown.clone());
            let worker = self.worker();
            tokio::spawn(tick(worker.pool.clone(), shutdown.clone()));
            workers.push((tokio::runtime::Handle::current(), worker, stop));
        }
        let mut turn = 0;
        let mut backoff = std::time::Duration::from_millis(5);
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = shutdown.changed() => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(s) => s,
                    // Out of file descriptors, say: wait instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                        continue;
                    }
                },
                _ = shutdown.changed() => break,
            };
            backoff = std::time::Duration::from_millis(5);
            let _ = stream.set_nodelay(true);
            // Its socket moves to the worker's reactor.
            let Ok(stream) = stream.into_std() else {
                continue;
            };
            let (runtime, worker, stop) = &workers[turn % workers.len()];
            let (worker, stop) = (worker.clone(), stop.clone());
            runtime.spawn(async move {
                if let Ok(stream) = tokio::net::TcpStream::from_std(stream) {
                    worker.connection(stream, peer, stop).await;
                }
                drop(permit);
            });
            turn += 1;
        }
        let _ = all_done.recv().await;
    }

    fn worker(&self) -> Arc<Worker> {
        Arc::new(Worker {
            inner: self.0.clone(),
            pool: Arc::default(),
        })
    }
}

/// Starts worker `i`: a thread running a single-threaded runtime until
/// `shutdown`; returns the handle to spawn its connections on.
fn start_worker(
    i: usize,
    pool: Arc<Pool>,
    shutdown: watch::Receiver<bool>,
    done: tokio::sync::mpsc::Sender<()>,
) -> std::io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name(format!("bluegreen-router-{i}"))
        .spawn(move || {
            let _done = done;
            // Dropping the runtime then ends the connections it serves.
            runtime.block_on(tick(pool, shutdown));
        })?;
    Ok(handle)
}

/// Ticks a worker's pool every second until `shutdown`. A timer always due
/// within a second also spares a syscall per request: tokio wakes its
/// reactor whenever a new timer is due before every other, which each
/// request's header timeout would be on an otherwise timerless worker.
async fn tick(pool: Arc<Pool>, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every.tick() => pool.tick(),
            _ = shutdown.changed() => break,
        }
    }
}

/// One worker thread's share of the router.
struct Worker {
    inner: Arc<Inner>,
    /// Connections to apps, used only on this worker's runtime (their
    /// sockets belong to its reactor).
    pool: Arc<Pool>,
}

impl Worker {
    /// Serves one client connection until it ends or the router stops.
    async fn connection(
        self: Arc<Worker>,
        stream: tokio::net::TcpStream,
        peer: std::net::SocketAddr,
        stop: Option<watch::Receiver<bool>>,
    ) {
        // The client's address, formatted once per connection.
        let peer =
            HeaderValue::from_str(&peer.ip().to_string()).expect("an IP is a valid header value");
        let service = hyper::service::service_fn(move |req| {
            let worker = self.clone();
            let peer = peer.clone();
            async move { Ok::<_, std::convert::Infallible>(worker.handle(req, peer).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        // A worker's connections end with its runtime; one served from the
        // daemon's runtime watches for the shutdown itself.
        let Some(mut stop) = stop else {
            let _ = conn.await;
            return;
        };
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = stop.changed() => conn.as_mut().graceful_shutdown(),
        }
    }

    async fn handle(&self, mut req: Request<Incoming>, peer: HeaderValue) -> Response<RouterBody> {
        forwarding_headers(req.headers_mut(), peer);
        // Kept for the error texts, after the request has gone on.
        let host_header = req.headers().get(HOST).cloned();
        let host = route_name(host_header.as_ref());
        let found = self.inner.routes.read().unwrap().get(&*host).cloned();
        let dests = match found.filter(|_| !host.is_empty()) {
            None => {
                return text(
                    StatusCode::NOT_FOUND,
                    format!("bluegreen router: no route for host `{host}`\n"),
                );
            }
            Some(d) if d.is_empty() => {
                return text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("bluegreen router: route `{host}` has no destinations\n"),
                );
            }
            Some(d) => d,
        };
        // Every running instance of every destination, taken in turn (one
        // destination, the usual case, needs no list of its own).
        let supervisor = &self.inner.supervisor;
        let (single, several): (Vec<u16>, Vec<(usize, u16)>) = if dests.len() == 1 {
            (supervisor.running_ports(&dests[0].guid), Vec::new())
        } else {
            let all = dests.iter().enumerate().flat_map(|(i, d)| {
                supervisor
                    .running_ports(&d.guid)
                    .into_iter()
                    .map(move |p| (i, p))
            });
            (Vec::new(), all.collect())
        };
        let count = single.len() + several.len();
        let candidate = |i: usize| several.get(i).copied().unwrap_or_else(|| (0, single[i]));
        if count == 0 {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("bluegreen router: no destination of `{host}` is running\n"),
            );
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        // A bodyless GET or HEAD is tried on the next destination after any
        // failure. Any other request is tried there only when nothing of it
        // was sent (the first refused the connection: an instance that just
        // went away), whatever the size of its body.
        let idempotent = matches!(*req.method(), http::Method::GET | http::Method::HEAD)
            && req.body().is_end_stream();
        let mut pending = Some(req.map(|body| (!body.is_end_stream()).then_some(body)));
        let mut last_error = String::new();
        for i in 0..count {
            let Some(req) = pending.take() else { break };
            let (dest, port) = candidate((start + i) % count);
            let guard = Inflight::start(&dests[dest].inflight);
            match self.pool.send(port, req).await {
                Ok((head, reader)) => {
                    let mut resp =
                        head.map(|()| Either::Left(Counted::new(reader, self.pool.clone(), guard)));
                    strip_hop_by_hop(resp.headers_mut());
                    return resp;
                }
                Err(failure) => {
                    last_error = failure.error;
                    pending = failure.request.filter(|_| !failure.sent || idempotent);
                }
            }
        }
        text(
            StatusCode::BAD_GATEWAY,
            format!("bluegreen router: upstream for `{host}` failed: {last_error}\n"),
        )
    }
}

/// The route a request asks for: its Host without the port, lowercased
/// (borrowed when it already is).
fn route_name(host: Option<&HeaderValue>) -> Cow<'_, str> {
    let raw = host.and_then(|h| h.to_str().ok()).unwrap_or("");
    let name = raw.rsplit_once(':').map_or(raw, |(name, _)| name);
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

/// Drops hop-by-hop headers and sets `X-Forwarded-*`. The router is the
/// edge: a client's own `X-Forwarded-For` is replaced, not trusted.
fn forwarding_headers(headers: &mut http::HeaderMap, peer: HeaderValue) {
    strip_hop_by_hop(headers);
    let host = headers.get(HOST).cloned();
    headers.insert(X_FORWARDED_FOR, peer);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match host {
        Some(h) => headers.insert(X_FORWARDED_HOST, h),
        None => headers.remove(X_FORWARDED_HOST),
    };
}

/// Drops hop-by-hop headers, and those `Connection` names, from a request
/// or a response: they describe one connection, not the message.
fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    // Usually there are none: one pass over the few names present.
    if !headers.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    if headers.contains_key(http::header::CONNECTION) {
        let named: Vec<String> = headers
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect();
        for name in named {
            headers.remove(name.as_str());
        }
    }
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

fn text(status: StatusCode, body: String) -> Response<RouterBody> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Either::Right(Full::new(Bytes::from(body))))
        .expect("static response")
}
