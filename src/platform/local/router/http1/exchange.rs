//! One request on the router's HTTP/1.1 path: sent to the first destination
//! that answers, the answer copied back by its framing. Each wait is
//! bounded: the client's body by `body_timeout` between reads, the app by
//! `connect_timeout`, `first_byte_timeout` (then a 504, counted against the
//! app like a 5xx) and `read_timeout` between the answer's reads.

use super::super::framing::Chunked;
use super::super::requests::Seen;
use super::super::{RETRY_BODY_MAX, Refusal, pool};
use super::response::{Answer, Framing, client_head};
use super::{Conn, Head, MAX_HEAD, MAX_HEADERS};
use http::StatusCode;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Why a destination did not answer.
#[derive(PartialEq)]
enum Kind {
    /// It refused the connection, or did not accept it in time: nothing
    /// was sent, so any request may go to the next destination.
    Connect,
    /// It failed after the request was sent: closed, reset, bad answer.
    Upstream,
    /// It did not start its answer within `first_byte_timeout`.
    Silent,
    /// The client closed before its body ended: not the app's fault.
    Client,
    /// The client's body stopped arriving within `body_timeout`.
    ClientStalled,
}

struct Failed {
    error: String,
    kind: Kind,
}

fn failed(kind: Kind, error: impl Into<String>) -> Failed {
    Failed {
        error: error.into(),
        kind,
    }
}

impl Conn<'_> {
    /// Proxies one request whose head to send is in `self.out`. Returns
    /// whether the client's connection can carry another.
    pub(super) async fn proxy(&mut self, head: &Head) -> bool {
        let started = Instant::now();
        // A small body is read whole first, so the request can go again to
        // another destination (or on a new connection) if one fails.
        let kept = head.length <= RETRY_BODY_MAX;
        if kept
            && head.length > 0
            && let Err(f) = self.keep_body(head.length).await
        {
            return self.client_failed(f).await;
        }
        let candidates = match self.router.pick(&head.host, head.pin.as_deref()) {
            Ok(c) => c,
            Err(refusal) => return self.refuse(&refusal, head.close || !kept).await,
        };
        let seen = Seen {
            method: &head.method,
            host: &head.host,
            target: &head.path,
        };
        let mut last = String::new();
        for mut t in candidates {
            let guard = t.inflight();
            let (counters, port) = (&t.counters, t.port);
            let awaiting = self.router.metrics.then(|| counters.traffic.awaiting());
            let sent = self.send(port, head, kept).await;
            drop(awaiting);
            match sent {
                Ok((up, answer)) => {
                    if self.router.metrics {
                        t.answered(answer.status, started, &seen);
                    }
                    let ok = self.answer(up, port, &answer, head.reuse).await;
                    drop(guard);
                    return ok;
                }
                Err(f) if matches!(f.kind, Kind::Client | Kind::ClientStalled) => {
                    return self.client_failed(f).await;
                }
                Err(f) if f.kind == Kind::Silent => {
                    if self.router.metrics {
                        t.answered(504, started, &seen);
                    }
                    let limit = self.router.limits.first_byte_timeout;
                    let why = format!(
                        "the app for `{}` did not answer within {}",
                        head.host,
                        humantime::format_duration(limit)
                    );
                    let refusal = Self::timed_out(StatusCode::GATEWAY_TIMEOUT, &why);
                    return self.refuse(&refusal, head.close || !kept).await;
                }
                Err(f) => {
                    // Every failed attempt counts against the app that
                    // failed it, also when the next destination answers:
                    // a release that drops requests must not look healthy
                    // because the router hid its failures.
                    if self.router.metrics {
                        t.answered(502, started, &seen);
                    }
                    let connect = f.kind == Kind::Connect;
                    last = f.error;
                    // As on the hyper path: a bodyless GET or HEAD goes to
                    // the next destination after any failure, any other
                    // request only if nothing was sent.
                    if !(head.idempotent || connect) {
                        break;
                    }
                }
            }
        }
        let refusal = Refusal {
            status: StatusCode::BAD_GATEWAY,
            message: format!(
                "bluegreen router: upstream for `{}` failed: {last}\n",
                head.host
            ),
        };
        self.refuse(&refusal, head.close || !kept).await
    }

    /// Reads once more from the client for its body, within
    /// `body_timeout`, marked as waiting on the client meanwhile.
    async fn body_bytes(&mut self, max: usize) -> Result<(), Failed> {
        self.slot.waiting();
        let limit = self.router.limits.body_timeout;
        let read = tokio::time::timeout(limit, self.from_client.fill(self.client, max)).await;
        self.slot.busy();
        match read {
            Ok(Ok(n)) if n > 0 => Ok(()),
            Ok(Ok(_)) => Err(failed(
                Kind::Client,
                "the client closed before its body ended",
            )),
            Ok(Err(e)) => Err(failed(
                Kind::Client,
                format!("reading the request body: {e}"),
            )),
            Err(_) => Err(failed(
                Kind::ClientStalled,
                "the request body stopped arriving",
            )),
        }
    }

    /// Ends a connection whose client failed its own request: a 408 to a
    /// client that stalled, nothing to one that left. Never counted
    /// against an app.
    async fn client_failed(&mut self, f: Failed) -> bool {
        if f.kind == Kind::ClientStalled {
            let refusal = Self::timed_out(StatusCode::REQUEST_TIMEOUT, &f.error);
            self.refuse(&refusal, true).await;
        }
        false
    }

    /// Moves a body of `length` (at most `RETRY_BODY_MAX`) bytes from the
    /// client to the end of `self.out`.
    async fn keep_body(&mut self, length: u64) -> Result<(), Failed> {
        let length = length as usize;
        while self.from_client.filled().len() < length {
            self.body_bytes(RETRY_BODY_MAX as usize + MAX_HEAD).await?;
        }
        self.out
            .extend_from_slice(&self.from_client.filled()[..length]);
        self.from_client.consume(length);
        Ok(())
    }

    /// Sends the request to `port` and reads the answer's head. An idle
    /// connection from the pool may have been closed by the app: if sending
    /// on it fails, or a bodyless GET or HEAD gets no byte of answer, the
    /// request goes once more on a new connection. (The pool only gives
    /// connections with nothing to read on them; a request that is not a
    /// bodyless GET or HEAD is never sent twice: the app may have acted.)
    async fn send(
        &mut self,
        port: u16,
        head: &Head,
        kept: bool,
    ) -> Result<(TcpStream, Answer), Failed> {
        let limits = self.router.limits.clone();
        let mut pooled = if kept { pool::take(port) } else { None };
        loop {
            let reused = pooled.is_some();
            let mut up = match pooled.take() {
                Some(up) => up,
                None => {
                    match tokio::time::timeout(limits.connect_timeout, pool::connect(port)).await {
                        Ok(Ok(up)) => up,
                        Ok(Err(e)) => {
                            let why = format!("connecting to 127.0.0.1:{port}: {e}");
                            return Err(failed(Kind::Connect, why));
                        }
                        Err(_) => {
                            let why = format!("connecting to 127.0.0.1:{port}: timed out");
                            return Err(failed(Kind::Connect, why));
                        }
                    }
                }
            };
            let sent = tokio::time::timeout(limits.read_timeout, up.write_all(&self.out)).await;
            if !matches!(sent, Ok(Ok(()))) {
                if reused {
                    continue;
                }
                return Err(failed(Kind::Upstream, "sending the request failed"));
            }
            if !kept {
                self.stream_body(&mut up, head.length).await?;
            }
            // The whole answer head within the first-byte limit, from when
            // the request was sent.
            let deadline = tokio::time::Instant::now() + limits.first_byte_timeout;
            match self.read_answer(&mut up, head, deadline).await {
                Ok(answer) => return Ok((up, answer)),
                Err(f)
                    if f.kind == Kind::Upstream
                        && reused
                        && head.idempotent
                        && self.from_app.is_empty() =>
                {
                    continue;
                }
                Err(f) => {
                    self.from_app.clear();
                    return Err(f);
                }
            }
        }
    }

    /// Copies a body of `left` bytes too big to keep from the client to `up`.
    async fn stream_body(&mut self, up: &mut TcpStream, mut left: u64) -> Result<(), Failed> {
        let limit = self.router.limits.read_timeout;
        while left > 0 {
            if self.from_client.is_empty() {
                self.body_bytes(MAX_HEAD).await?;
            }
            let avail = self.from_client.filled();
            let n = left.min(avail.len() as u64) as usize;
            match tokio::time::timeout(limit, up.write_all(&avail[..n])).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(failed(
                        Kind::Upstream,
                        format!("sending the request body: {e}"),
                    ));
                }
                Err(_) => return Err(failed(Kind::Silent, "the app stopped reading the body")),
            }
            self.from_client.consume(n);
            left -= n as u64;
        }
        Ok(())
    }

    /// Reads the app's answer head (skipping interim 1xx answers) by
    /// `deadline` and writes the head for the client into `self.out`.
    async fn read_answer(
        &mut self,
        up: &mut TcpStream,
        head: &Head,
        deadline: tokio::time::Instant,
    ) -> Result<Answer, Failed> {
        loop {
            if !self.from_app.is_empty() {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(self.from_app.filled()) {
                    Ok(httparse::Status::Complete(len)) => {
                        let status = resp.code.unwrap_or(0);
                        if status == 101 {
                            return Err(failed(Kind::Upstream, "the app switched protocols"));
                        }
                        let answer =
                            (status >= 200).then(|| client_head(&resp, head, &mut self.out));
                        self.from_app.consume(len);
                        match answer {
                            Some(answer) => return answer.map_err(|e| failed(Kind::Upstream, e)),
                            None => continue,
                        }
                    }
                    Ok(httparse::Status::Partial) => {}
                    Err(e) => {
                        let why = format!("the app's answer is not HTTP/1.1: {e}");
                        return Err(failed(Kind::Upstream, why));
                    }
                }
            }
            let read = self.from_app.fill(up, MAX_HEAD);
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(0)) => {
                    let why = "the app closed the connection before answering";
                    return Err(failed(Kind::Upstream, why));
                }
                Ok(Err(e)) => {
                    return Err(failed(Kind::Upstream, format!("reading the answer: {e}")));
                }
                Ok(Ok(_)) => {}
                Err(_) => return Err(failed(Kind::Silent, "no answer in time")),
            }
        }
    }

    /// Copies the answer's body from `up` to the client after its head (the
    /// head and the first bytes in one write), then keeps `up` for the next
    /// request if the app does, the request allows it (`Head::reuse`) and
    /// nothing past the answer's end was read.
    async fn answer(&mut self, mut up: TcpStream, port: u16, answer: &Answer, reuse: bool) -> bool {
        let limit = self.router.limits.read_timeout;
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
                let write = self.client.write_all(&self.out);
                if !matches!(tokio::time::timeout(limit, write).await, Ok(Ok(()))) {
                    return false;
                }
                self.out.clear();
            }
            if done {
                break;
            }
            let read = tokio::time::timeout(limit, self.from_app.fill(&mut up, MAX_HEAD));
            match read.await {
                Ok(Ok(0)) if answer.framing == Framing::UntilClose => {
                    self.out.extend_from_slice(b"0\r\n\r\n");
                    done = true;
                }
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                    // Cut short: the client learns it from the closed
                    // connection, as the length or chunks never end.
                    self.from_app.clear();
                    return false;
                }
                Ok(Ok(_)) => {}
            }
        }
        if answer.reusable && reuse && self.from_app.is_empty() {
            pool::give(port, up);
        }
        self.from_app.clear();
        true
    }
}
