//! The router against an attacker's bytes («12 · Hardening, round two»):
//! a corpus of request-smuggling attempts sent raw to a real router in
//! front of a naive app (Python's `http.server`, which takes an unread body
//! for the next request), each followed at once by victims' tagged requests
//! on the same upstream pool. Every case asserts that no client ever gets an
//! answer meant for another request (every request is tagged, every answer
//! checked), that nothing hidden in a body reaches the app as a request of
//! its own, and that bytes an app sends where no body may be never reach
//! anyone. Then slow clients and silent apps: stalled heads and bodies by
//! the hundred at the connection cap while ordinary requests keep a p99
//! under 100 ms, a silent app's 504, a stalled body's 408.

use crate::slow_clients::with_limits;
use bluegreen::platform::local::{RouterLimits, Running};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Answers `/tag/<t>` with the tag and what the app saw of the forwarding
/// headers and cookie; `/ignore` without reading the body; `/log` with
/// every request line it parsed; the `*-body` paths with bytes where an
/// answer may have no body, and `/extra` with bytes past its answer's end.
const NAIVE_APP: &str = r#"
import os, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
seen = []
lock = threading.Lock()
FAKE = b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nFAKE-ANSWER"
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 65536
    def answer(self, body, status=200):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def handle_one_request(self):
        super().handle_one_request()
        self.wfile.flush()
    def route(self):
        with lock:
            seen.append(self.requestline)
        p = self.path
        if p.startswith("/tag/"):
            h = self.headers
            body = "tag=%s xff=%s fwd=%s realip=%s port=%s cookie=%s" % (
                p[5:], h.get("x-forwarded-for"), h.get("forwarded"), h.get("x-real-ip"),
                h.get("x-forwarded-port"), h.get("cookie"))
            self.answer(body.encode())
        elif p == "/read":
            n = int(self.headers.get("content-length") or 0)
            self.answer(b"read=%d" % len(self.rfile.read(n)))
        elif p == "/ignore":
            self.answer(b"ignored")
        elif p == "/log":
            with lock:
                self.answer("\n".join(seen).encode())
        elif p == "/204-body":
            self.wfile.write(b"HTTP/1.1 204 No Content\r\n\r\n" + FAKE)
        elif p == "/304-body":
            self.wfile.write(b"HTTP/1.1 304 Not Modified\r\n\r\n" + FAKE)
        elif p == "/head-body":
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n" + FAKE)
        elif p == "/1xx-body":
            self.wfile.write(b"HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" + FAKE)
        elif p == "/extra":
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok" + FAKE)
        elif p == "/cl-and-chunks":
            self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + FAKE)
        elif p == "/hang":
            time.sleep(120)
        else:
            self.answer(b"no such path", 404)
    do_GET = do_POST = do_HEAD = do_PUT = route
    def log_message(self, *a):
        pass
ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

const HOST: &str = "naive.apps.localhost";

/// A request hidden where only a body may be.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: naive.apps.localhost\r\n\r\n";

/// A platform whose router has `limits`, running `NAIVE_APP`.
async fn naive(home: &std::path::Path, limits: RouterLimits) -> (Running, u16) {
    let (running, _, port, _) = with_limits(home, limits, "naive", NAIVE_APP).await;
    (running, port)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Everything a connection receives until it closes (or 10 s pass).
fn read_all(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut chunk = [0u8; 65536];
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// One answer off a kept connection: status and body.
fn one_answer(s: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, String) {
    let reply = crate::router::read_reply(s, buf, false);
    (
        reply.status,
        String::from_utf8_lossy(&reply.body).into_owned(),
    )
}

/// Two victims, each on its own kept connection (so on each router
/// thread), send tagged requests with their own cookie; each answer must
/// carry that request's tag and cookie and nothing else.
fn victims(port: u16, round: &str) {
    let mut conns: Vec<_> = (0..2).map(|_| (connect(port), Vec::new())).collect();
    for i in 0..4 {
        for (v, (s, buf)) in conns.iter_mut().enumerate() {
            let tag = format!("{round}-v{v}-{i}");
            let req =
                format!("GET /tag/{tag} HTTP/1.1\r\nHost: {HOST}\r\nCookie: secret-{tag}\r\n\r\n");
            s.write_all(req.as_bytes()).unwrap();
            let (status, body) = one_answer(s, buf);
            assert_eq!(status, 200, "victim {tag} after {round}: {body}");
            assert!(
                body.starts_with(&format!("tag={tag} "))
                    && body.ends_with(&format!("cookie=secret-{tag}")),
                "victim {tag} after {round} got another request's answer: {body}"
            );
            assert!(!body.contains("FAKE"), "{round}: {body}");
        }
    }
}

/// A smuggling attempt: raw bytes, and the status of the first answer the
/// router must give (None: whatever the app answers, as long as nothing
/// leaks).
struct Case {
    name: &'static str,
    bytes: String,
    first: Option<u16>,
}

fn post(path: &str, headers: &str, body: &str) -> String {
    format!("POST {path} HTTP/1.1\r\nHost: {HOST}\r\n{headers}\r\n{body}")
}

fn corpus() -> Vec<Case> {
    let n = SMUGGLED.len();
    let chunked_smuggle = format!("0\r\n\r\n{SMUGGLED}");
    let case = |name, bytes: String, first| Case { name, bytes, first };
    let mut cases = vec![
        // `Connection` naming the framing: the body must stay a body.
        case(
            "connection-names-content-length",
            post(
                "/ignore",
                &format!("Content-Length: {n}\r\nConnection: content-length\r\n"),
                SMUGGLED,
            ),
            Some(200),
        ),
        case(
            "connection-names-content-length-read",
            post(
                "/read",
                &format!("Content-Length: {n}\r\nConnection: content-length\r\n"),
                SMUGGLED,
            ),
            Some(200),
        ),
        case(
            "connection-names-host",
            post(
                "/ignore",
                &format!("Content-Length: {n}\r\nConnection: host, content-length\r\n"),
                SMUGGLED,
            ),
            Some(200),
        ),
        case(
            "connection-names-transfer-encoding",
            post(
                "/ignore",
                "Transfer-Encoding: chunked\r\nConnection: transfer-encoding\r\n",
                &format!("{n:x}\r\n{SMUGGLED}\r\n0\r\n\r\n"),
            ),
            Some(200),
        ),
        // CL.TE and TE.CL.
        case(
            "cl-te",
            post(
                "/read",
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                &chunked_smuggle,
            ),
            Some(400),
        ),
        case(
            "te-cl",
            post(
                "/read",
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                &chunked_smuggle,
            ),
            Some(400),
        ),
        // TE.TE with obfuscated values.
        case(
            "te-te-second-value",
            post(
                "/read",
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n",
                &chunked_smuggle,
            ),
            Some(501),
        ),
        case(
            "te-xchunked",
            post("/read", "Transfer-Encoding: xchunked\r\n", &chunked_smuggle),
            Some(501),
        ),
        case(
            "te-list",
            post(
                "/read",
                "Transfer-Encoding: chunked, identity\r\n",
                &chunked_smuggle,
            ),
            Some(501),
        ),
        case(
            "te-space-before-colon",
            post("/read", "Transfer-Encoding : chunked\r\n", &chunked_smuggle),
            Some(400),
        ),
        case(
            "te-vertical-tab",
            post(
                "/read",
                "Transfer-Encoding:\x0bchunked\r\n",
                &chunked_smuggle,
            ),
            Some(400),
        ),
        case(
            "te-folded",
            post(
                "/read",
                "X-A: a\r\n Transfer-Encoding: chunked\r\n",
                &chunked_smuggle,
            ),
            Some(400),
        ),
        case(
            "te-tab-is-whitespace",
            post("/read", "Transfer-Encoding:\tchunked\r\n", "0\r\n\r\n"),
            Some(200),
        ),
        // Content-Length spelled every wrong way.
        case(
            "cl-plus",
            post("/read", "Content-Length: +5\r\n", SMUGGLED),
            Some(400),
        ),
        case(
            "cl-minus",
            post("/read", "Content-Length: -5\r\n", SMUGGLED),
            Some(400),
        ),
        case(
            "cl-hex",
            post("/read", "Content-Length: 0x5\r\n", SMUGGLED),
            Some(400),
        ),
        case(
            "cl-list",
            post("/read", "Content-Length: 5, 5\r\n", SMUGGLED),
            Some(400),
        ),
        case(
            "cl-duplicate-equal",
            post(
                "/read",
                "Content-Length: 5\r\nContent-Length: 5\r\n",
                SMUGGLED,
            ),
            Some(400),
        ),
        case(
            "cl-duplicate-different",
            post(
                "/read",
                &format!("Content-Length: 0\r\nContent-Length: {n}\r\n"),
                SMUGGLED,
            ),
            Some(400),
        ),
        case(
            "cl-huge",
            post(
                "/read",
                "Content-Length: 184467440737095516160\r\n",
                SMUGGLED,
            ),
            Some(400),
        ),
        case(
            "cl-exponent",
            post("/read", "Content-Length: 1e3\r\n", SMUGGLED),
            Some(400),
        ),
        case(
            "cl-padded-zeros",
            post("/read", &format!("Content-Length: 000{n}\r\n"), SMUGGLED),
            Some(200),
        ),
        case(
            "cl-space-in-name",
            post("/read", "Content-Length : 5\r\n", SMUGGLED),
            Some(400),
        ),
        // Line endings and bytes a lenient parser splits differently.
        case(
            "obs-fold-length",
            post("/read", "X-A: a\r\n Content-Length: 5\r\n", SMUGGLED),
            Some(400),
        ),
        case(
            "bare-cr",
            post("/read", "X-A: a\rContent-Length: 5\r\n", SMUGGLED),
            Some(400),
        ),
        case(
            "nul-in-value",
            post("/read", "X-A: a\0Content-Length: 5\r\n", SMUGGLED),
            Some(400),
        ),
        case(
            "bare-lf-lines",
            format!("GET /tag/lf HTTP/1.1\nHost: {HOST}\n\n"),
            Some(200),
        ),
        // Chunks: extensions pass, sizes past 64 bits do not.
        case(
            "chunk-extension",
            post(
                "/read",
                "Transfer-Encoding: chunked\r\n",
                "5;ext=\"x\"\r\nhello\r\n0\r\n\r\n",
            ),
            Some(200),
        ),
        case(
            "chunk-size-overflow",
            post(
                "/read",
                "Transfer-Encoding: chunked\r\n",
                &format!("fffffffffffffffff1\r\n{SMUGGLED}\r\n0\r\n\r\n"),
            ),
            Some(400),
        ),
        case(
            "chunk-size-signed",
            post(
                "/read",
                "Transfer-Encoding: chunked\r\n",
                &format!("-5\r\n{SMUGGLED}\r\n0\r\n\r\n"),
            ),
            Some(400),
        ),
        // Bodies an app does not read: a GET's, a refused POST's.
        case(
            "get-with-body",
            format!(
                "GET /tag/get-body HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: {n}\r\n\r\n{SMUGGLED}"
            ),
            Some(200),
        ),
        case(
            "post-unread-body",
            post("/ignore", &format!("Content-Length: {n}\r\n"), SMUGGLED),
            Some(200),
        ),
        case(
            "big-unread-body",
            post(
                "/ignore",
                &format!("Content-Length: {}\r\n", 100_000 + n),
                &format!("{}{SMUGGLED}", "x".repeat(100_000)),
            ),
            None,
        ),
        // Pipelined requests are answered in order, each its own.
        case(
            "pipelined",
            format!(
                "GET /tag/p1 HTTP/1.1\r\nHost: {HOST}\r\n\r\nGET /tag/p2 HTTP/1.1\r\nHost: {HOST}\r\n\r\n"
            ),
            Some(200),
        ),
        // The client's forwarding headers are replaced as a set.
        case(
            "forwarding-spoof",
            format!(
                "GET /tag/spoof HTTP/1.1\r\nHost: {HOST}\r\nX-Forwarded-For: 6.6.6.6\r\nForwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nX-Forwarded-Port: 6666\r\nConnection: x-forwarded-for\r\n\r\n"
            ),
            Some(200),
        ),
        case(
            "two-hosts",
            format!("GET /tag/x HTTP/1.1\r\nHost: {HOST}\r\nHost: other.apps.localhost\r\n\r\n"),
            Some(400),
        ),
        case(
            "two-hosts-http10",
            format!("GET /tag/x HTTP/1.0\r\nHost: {HOST}\r\nHost: other.apps.localhost\r\n\r\n"),
            Some(400),
        ),
    ];
    // Answers with bytes where no body may be, or past their end.
    for (name, method, path) in [
        ("answer-204-with-body", "GET", "/204-body"),
        ("answer-304-with-body", "GET", "/304-body"),
        ("answer-head-with-body", "HEAD", "/head-body"),
        ("answer-1xx-then-extra", "GET", "/1xx-body"),
        ("answer-past-its-length", "GET", "/extra"),
        ("answer-length-and-chunks", "GET", "/cl-and-chunks"),
    ] {
        cases.push(case(
            name,
            format!("{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n"),
            None,
        ));
    }
    cases
}

#[tokio::test(flavor = "multi_thread")]
async fn defect_12_1_no_smuggled_request_reaches_an_app_and_no_client_gets_anothers_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let limits = RouterLimits {
        body_timeout: Duration::from_secs(2),
        header_timeout: Duration::from_secs(2),
        ..RouterLimits::default()
    };
    let (running, port) = naive(tmp.path(), limits).await;
    let failures = tokio::task::spawn_blocking(move || {
        let mut failures = Vec::new();
        let cases = corpus();
        for case in &cases {
            for round in 0..2 {
                let mut s = connect(port);
                // Ends the attacker's connection once what came before is
                // answered, so its answers can be read to the end.
                let last = format!(
                    "GET /tag/{}-end HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n",
                    case.name
                );
                s.write_all(case.bytes.as_bytes()).unwrap();
                let _ = s.write_all(last.as_bytes());
                let got = read_all(&mut s);
                let first: Option<u16> = got.get(9..12).and_then(|c| c.parse().ok());
                if case.first.is_some() && first != case.first {
                    failures.push(format!(
                        "{}: first answer {first:?}, wanted {:?}:\n{got}",
                        case.name, case.first
                    ));
                }
                if got.contains("FAKE")
                    || got.contains("secret-")
                    || got.contains("-v0-")
                    || got.contains("-v1-")
                {
                    failures.push(format!(
                        "{}: the attacker got bytes not meant for it:\n{got}",
                        case.name
                    ));
                }
                if got.contains("6.6.6.6") || got.contains("6666") {
                    failures.push(format!(
                        "{}: a client's forwarding header reached the app:\n{got}",
                        case.name
                    ));
                }
                victims(port, &format!("{}-{round}", case.name));
            }
        }
        let mut s = connect(port);
        s.write_all(format!("GET /log HTTP/1.1\r\nHost: {HOST}\r\n\r\n").as_bytes())
            .unwrap();
        let (_, log) = one_answer(&mut s, &mut Vec::new());
        if log.contains("/smuggled") {
            failures.push(format!(
                "a request hidden in a body reached the app:\n{log}"
            ));
        }
        // Every case's closing request was served when its bytes were not
        // refused: the corpus really reached the app.
        for case in cases
            .iter()
            .filter(|c| c.first == Some(200) || c.first.is_none())
        {
            if !log.contains(&format!("/tag/{}-end", case.name)) {
                failures.push(format!(
                    "{}: the request after it never reached the app",
                    case.name
                ));
            }
        }
        eprintln!(
            "smuggling corpus: {} cases x 2 rounds, {} failures",
            cases.len(),
            failures.len()
        );
        failures
    })
    .await
    .unwrap();
    running.shutdown().await;
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
