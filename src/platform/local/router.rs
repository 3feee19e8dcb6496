//! The Host-header HTTP router: every app at `<app>.apps.localhost`, shared
//! routes spread over their destinations in turn. The route table is replaced
//! whole (readers never see half a change), and requests in flight are counted
//! per app so a deploy can wait for a color to drain after unmapping it.

use super::supervisor::Supervisor;
use bytes::Bytes;
use http::header::{HOST, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{Either, Empty, Full};
use hyper::body::{Body, Incoming};
use hyper_util::rt::TokioIo;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use upstream::{Counted, Inflight, Pool, ReqBody};

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
    /// connections at once, on a worker thread per core (at most
    /// `MAX_WORKERS`) as nginx runs a worker process per core: each worker
    /// accepts connections and serves them whole on a single-threaded
    /// runtime, with its own pool of connections to the apps, so a request
    /// never waits on another thread.
    pub async fn serve(self, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let listener = match listener.into_std() {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bluegreen router: taking over the listener: {e}");
                return;
            }
        };
        let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_WORKERS);
        // Each worker holds a sender; `recv` ends when the last one is gone.
        let (done, mut all_done) = tokio::sync::mpsc::channel::<()>(1);
        for i in 0..workers {
            let worker = Worker {
                inner: self.0.clone(),
                pool: Arc::default(),
            };
            let (limit, shutdown, done) = (limit.clone(), shutdown.clone(), done.clone());
            let listener = listener.try_clone();
            let spawned = std::thread::Builder::new()
                .name(format!("bluegreen-router-{i}"))
                .spawn(move || {
                    let _done = done;
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build();
                    let (runtime, listener) = match (runtime, listener) {
                        (Ok(r), Ok(l)) => (r, l),
                        (Err(e), _) | (_, Err(e)) => {
                            eprintln!("bluegreen router: starting worker {i}: {e}");
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        match TcpListener::from_std(listener) {
                            Ok(l) => Arc::new(worker).accept(l, limit, shutdown).await,
                            Err(e) => eprintln!("bluegreen router: worker {i}: {e}"),
                        }
                    });
                });
            if let Err(e) = spawned {
                eprintln!("bluegreen router: starting worker {i}: {e}");
            }
        }
        drop(done);
        let _ = all_done.recv().await;
    }
}

/// One worker thread's share of the router.
struct Worker {
    inner: Arc<Inner>,
    /// Connections to apps, used only from this worker's runtime (their
    /// sockets belong to its reactor).
    pool: Arc<Pool>,
}

impl Worker {
    async fn accept(
        self: Arc<Worker>,
        listener: TcpListener,
        limit: Arc<tokio::sync::Semaphore>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut backoff = std::time::Duration::from_millis(5);
        loop {
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = shutdown.changed() => return,
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
                _ = shutdown.changed() => return,
            };
            backoff = std::time::Duration::from_millis(5);
            let _ = stream.set_nodelay(true);
            let worker = self.clone();
            let mut stop = shutdown.clone();
            // The client's address, formatted once per connection.
            let peer = HeaderValue::from_str(&peer.ip().to_string())
                .expect("an IP is a valid header value");
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let worker = worker.clone();
                    let peer = peer.clone();
                    async move { Ok::<_, std::convert::Infallible>(worker.handle(req, peer).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    _ = stop.changed() => conn.as_mut().graceful_shutdown(),
                }
            });
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
        // Every running instance of every destination, taken in turn.
        let all: Vec<(usize, u16)> = if dests.len() == 1 {
            let ports = self.inner.supervisor.running_ports(&dests[0].guid);
            ports.into_iter().map(|p| (0, p)).collect()
        } else {
            dests
                .iter()
                .enumerate()
                .flat_map(|(i, d)| {
                    self.inner
                        .supervisor
                        .running_ports(&d.guid)
                        .into_iter()
                        .map(move |p| (i, p))
                })
                .collect()
        };
        if all.is_empty() {
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
        // The request travels as it came, in origin form.
        if req.uri().authority().is_some() {
            let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
            *req.uri_mut() = http::Uri::try_from(path).expect("a path is a valid uri");
        }
        let (parts, body) = req.into_parts();
        // A copy of the head to send again, only when there is somewhere to
        // send it.
        let again = (idempotent && all.len() > 1).then(|| parts.clone());
        let mut pending = Some(Request::from_parts(parts, Either::Left(body)));
        let mut last_error = String::new();
        for i in 0..all.len() {
            let (dest, port) = all[(start + i) % all.len()];
            let req: Request<ReqBody> = match (pending.take(), &again) {
                (Some(r), _) => r,
                (None, Some(head)) => {
                    Request::from_parts(head.clone(), Either::Right(Empty::new()))
                }
                (None, None) => break,
            };
            let guard = Inflight::start(&dests[dest].inflight);
            match self.pool.send(port, req).await {
                Ok((resp, lease)) => {
                    return resp.map(|body| {
                        Either::Left(Counted::new(body, lease, self.pool.clone(), guard))
                    });
                }
                Err(failure) => {
                    last_error = failure.error;
                    pending = failure.unsent;
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

/// Drops hop-by-hop headers (and those the client's `Connection` names) and
/// sets `X-Forwarded-*`. The router is the edge: a client's own
/// `X-Forwarded-For` is replaced, not trusted.
fn forwarding_headers(headers: &mut http::HeaderMap, peer: HeaderValue) {
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
    let host = headers.get(HOST).cloned();
    headers.insert(X_FORWARDED_FOR, peer);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    match host {
        Some(h) => headers.insert(X_FORWARDED_HOST, h),
        None => headers.remove(X_FORWARDED_HOST),
    };
}

fn text(status: StatusCode, body: String) -> Response<RouterBody> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Either::Right(Full::new(Bytes::from(body))))
        .expect("static response")
}
