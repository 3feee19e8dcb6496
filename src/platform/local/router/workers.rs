//! Accepting and serving connections: one accept loop, and one thread per
//! core with its own single-threaded runtime and upstream pool.

use super::stalls::Slot;
use super::{DRAIN, Limits, Peer, Router, RouterBody, http1, pool};
use hyper_util::client::legacy::{Client, connect::HttpConnector};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// An accepted connection on its way to a router thread.
type Handed = (
    std::net::TcpStream,
    std::net::SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
);

impl Router {
    /// Serves until `shutdown` turns true, at most `max_connections`
    /// connections at once: at the cap, a new connection makes the one
    /// waiting longest on its client close (`stalls`). Connections are accepted here and handed, in
    /// turn, to one thread per core; each runs its own single-threaded
    /// runtime with its own pool of upstream connections, so a request, its
    /// upstream call and the answer never change threads (nginx's worker
    /// model): hopping between a multi-threaded runtime's workers was most
    /// of the router's cost per request. (Threads accepting from one shared
    /// socket left every connection to whichever woke first.) Returns once
    /// every thread has drained its connections.
    pub async fn serve(self, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut workers = Vec::new();
        let mut handoff = Vec::new();
        for i in 0..threads {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            let router = Router {
                client: upstream_client(&self.limits),
                ..self.clone()
            };
            let stop = shutdown.clone();
            let worker = std::thread::Builder::new()
                .name(format!("router-{i}"))
                .spawn(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for a router thread")
                        .block_on(router.work(rx, stop));
                });
            match worker {
                Ok(w) => {
                    workers.push(w);
                    handoff.push(tx);
                }
                Err(e) => crate::output::write_stderr(&format!("router: thread {i}: {e}\n")),
            }
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(self.limits.max_connections));
        let mut backoff = std::time::Duration::from_millis(5);
        let mut next = 0usize;
        while !handoff.is_empty() {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = shutdown.changed() => break,
            };
            let permit = match limit.clone().try_acquire_owned() {
                Ok(p) => p,
                Err(_) => {
                    // Full: the connection waiting longest on its client
                    // makes room. When every one is busy, this one waits.
                    self.stalls.evict_oldest(1);
                    tokio::select! {
                        p = limit.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                        _ = shutdown.changed() => break,
                    }
                }
            };
            let Ok((stream, peer)) = accepted.and_then(|(s, peer)| Ok((s.into_std()?, peer)))
            else {
                // Out of file descriptors, say: wait instead of spinning.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                continue;
            };
            backoff = std::time::Duration::from_millis(5);
            next = (next + 1) % handoff.len();
            let _ = handoff[next].send((stream, peer, permit));
        }
        drop(handoff);
        let _ = tokio::task::spawn_blocking(move || {
            for w in workers {
                let _ = w.join();
            }
        })
        .await;
    }

    /// One router thread: serves the connections handed to it until the
    /// hand-off closes, then gives those still open up to `DRAIN`.
    async fn work(
        self,
        mut handed: tokio::sync::mpsc::UnboundedReceiver<Handed>,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut open = tokio::task::JoinSet::new();
        while let Some((stream, peer, permit)) = handed.recv().await {
            let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let router = self.clone();
            let mut stop = shutdown.clone();
            // Finished connections leave the set as new ones come.
            while open.try_join_next().is_some() {}
            open.spawn(async move {
                let _permit = permit;
                let registered = router.stalls.register();
                let slot = registered.slot.clone();
                let peer = Peer {
                    ip: peer.ip().to_string(),
                    port: stream.local_addr().map_or(0, |a| a.port()),
                };
                let mut stream = stream;
                // Dropping the connection's future closes it, wherever it
                // waits.
                let served = http1::serve(&router, &mut stream, &peer, &slot, &mut stop);
                let read = tokio::select! {
                    end = served => match end {
                        http1::End::Closed => return,
                        http1::End::Handoff(read) => read,
                    },
                    _ = slot.evicted() => return,
                };
                let io = Prefixed {
                    read,
                    at: 0,
                    stream,
                    slot: slot.clone(),
                };
                tokio::select! {
                    _ = router.serve_hyper(io, peer, stop) => {}
                    _ = slot.evicted() => {}
                }
            });
        }
        let _ =
            tokio::time::timeout(DRAIN, async { while open.join_next().await.is_some() {} }).await;
        pool::close_all();
    }
}

impl Router {
    /// Serves the rest of a connection that `http1` handed off, through
    /// hyper's server and pooled client.
    async fn serve_hyper(self, io: Prefixed, peer: Peer, mut stop: watch::Receiver<bool>) {
        let peer = Arc::new(peer);
        let header_timeout = self.limits.header_timeout;
        let service = hyper::service::service_fn(move |req| {
            let router = self.clone();
            let peer = peer.clone();
            async move { Ok::<_, std::convert::Infallible>(router.handle(req, &peer).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(io), service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.changed() => conn.as_mut().graceful_shutdown(),
        }
        // The request in flight finishes; an idle connection closes.
        let _ = conn.await;
    }
}

/// A client connection with the bytes already read from it put back in
/// front, for hyper to read from the start of a request. A read that has
/// to wait marks the connection as waiting on its client.
struct Prefixed {
    read: Vec<u8>,
    at: usize,
    stream: TcpStream,
    slot: Arc<Slot>,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.read.len() {
            let n = buf.remaining().min(this.read.len() - this.at);
            buf.put_slice(&this.read[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        match read {
            Poll::Pending => this.slot.waiting(),
            Poll::Ready(_) => this.slot.busy(),
        }
        read
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A pool of keep-alive connections to the apps, one per router thread.
pub(super) fn upstream_client(limits: &Limits) -> Client<HttpConnector, RouterBody> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(limits.connect_timeout));
    Client::builder(TokioExecutor::new()).build(connector)
}
