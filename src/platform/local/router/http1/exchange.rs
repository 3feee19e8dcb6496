//! One request on the router's HTTP/1.1 path: sent to the first destination
//! that answers, the answer copied back by its framing.

use super::super::framing::Chunked;
use super::super::{AppCounters, Inflight, RETRY_BODY_MAX, Refusal, pool};
use super::response::{Answer, Framing, client_head};
use super::{Conn, Head, MAX_HEAD, MAX_HEADERS};
use http::StatusCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// A destination that did not answer.
struct Failed {
    error: String,
    /// It refused the connection: nothing was sent.
    connect: bool,
}

impl Conn<'_> {
    /// Proxies one request whose head to send is in `self.out`. Returns
    /// whether the client's connection can carry another.
    pub(super) async fn proxy(&mut self, head: &Head) -> bool {
        let started = Instant::now();
        // A small body is read whole first, so the request can go again to
        // another destination (or on a new connection) if one fails.
        let kept = head.length <= RETRY_BODY_MAX;
        if kept && head.length > 0 && !self.keep_body(head.length).await {
            return false;
        }
        let candidates = match self.router.pick(&head.host) {
            Ok(c) => c,
            Err(refusal) => return self.refuse(&refusal, head.close || !kept).await,
        };
        let mut last: Option<(Arc<AppCounters>, String)> = None;
        for (counters, port) in candidates {
            counters.inflight.fetch_add(1, Ordering::SeqCst);
            let guard = Inflight(counters.clone());
            match self.send(port, head, kept).await {
                Ok((up, answer)) => {
                    if self.router.metrics {
                        counters.traffic.record(answer.status, started.elapsed());
                    }
                    // An app refusing a body may well not have read it.
                    let read = head.read_whole && (head.length == 0 || answer.status < 400);
                    let ok = self.answer(up, port, &answer, read).await;
                    drop(guard);
                    return ok;
                }
                Err(failed) => {
                    last = Some((counters, failed.error));
                    // As on the hyper path: a bodyless GET or HEAD goes to
                    // the next destination after any failure, any other
                    // request only if nothing was sent.
                    if !(head.idempotent || failed.connect) {
                        break;
                    }
                }
            }
        }
        let error = match last {
            Some((counters, e)) => {
                if self.router.metrics {
                    counters.traffic.record(502, started.elapsed());
                }
                e
            }
            None => String::new(),
        };
        let refusal = Refusal {
            status: StatusCode::BAD_GATEWAY,
            message: format!(
                "bluegreen router: upstream for `{}` failed: {error}\n",
                head.host
            ),
        };
        self.refuse(&refusal, head.close || !kept).await
    }

    /// Moves a body of `length` (at most `RETRY_BODY_MAX`) bytes from the
    /// client to the end of `self.out`.
    async fn keep_body(&mut self, length: u64) -> bool {
        let length = length as usize;
        while self.from_client.filled().len() < length {
            let max = RETRY_BODY_MAX as usize + MAX_HEAD;
            if !matches!(self.from_client.fill(self.client, max).await, Ok(n) if n > 0) {
                return false;
            }
        }
        self.out
            .extend_from_slice(&self.from_client.filled()[..length]);
        self.from_client.consume(length);
        true
    }

    /// Sends the request to `port` and reads the answer's head. An idle
    /// connection from the pool may have been closed by the app: if sending
    /// on it fails, or a bodyless GET or HEAD gets no byte of answer, the
    /// request goes once more on a new connection. (Any other request is
    /// only given a pooled connection checked to be open, and is not sent
    /// twice: the app may have acted on it.)
    async fn send(
        &mut self,
        port: u16,
        head: &Head,
        kept: bool,
    ) -> Result<(TcpStream, Answer), Failed> {
        let mut pooled = if kept {
            pool::take(port, !head.idempotent)
        } else {
            None
        };
        loop {
            let reused = pooled.is_some();
            let mut up = match pooled.take() {
                Some(up) => up,
                None => pool::connect(port).await.map_err(|e| Failed {
                    error: format!("connecting to 127.0.0.1:{port}: {e}"),
                    connect: true,
                })?,
            };
            if let Err(e) = up.write_all(&self.out).await {
                if reused {
                    continue;
                }
                return Err(Failed {
                    error: format!("sending the request: {e}"),
                    connect: false,
                });
            }
            let answer = match kept {
                true => self.read_answer(&mut up, head).await,
                false => match self.stream_body(&mut up, head.length).await {
                    Ok(()) => self.read_answer(&mut up, head).await,
                    Err(e) => Err(e),
                },
            };
            match answer {
                Ok(answer) => return Ok((up, answer)),
                Err(_) if reused && head.idempotent && self.from_app.is_empty() => continue,
                Err(error) => {
                    self.from_app.clear();
                    return Err(Failed {
                        error,
                        connect: false,
                    });
                }
            }
        }
    }

    /// Copies a body of `left` bytes too big to keep from the client to `up`.
    async fn stream_body(&mut self, up: &mut TcpStream, mut left: u64) -> Result<(), String> {
        while left > 0 {
            if self.from_client.is_empty() {
                match self.from_client.fill(self.client, MAX_HEAD).await {
                    Ok(0) => return Err("the client closed before its body ended".into()),
                    Err(e) => return Err(format!("reading the request body: {e}")),
                    Ok(_) => {}
                }
            }
            let avail = self.from_client.filled();
            let n = left.min(avail.len() as u64) as usize;
            up.write_all(&avail[..n])
                .await
                .map_err(|e| format!("sending the request body: {e}"))?;
            self.from_client.consume(n);
            left -= n as u64;
        }
        Ok(())
    }

    /// Reads the app's answer head (skipping interim 1xx answers) and writes
    /// the head for the client into `self.out`.
    async fn read_answer(&mut self, up: &mut TcpStream, head: &Head) -> Result<Answer, String> {
        loop {
            if !self.from_app.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(self.from_app.filled()) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = resp.code.unwrap_or(0);
                        if status == 101 {
                            return Err("the app switched protocols".into());
                        }
                        let answer =
                            (status >= 200).then(|| client_head(&resp, head, &mut self.out));
                        self.from_app.consume(len);
                        match answer {
                            Some(answer) => return answer,
                            None => continue,
                        }
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => return Err(format!("the app's answer is not HTTP/1.1: {e}")),
                }
            }
            match self.from_app.fill(up, MAX_HEAD).await {
                Ok(0) => return Err("the app closed the connection before answering".into()),
                Err(e) => return Err(format!("reading the answer: {e}")),
                Ok(_) => {}
            }
        }
    }

    /// Copies the answer's body from `up` to the client after its head (the
    /// head and the first bytes in one write), then keeps `up` for the next
    /// request if the app does and surely read all of this one
    /// (`request_read`).
    async fn answer(
        &mut self,
        mut up: TcpStream,
        port: u16,
        answer: &Answer,
        request_read: bool,
    ) -> bool {
        let mut left = match answer.framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        let mut chunked = Chunked::default();
        let mut done = answer.framing == Framing::Empty || answer.framing == Framing::Length(0);
        loop {
            let avail = self.from_app.filled();
            if !done && !avail.is_empty() {
                let n = match answer.framing {
                    Framing::Length(_) => {
                        let n = left.min(avail.len() as u64) as usize;
                        left -= n as u64;
                        done = left == 0;
                        n
                    }
                    Framing::Chunked => match chunked.feed(avail) {
                        Ok((n, end)) => {
                            done = end;
                            n
                        }
                        Err(_) => return false,
                    },
                    Framing::UntilClose => {
                        self.out
                            .extend_from_slice(format!("{:x}\r\n", avail.len()).as_bytes());
                        avail.len()
                    }
                    Framing::Empty => 0,
                };
                self.out.extend_from_slice(&avail[..n]);
                if answer.framing == Framing::UntilClose {
                    self.out.extend_from_slice(b"\r\n");
                }
                self.from_app.consume(n);
            }
            if !self.out.is_empty() {
                if self.client.write_all(&self.out).await.is_err() {
                    return false;
                }
                self.out.clear();
            }
            if done {
                break;
            }
            match self.from_app.fill(&mut up, MAX_HEAD).await {
                Ok(0) if answer.framing == Framing::UntilClose => {
                    self.out.extend_from_slice(b"0\r\n\r\n");
                    done = true;
                }
                Ok(0) | Err(_) => {
                    // Cut short: the client learns it from the closed
                    // connection, as the length or chunks never end.
                    self.from_app.clear();
                    return false;
                }
                Ok(_) => {}
            }
        }
        if answer.reusable && request_read && self.from_app.is_empty() {
            pool::give(port, up);
        }
        self.from_app.clear();
        true
    }
}
