//! Kept-alive connections to app instances, without a task of their own: a
//! connection is driven by the request using it (while the response head is
//! awaited, then by the response body as it streams to the client), so a
//! proxied request is read, forwarded and answered by one task with no
//! hand-off between tasks or threads. Between requests a connection waits in
//! a pool per port, shared by every client connection.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Either, Empty};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Idle connections kept per port; more are closed as they come back.
const IDLE_PER_PORT: usize = 256;
/// An idle connection unused this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The client's body, or none (a bodyless GET/HEAD sent again).
pub type ReqBody = Either<Incoming, Empty<Bytes>>;
type Conn = Connection<TokioIo<TcpStream>, ReqBody>;

/// One connection to an instance: the handle requests are sent on and the
/// connection state machine that moves the bytes.
pub struct Lease {
    port: u16,
    sender: SendRequest<ReqBody>,
    /// `None` once the connection has ended.
    conn: Option<Pin<Box<Conn>>>,
}

impl Lease {
    fn drive(&mut self, cx: &mut Context<'_>) {
        drive(&mut self.conn, cx);
    }
}

/// A context for what only the connection can make ready (its response,
/// its body's next frame): polled right after `drive`, they need no wake-up
/// of their own, and one would poll the whole client connection again for
/// nothing. The connection itself is driven with the task's waker.
fn quiet() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Moves a connection along as far as it can go now.
fn drive(conn: &mut Option<Pin<Box<Conn>>>, cx: &mut Context<'_>) {
    if let Some(c) = conn
        && c.as_mut().poll(cx).is_ready()
    {
        // Dropping it hands any request it never sent back to its sender.
        *conn = None;
    }
}

struct Idle {
    lease: Lease,
    since: Instant,
}

/// Idle connections by port.
#[derive(Default)]
pub struct Pool(Mutex<Idles>);

#[derive(Default)]
struct Idles {
    by_port: HashMap<u16, Vec<Idle>>,
    /// When connections idle too long were last closed.
    swept: Option<Instant>,
}

/// Why an exchange failed; `unsent` holds the request when nothing of it
/// reached the instance (connection refused, or a kept connection the app
/// had closed), so it can be sent elsewhere whatever its body.
pub struct Failure {
    pub unsent: Option<Request<ReqBody>>,
    pub error: String,
}

impl Pool {
    /// The most recently used idle connection to `port` that is still open.
    fn checkout(&self, port: u16) -> Option<Lease> {
        loop {
            let idle = self.0.lock().unwrap().by_port.get_mut(&port)?.pop()?;
            let mut lease = idle.lease;
            if idle.since.elapsed() > IDLE_TIMEOUT {
                continue;
            }
            // A look without a waker of ours: an app that closed the
            // connection while it sat idle shows up here, and nothing is
            // woken later for a connection nobody is using.
            lease.drive(&mut quiet());
            if lease.conn.is_some() && lease.sender.is_ready() {
                return Some(lease);
            }
        }
    }

    /// Keeps an idle connection for the next request to its port.
    fn give_back(&self, mut lease: Lease) {
        // Let it settle (reading the end of the response, asking for the
        // next request) with no waker left behind that belongs to a task.
        lease.drive(&mut quiet());
        if lease.conn.is_none() || !lease.sender.is_ready() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.0.lock().unwrap();
        let kept = idle.by_port.entry(lease.port).or_default();
        if kept.len() < IDLE_PER_PORT {
            kept.push(Idle { lease, since: now });
        }
        // Now and then, close what sat idle too long (instances that are
        // gone, ports no longer asked for).
        if idle
            .swept
            .is_none_or(|t| now.duration_since(t) > IDLE_TIMEOUT)
        {
            idle.swept = Some(now);
            idle.by_port.retain(|_, kept| {
                kept.retain(|i| now.duration_since(i.since) <= IDLE_TIMEOUT);
                !kept.is_empty()
            });
        }
    }

    /// Sends `req` to the instance on `port` over a kept connection, or a
    /// new one; returns the response head and the connection, which the
    /// response body drives and then gives back.
    pub async fn send(
        &self,
        port: u16,
        mut req: Request<ReqBody>,
    ) -> Result<(Response<Incoming>, Lease), Failure> {
        loop {
            let (mut lease, kept) = match self.checkout(port) {
                Some(lease) => (lease, true),
                None => match connect(port).await {
                    Ok(lease) => (lease, false),
                    Err(error) => {
                        return Err(Failure {
                            unsent: Some(req),
                            error,
                        });
                    }
                },
            };
            let result = {
                let Lease { sender, conn, .. } = &mut lease;
                let mut response = std::pin::pin!(sender.try_send_request(req));
                std::future::poll_fn(|cx| {
                    drive(conn, cx);
                    response.as_mut().poll(&mut quiet())
                })
                .await
            };
            match result {
                Ok(head) => return Ok((head, lease)),
                Err(mut e) => match e.take_message() {
                    // A kept connection that turned out closed: try another.
                    Some(back) if kept => req = back,
                    unsent => {
                        return Err(Failure {
                            unsent,
                            error: e.into_error().to_string(),
                        });
                    }
                },
            }
        }
    }
}

async fn connect(port: u16) -> Result<Lease, String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
    Ok(Lease {
        port,
        sender,
        conn: Some(Box::pin(conn)),
    })
}

/// Decrements the app's in-flight count when the response is done.
pub struct Inflight(Arc<AtomicUsize>);

impl Inflight {
    pub fn start(counter: &Arc<AtomicUsize>) -> Inflight {
        counter.fetch_add(1, Ordering::SeqCst);
        Inflight(counter.clone())
    }
}

impl Drop for Inflight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that drives its connection, holds its request's
/// in-flight count until the last byte is sent (or the client goes away),
/// then gives the connection back if it can carry another request.
pub struct Counted {
    body: Incoming,
    lease: Option<Lease>,
    pool: Arc<Pool>,
    ended: bool,
    _guard: Inflight,
}

impl Counted {
    pub fn new(body: Incoming, lease: Lease, pool: Arc<Pool>, guard: Inflight) -> Counted {
        Counted {
            body,
            lease: Some(lease),
            pool,
            ended: false,
            _guard: guard,
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(lease) = &mut this.lease {
            lease.drive(cx);
        }
        let frame = Pin::new(&mut this.body).poll_frame(&mut quiet());
        if let Poll::Ready(None) = frame {
            this.ended = true;
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // A response cut short leaves the connection mid-message: it closes.
        if let Some(lease) = self.lease.take()
            && (self.ended || self.body.is_end_stream())
        {
            self.pool.give_back(lease);
        }
    }
}
