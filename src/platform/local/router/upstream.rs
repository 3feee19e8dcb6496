//! Kept-alive connections to app instances, spoken to directly (see `h1`):
//! the request is written by the task serving the client, and the response
//! body is read from the app's socket as the client's connection asks for
//! it, so a proxied request is read, forwarded and answered by one task,
//! without a task, channel or wake-up per connection in between. Between
//! requests a connection waits in its worker's pool, by port.

use super::h1::{self, Decoded, Framing};
use bytes::{Bytes, BytesMut};
use http::header::CONTENT_LENGTH;
use http::{Method, Request, Response};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Idle connections kept per port; more are closed as they come back.
const IDLE_PER_PORT: usize = 256;
/// An idle connection unused this many seconds is closed.
const IDLE_TIMEOUT_SECS: u64 = 90;
/// Read this much at a time from an app.
const READ_CHUNK: usize = 16 << 10;

/// A request on its way to an app: `None` for no body.
pub type Outgoing = Request<Option<Incoming>>;

/// One connection to an instance.
pub struct Lease {
    port: u16,
    stream: TcpStream,
    /// Bytes read and not yet used.
    buf: BytesMut,
    /// The request head being written (kept: no allocation per request).
    head: Vec<u8>,
}

struct Idle {
    lease: Lease,
    /// `Pool::clock` when it came back.
    since: u64,
}

/// Idle connections by port.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<HashMap<u16, Vec<Idle>>>,
    /// Seconds, counted by `tick`: a clock that costs nothing to read.
    clock: AtomicU64,
}

/// Why an exchange failed.
pub struct Failure {
    /// The request, when its body (if any) was not consumed: it can go to
    /// another instance.
    pub request: Option<Outgoing>,
    /// Whether any of it may have reached the app.
    pub sent: bool,
    pub error: String,
}

/// How far an exchange on one connection got before it failed.
enum Stage {
    /// Nothing reached the app.
    Unsent(String),
    /// A request without a body was written, and the connection closed
    /// before a byte of response came back.
    Silent(String),
    Failed(String),
}

impl Pool {
    /// The most recently used idle connection to `port` still open.
    fn checkout(&self, port: u16) -> Option<Lease> {
        loop {
            let lease = self.idle.lock().unwrap().get_mut(&port)?.pop()?.lease;
            // Readable while idle means the app closed it (or sent stray
            // bytes): either way it cannot carry a request. Checked without
            // a syscall unless the reactor saw something.
            match lease
                .stream
                .poll_read_ready(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Pending => return Some(lease),
                Poll::Ready(Ok(())) => {
                    let mut probe = [0u8; 1];
                    match lease.stream.try_read(&mut probe) {
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(lease),
                        _ => continue,
                    }
                }
                Poll::Ready(Err(_)) => continue,
            }
        }
    }

    /// Keeps an idle connection for the next request to its port.
    fn give_back(&self, lease: Lease) {
        let since = self.clock.load(Ordering::Relaxed);
        let mut idle = self.idle.lock().unwrap();
        let kept = idle.entry(lease.port).or_default();
        if kept.len() < IDLE_PER_PORT {
            kept.push(Idle { lease, since });
        }
    }

    /// Called every second: advances the clock and closes what sat idle
    /// too long (instances that are gone, ports no longer asked for).
    pub fn tick(&self) {
        let now = self.clock.fetch_add(1, Ordering::Relaxed) + 1;
        self.idle.lock().unwrap().retain(|_, kept| {
            kept.retain(|i| now - i.since <= IDLE_TIMEOUT_SECS);
            !kept.is_empty()
        });
    }

    /// Sends `req` to the instance on `port` over a kept connection, or a
    /// new one; returns the response head and a reader of its body.
    pub async fn send(
        &self,
        port: u16,
        mut req: Outgoing,
    ) -> Result<(Response<()>, Reader), Failure> {
        loop {
            let (mut lease, kept) = match self.checkout(port) {
                Some(lease) => (lease, true),
                None => match connect(port).await {
                    Ok(lease) => (lease, false),
                    Err(error) => {
                        return Err(Failure {
                            request: Some(req),
                            sent: false,
                            error,
                        });
                    }
                },
            };
            let had_body = req.body().is_some();
            let idempotent = !had_body && matches!(*req.method(), Method::GET | Method::HEAD);
            let failed = match exchange(&mut lease, &mut req).await {
                Ok((head, framing)) => {
                    let reader = Reader {
                        lease: Some(lease),
                        framing,
                        keep_alive: head.keep_alive,
                    };
                    let mut resp = Response::new(());
                    *resp.status_mut() = head.status;
                    *resp.headers_mut() = head.headers;
                    if matches!(reader.framing, Framing::Chunked(_) | Framing::Close) {
                        // The client gets the body framed anew.
                        resp.headers_mut().remove(CONTENT_LENGTH);
                    }
                    return Ok((resp, reader));
                }
                Err(stage) => stage,
            };
            // The body goes out only after the head did.
            let intact = !had_body || matches!(failed, Stage::Unsent(_));
            match failed {
                // A kept connection the app had closed: try another.
                Stage::Unsent(_) if kept => continue,
                Stage::Silent(_) if kept && idempotent => continue,
                Stage::Unsent(error) => {
                    return Err(Failure {
                        request: Some(req),
                        sent: false,
                        error,
                    });
                }
                Stage::Silent(error) | Stage::Failed(error) => {
                    return Err(Failure {
                        request: intact.then_some(req),
                        sent: true,
                        error,
                    });
                }
            }
        }
    }
}

async fn connect(port: u16) -> Result<Lease, String> {
    let stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connecting to 127.0.0.1:{port}: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(Lease {
        port,
        stream,
        buf: BytesMut::with_capacity(READ_CHUNK),
        head: Vec::with_capacity(1024),
    })
}

/// Writes the request (the body, if any, taken out of `req` as it goes) and
/// reads the response head.
async fn exchange(lease: &mut Lease, req: &mut Outgoing) -> Result<(h1::Head, Framing), Stage> {
    let port = lease.port;
    let chunked = req.body().is_some() && !req.headers().contains_key(CONTENT_LENGTH);
    h1::encode_head(req, chunked, &mut lease.head);
    if let Err(e) = lease.stream.write_all(&lease.head).await {
        return Err(Stage::Unsent(format!("writing to 127.0.0.1:{port}: {e}")));
    }
    let had_body = req.body().is_some();
    if let Some(mut body) = req.body_mut().take() {
        let failed = |e: String| Stage::Failed(format!("sending the request body: {e}"));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| failed(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers are not forwarded
            };
            if data.is_empty() {
                continue;
            }
            let written = if chunked {
                let mut framed = format!("{:x}\r\n", data.len()).into_bytes();
                framed.extend_from_slice(&data);
                framed.extend_from_slice(b"\r\n");
                lease.stream.write_all(&framed).await
            } else {
                lease.stream.write_all(&data).await
            };
            written.map_err(|e| failed(e.to_string()))?;
        }
        if chunked {
            lease
                .stream
                .write_all(b"0\r\n\r\n")
                .await
                .map_err(|e| failed(e.to_string()))?;
        }
    }
    let method = req.method().clone();
    let mut answered = false;
    loop {
        match h1::parse_head(&mut lease.buf) {
            // Upgrade is never forwarded, so a switch is the app's error.
            Ok(Some(head)) if head.status == http::StatusCode::SWITCHING_PROTOCOLS => {
                return Err(Stage::Failed(format!(
                    "127.0.0.1:{port} switched protocols, which the router does not proxy"
                )));
            }
            // Interim responses (100 Continue, 103 Early Hints) are dropped.
            Ok(Some(head)) if head.status.is_informational() => answered = true,
            Ok(Some(head)) => {
                let framing = Framing::of(&method, &head).map_err(Stage::Failed)?;
                return Ok((head, framing));
            }
            Ok(None) => {}
            Err(e) => return Err(Stage::Failed(format!("from 127.0.0.1:{port}: {e}"))),
        }
        let n = std::future::poll_fn(|cx| read_more(&mut lease.stream, &mut lease.buf, cx))
            .await
            .map_err(|e| Stage::Failed(format!("reading from 127.0.0.1:{port}: {e}")))?;
        if n == 0 {
            let error = format!("127.0.0.1:{port} closed the connection before answering");
            return Err(if answered || had_body || !lease.buf.is_empty() {
                Stage::Failed(error)
            } else {
                Stage::Silent(error)
            });
        }
        answered |= n > 0;
    }
}

/// Reads what the socket has into `buf`'s spare room; 0 at end of stream.
fn read_more(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<std::io::Result<usize>> {
    if buf.capacity() - buf.len() < READ_CHUNK / 4 {
        buf.reserve(READ_CHUNK);
    }
    let mut read = ReadBuf::uninit(buf.spare_capacity_mut());
    ready!(Pin::new(stream).poll_read(cx, &mut read))?;
    let n = read.filled().len();
    // SAFETY: `poll_read` initialized the first `n` bytes of the spare
    // capacity it was given.
    unsafe { buf.set_len(buf.len() + n) };
    Poll::Ready(Ok(n))
}

/// The rest of a response: its body, read from the connection as asked.
pub struct Reader {
    /// `None` once the connection is given back or closed.
    lease: Option<Lease>,
    framing: Framing,
    keep_alive: bool,
}

impl Reader {
    fn poll_data(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, String>>> {
        let Some(lease) = &mut self.lease else {
            return Poll::Ready(None);
        };
        loop {
            match &mut self.framing {
                Framing::Done => return Poll::Ready(None),
                Framing::Length(left) if !lease.buf.is_empty() => {
                    let take = (*left).min(lease.buf.len() as u64);
                    *left -= take;
                    if *left == 0 {
                        self.framing = Framing::Done;
                    }
                    return Poll::Ready(Some(Ok(lease.buf.split_to(take as usize).freeze())));
                }
                Framing::Close if !lease.buf.is_empty() => {
                    return Poll::Ready(Some(Ok(lease.buf.split().freeze())));
                }
                Framing::Chunked(chunks) => match chunks.decode(&mut lease.buf) {
                    Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(data))),
                    Ok(Decoded::End) => {
                        self.framing = Framing::Done;
                        return Poll::Ready(None);
                    }
                    Ok(Decoded::More) => {}
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
                Framing::Length(_) | Framing::Close => {}
            }
            let n = match ready!(read_more(&mut lease.stream, &mut lease.buf, cx)) {
                Ok(n) => n,
                Err(e) => return Poll::Ready(Some(Err(format!("reading the response: {e}")))),
            };
            if n == 0 {
                if let Framing::Close = self.framing {
                    self.framing = Framing::Done;
                    self.keep_alive = false;
                    return Poll::Ready(None);
                }
                return Poll::Ready(Some(Err(
                    "the app closed the connection in the middle of the response".into(),
                )));
            }
        }
    }

    /// The connection, if the whole response was read and it can carry
    /// another request.
    fn reusable(&mut self) -> Option<Lease> {
        let whole = matches!(self.framing, Framing::Done);
        let lease = self.lease.take()?;
        (whole && self.keep_alive && lease.buf.is_empty()).then_some(lease)
    }
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

/// A response body that reads its connection, holds its request's
/// in-flight count until the last byte is sent (or the client goes away),
/// then gives the connection back if it can carry another request.
pub struct Counted {
    reader: Reader,
    pool: Arc<Pool>,
    _guard: Inflight,
}

impl Counted {
    pub fn new(reader: Reader, pool: Arc<Pool>, guard: Inflight) -> Counted {
        Counted {
            reader,
            pool,
            _guard: guard,
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Poll::Ready(match ready!(self.reader.poll_data(cx)) {
            Some(Ok(data)) => Some(Ok(Frame::data(data))),
            Some(Err(e)) => Some(Err(e.into())),
            None => None,
        })
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.reader.framing, Framing::Done)
    }

    fn size_hint(&self) -> SizeHint {
        match self.reader.framing {
            Framing::Done => SizeHint::with_exact(0),
            Framing::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        // A response cut short leaves the connection mid-message: it closes.
        if let Some(lease) = self.reader.reusable() {
            self.pool.give_back(lease);
        }
    }
}
