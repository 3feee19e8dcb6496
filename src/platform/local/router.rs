//! The Host-header HTTP router: every app at `<app>.apps.localhost`, shared
//! routes spread over their destinations in turn. The route table is replaced
//! whole (readers never see half a change), and requests in flight are counted
//! per app so a deploy can wait for a color to drain after unmapping it.

use super::supervisor::Supervisor;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub const DOMAIN: &str = "apps.localhost";

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 4096;
/// How long a client may take to send a request's headers (slowloris).
const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
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

/// Host name -> app guids, in destination order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table(pub HashMap<String, Vec<String>>);

#[derive(Clone)]
pub struct Router {
    table: Arc<RwLock<Arc<Table>>>,
    inflight: Arc<Mutex<HashMap<String, Arc<AtomicUsize>>>>,
    next: Arc<AtomicUsize>,
    supervisor: Supervisor,
    client: Client<HttpConnector, RouterBody>,
}

impl Router {
    pub fn new(supervisor: Supervisor) -> Router {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Router {
            table: Arc::default(),
            inflight: Arc::default(),
            next: Arc::default(),
            supervisor,
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    /// Atomically replaces the whole route table.
    pub fn set_table(&self, table: Table) {
        *self.table.write().unwrap() = Arc::new(table);
    }

    /// Requests currently being served by `app_guid` through the router.
    pub fn inflight(&self, app_guid: &str) -> usize {
        self.inflight
            .lock()
            .unwrap()
            .get(app_guid)
            .map(|c| c.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    fn counter(&self, app_guid: &str) -> Arc<AtomicUsize> {
        self.inflight
            .lock()
            .unwrap()
            .entry(app_guid.to_string())
            .or_default()
            .clone()
    }

    /// Serves until `shutdown` turns true, at most `MAX_CONNECTIONS`
    /// connections at once.
    pub async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
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
            let router = self.clone();
            let mut stop = shutdown.clone();
            // The client's address, formatted once per connection.
            let peer = http::HeaderValue::from_str(&peer.ip().to_string())
                .expect("an IP is a valid header value");
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |req| {
                    let router = router.clone();
                    let peer = peer.clone();
                    async move { Ok::<_, std::convert::Infallible>(router.handle(req, peer).await) }
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

    async fn handle(
        &self,
        mut req: Request<Incoming>,
        peer: http::HeaderValue,
    ) -> Response<RouterBody> {
        forwarding_headers(req.headers_mut(), peer);
        let host = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| {
                h.rsplit_once(':')
                    .map(|(name, _)| name)
                    .unwrap_or(h)
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let table = self.table.read().unwrap().clone();
        let Some(apps) = table.0.get(&host).filter(|_| !host.is_empty()) else {
            return text(
                StatusCode::NOT_FOUND,
                format!("bluegreen router: no route for host `{host}`\n"),
            );
        };
        if apps.is_empty() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("bluegreen router: route `{host}` has no destinations\n"),
            );
        }
        // Every running instance of every destination, taken in turn.
        let all: Vec<(String, u16)> = apps
            .iter()
            .flat_map(|guid| {
                self.supervisor
                    .running_ports(guid)
                    .into_iter()
                    .map(move |p| (guid.clone(), p))
            })
            .collect();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let candidates: Vec<(String, u16)> = (0..all.len())
            .map(|i| all[(start + i) % all.len()].clone())
            .collect();
        if candidates.is_empty() {
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("bluegreen router: no destination of `{host}` is running\n"),
            );
        }
        // A bodyless GET or HEAD is tried on the next destination after any
        // failure. Any other request is tried there only when the first
        // refused the connection (an instance that just went away: nothing
        // was sent), and only if its body is small enough to keep a copy.
        let idempotent = matches!(*req.method(), http::Method::GET | http::Method::HEAD)
            && req.body().is_end_stream();
        let small = !idempotent
            && req
                .body()
                .size_hint()
                .upper()
                .is_some_and(|n| n <= RETRY_BODY_MAX);
        let (parts, body) = req.into_parts();
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
            (
                None,
                Some(body.map_err(|e| Box::new(e) as BoxError).boxed()),
            )
        };
        let mut last_error = String::new();
        for (guid, port) in candidates {
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
            *up.uri_mut() = format!("http://127.0.0.1:{port}{path}")
                .parse()
                .expect("valid upstream uri");
            let counter = self.counter(&guid);
            counter.fetch_add(1, Ordering::SeqCst);
            let guard = Inflight(counter);
            match self.client.request(up).await {
                Ok(resp) => {
                    return resp.map(|body| {
                        Counted {
                            body,
                            _guard: guard,
                        }
                        .boxed()
                    });
                }
                Err(e) => {
                    last_error = format!("{e}");
                    if kept.is_some() && !e.is_connect() {
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
            format!("bluegreen router: upstream for `{host}` failed: {last_error}\n"),
        )
    }
}

/// Drops hop-by-hop headers (and those the client's `Connection` names) and
/// sets `X-Forwarded-*`. The router is the edge: a client's own
/// `X-Forwarded-For` is replaced, not trusted.
fn forwarding_headers(headers: &mut http::HeaderMap, peer: http::HeaderValue) {
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
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
    let host = headers.get(http::header::HOST).cloned();
    headers.insert("x-forwarded-for", peer);
    headers.insert("x-forwarded-proto", http::HeaderValue::from_static("http"));
    match host {
        Some(h) => headers.insert("x-forwarded-host", h),
        None => headers.remove("x-forwarded-host"),
    };
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
struct Inflight(Arc<AtomicUsize>);

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that holds its request's in-flight count until the last
/// byte is sent (or the client goes away).
struct Counted {
    body: Incoming,
    _guard: Inflight,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body)
            .poll_frame(cx)
            .map_err(|e| Box::new(e) as BoxError)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}
