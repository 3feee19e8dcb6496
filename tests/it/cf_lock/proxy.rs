//! A runner that stalls after its first look: a reverse proxy to the
//! platform's API that, once armed, lets the next read through at once and
//! holds every call after it for a set time (a slow link, or a runner
//! paused between its steps). The races the CF lock must survive are a
//! runner whose read and later calls are far apart: it read the lock free
//! (or expired), and what it does next lands after another runner has taken
//! the lock; in the old annotation design its write landed after the
//! other's read-back had already said "yours", and a taker that looked up
//! the lock app again before deleting it would delete the winner's.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How the proxy holds calls; armed before each race (`Slow::arm`).
pub type Delay = Arc<Mutex<Slow>>;

#[derive(Default)]
pub struct Slow {
    hold: Duration,
    first_read_free: bool,
}

impl Slow {
    /// From now on: the first read passes, every call after it waits `hold`.
    pub fn arm(&mut self, hold: Duration) {
        *self = Slow {
            hold,
            first_read_free: true,
        };
    }

    fn hold(&mut self, method: &http::Method) -> Duration {
        if *method == http::Method::GET && std::mem::take(&mut self.first_read_free) {
            return Duration::ZERO;
        }
        self.hold
    }
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    /// This proxy's own base URL, for `Location` headers and links the
    /// upstream names (the client sends its token to the API's origin only).
    own: Arc<OnceLock<String>>,
    delay: Delay,
    http: reqwest::Client,
}

/// The proxy's base URL, and how it holds calls (armed per round).
pub async fn stalling(upstream: &str) -> (String, Delay) {
    let proxy = Proxy {
        upstream: upstream.trim_end_matches('/').to_string(),
        own: Arc::default(),
        delay: Arc::default(),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    };
    let (own, delay) = (proxy.own.clone(), proxy.delay.clone());
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let base = crate::util::serve(app).await;
    own.set(base.clone()).unwrap();
    (base, delay)
}

async fn forward(State(p): State<Proxy>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 16 << 20).await.unwrap();
    let hold = p.delay.lock().unwrap().hold(&parts.method);
    tokio::time::sleep(hold).await;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut req = p
        .http
        .request(parts.method, format!("{}{path}", p.upstream))
        .body(body);
    for (k, v) in &parts.headers {
        if k != http::header::HOST && k != http::header::CONTENT_LENGTH {
            req = req.header(k, v);
        }
    }
    let resp = req.send().await.unwrap();
    let own = p.own.get().unwrap();
    let mut out = Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        use http::header::{CONNECTION, CONTENT_LENGTH, LOCATION, TRANSFER_ENCODING};
        if [CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING].contains(k) {
            continue;
        }
        if k == LOCATION {
            let to = v.to_str().unwrap().replace(&p.upstream, own);
            out = out.header(k, to);
        } else {
            out = out.header(k, v);
        }
    }
    let text = String::from_utf8_lossy(&resp.bytes().await.unwrap()).replace(&p.upstream, own);
    out.body(Body::from(text)).unwrap()
}
