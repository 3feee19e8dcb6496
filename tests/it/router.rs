//! The router's HTTP/1.1 wire behaviour against an app that answers byte
//! for byte as written here (every framing an app may use, interim
//! answers, connections it drops), through a raw client connection: what
//! keeps its connection open, what reaches the app, what a cut answer does.

use crate::platform::{push, start};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Answers by path with hand-written bytes; counts the connections that
/// carried a request (`/connections`) and echoes what it received (`/echo`).
/// After each `/drop` it has closed its end (sent its FIN), it writes how
/// many it dropped to `DROPS_FILE`.
const RAW_APP: &str = r#"
import hashlib, os, socket, socketserver, threading, time
accepted = [0]
dropped = [0]
lock = threading.Lock()
class H(socketserver.StreamRequestHandler):
    def handle(self):
        counted = False
        while True:
            line = self.rfile.readline()
            if not line:
                return
            method, path, _ = line.decode().split(" ", 2)
            # Connections that carried a test request (not the platform's
            # port or HTTP health checks).
            if not counted and path != "/":
                counted = True
                with lock:
                    accepted[0] += 1
            heads = []
            while True:
                h = self.rfile.readline()
                if h in (b"\r\n", b""):
                    break
                heads.append(h.decode().strip())
            lower = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in heads)}
            body = b""
            if "content-length" in lower and path != "/ignores-body":
                body = self.rfile.read(int(lower["content-length"]))
            elif lower.get("transfer-encoding") == "chunked":
                while True:
                    n = int(self.rfile.readline().split(b";")[0], 16)
                    body += self.rfile.read(n)
                    self.rfile.readline()
                    if n == 0:
                        break
            w = self.wfile.write
            def length(text, extra=""):
                w(("HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n" % (len(text), extra)).encode() + text)
            if method not in ("GET", "HEAD", "POST", "PUT"):
                w(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            elif path == "/length":
                if method == "HEAD":
                    w(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
                else:
                    length(b"hello", "x-app: yes\r\nconnection: x-secret\r\nx-secret: s\r\n")
            elif path == "/chunked":
                w(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel")
                time.sleep(0.05)
                w(b"lo\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: t\r\n\r\n")
            elif path == "/until-close":
                w(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ")
                time.sleep(0.05)
                w(b"close")
                return
            elif path == "/no-content":
                w(b"HTTP/1.1 204 No Content\r\nx-app: yes\r\n\r\n")
            elif path == "/early-hints":
                w(b"HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n")
                length(b"after hints")
            elif path == "/echo":
                seen = "%s %d %s\n%s\n" % (method, len(body), hashlib.sha256(body).hexdigest(), "\n".join(heads))
                length(seen.encode())
            elif path == "/big":
                block = bytes(range(256)) * 4096
                w(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % (len(block) * 20))
                for _ in range(20):
                    w(block)
            elif path == "/cut":
                w(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
                return
            elif path == "/drop":
                length(b"dropped after this")
                self.request.shutdown(socket.SHUT_WR)
                with lock:
                    dropped[0] += 1
                    with open("DROPS_FILE.tmp", "w") as f:
                        f.write(str(dropped[0]))
                    os.rename("DROPS_FILE.tmp", "DROPS_FILE")
                return
            elif path == "/ignores-body":
                length(b"ignored")
            elif path == "/connections":
                with lock:
                    length(str(accepted[0]).encode())
            else:
                w(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
S(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

/// One answer read off a raw connection: status, head, body (chunks
/// decoded), and whether it was chunked.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    pub chunked: bool,
}

pub fn read_reply(s: &mut TcpStream, buf: &mut Vec<u8>, head_request: bool) -> Reply {
    let mut chunk = [0u8; 65536];
    let mut more = |s: &mut TcpStream, buf: &mut Vec<u8>| {
        let n = s.read(&mut chunk).expect("reading the answer");
        assert!(
            n > 0,
            "closed early; have {:?}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        more(s, buf);
    };
    let head = String::from_utf8(buf.drain(..end).collect()).unwrap();
    let status = head[9..12].parse().unwrap();
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map(|n| n.trim().parse::<usize>().unwrap());
    let chunked = lower.contains("transfer-encoding: chunked");
    let mut body = Vec::new();
    if head_request || status == 204 || status < 200 {
    } else if chunked {
        loop {
            let line_end = loop {
                if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                    break i;
                }
                more(s, buf);
            };
            let size_text = String::from_utf8(buf[..line_end].to_vec()).unwrap();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap(), 16).unwrap();
            buf.drain(..line_end + 2);
            if size == 0 {
                // Trailers, then the empty line.
                loop {
                    let i = loop {
                        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
                            break i;
                        }
                        more(s, buf);
                    };
                    buf.drain(..i + 2);
                    if i == 0 {
                        break;
                    }
                }
                break;
            }
            while buf.len() < size + 2 {
                more(s, buf);
            }
            body.extend(buf.drain(..size));
            buf.drain(..2);
        }
    } else {
        let n = length.expect("a length or chunks");
        while buf.len() < n {
            more(s, buf);
        }
        body.extend(buf.drain(..n));
    }
    Reply {
        status,
        head,
        body,
        chunked,
    }
}

fn ask(s: &mut TcpStream, buf: &mut Vec<u8>, req: String, head: bool) -> Reply {
    s.write_all(req.as_bytes()).unwrap();
    read_reply(s, buf, head)
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// A local platform in `home` running `RAW_APP` as `raw`; its router port.
async fn raw_app(home: &std::path::Path) -> (bluegreen::platform::local::Running, u16) {
    let (running, client) = start(home).await;
    let dir = home.join("raw");
    std::fs::create_dir_all(&dir).unwrap();
    let drops = home.join("raw-drops");
    std::fs::write(
        dir.join("app.py"),
        RAW_APP.replace("DROPS_FILE", drops.to_str().unwrap()),
    )
    .unwrap();
    std::fs::write(dir.join("Procfile"), "web: exec python3 app.py\n").unwrap();
    let guid = push(&client, "raw", &dir, "r").await;
    crate::platform::route_to(&client, "raw", &guid).await;
    let port = running.endpoint.router_port;
    (running, port)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: raw.apps.localhost\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_framing_an_app_answers_with_reaches_the_client_on_one_kept_connection() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, port) = raw_app(tmp.path()).await;
    let drops = tmp.path().join("raw-drops");

    tokio::task::spawn_blocking(move || {
        let mut s = connect(port);
        let mut buf = Vec::new();
        let r = ask(&mut s, &mut buf, get("/length"), false);
        assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]), "{}", r.head);
        assert!(r.head.contains("x-app: yes"), "{}", r.head);
        assert!(
            !r.head.contains("x-secret"),
            "a header the app's Connection names is its own: {}",
            r.head
        );
        let r = ask(&mut s, &mut buf, get("/chunked"), false);
        assert!(r.chunked, "{}", r.head);
        assert_eq!(r.body, b"hello world");
        let r = ask(&mut s, &mut buf, get("/until-close"), false);
        assert_eq!(r.body, b"until close");
        assert!(
            r.chunked && !r.head.contains("connection: close"),
            "an answer that ends when the app closes is re-chunked, the client's connection kept: {}",
            r.head
        );
        let r = ask(&mut s, &mut buf, get("/no-content"), false);
        assert_eq!((r.status, r.body.len()), (204, 0));
        let r = ask(
            &mut s,
            &mut buf,
            "HEAD /length HTTP/1.1\r\nhost: raw.apps.localhost\r\n\r\n".into(),
            true,
        );
        assert!(r.head.contains("content-length: 5"), "{}", r.head);
        let r = ask(&mut s, &mut buf, get("/early-hints"), false);
        assert_eq!((r.status, &r.body[..]), (200, &b"after hints"[..]));
        let r = ask(&mut s, &mut buf, get("/big"), false);
        assert_eq!(r.body.len(), 20 << 20);
        assert!(r.body.chunks(256).all(|c| c.iter().enumerate().all(|(i, b)| *b as usize == i)));

        // Two requests in one write come back in order.
        let r = ask(&mut s, &mut buf, format!("{}{}", get("/chunked"), get("/length")), false);
        assert_eq!(r.body, b"hello world");
        assert_eq!(ask(&mut s, &mut buf, String::new(), false).body, b"hello");

        // An app that drops a kept connection while it is idle: the next
        // request goes on a new one, GET and POST.
        for i in 0..4 {
            let r = ask(&mut s, &mut buf, get("/drop"), false);
            assert_eq!(r.body, b"dropped after this");
            if i < 2 {
                // Too soon for the app's close to arrive, sometimes.
                let r = ask(&mut s, &mut buf, get("/length"), false);
                assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));
                continue;
            }
            // The app closes its end just after the answer: wait until it
            // has (bounded), so the POST meets a pooled connection the app
            // closed, not one it is about to close.
            crate::util::wait_until(
                "the app closed the connection it dropped",
                Duration::from_secs(30),
                || {
                    std::fs::read_to_string(&drops)
                        .ok()
                        .and_then(|n| n.parse::<usize>().ok())
                        >= Some(i + 1)
                },
            );
            let r = ask(
                &mut s,
                &mut buf,
                "POST /echo HTTP/1.1\r\nhost: raw.apps.localhost\r\ncontent-length: 3\r\n\r\nabc"
                    .into(),
                false,
            );
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            assert!(r.body.starts_with(b"POST 3 "), "{}", String::from_utf8_lossy(&r.body));
        }
        // 18 requests over one client connection; the app accepted one
        // connection for the first, one after the answer that ended by
        // closing, one after each of its four drops, and one after each of
        // the two POSTs (a request with a body is sent with `Connection:
        // close`: the app may not have read it): kept connections were
        // reused, not opened per request.
        let r = ask(&mut s, &mut buf, get("/connections"), false);
        let accepted: u32 = String::from_utf8(r.body).unwrap().parse().unwrap();
        assert_eq!(accepted, 8, "connections the app accepted for 18 requests");
    })
    .await
    .unwrap();
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bodies_unusual_requests_and_a_cut_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let (running, port) = raw_app(tmp.path()).await;

    tokio::task::spawn_blocking(move || {
        use sha2::Digest;
        let mut s = connect(port);
        let mut buf = Vec::new();
        // A body past what the router keeps for a retry is streamed.
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(
            format!(
                "PUT /echo HTTP/1.1\r\nhost: raw.apps.localhost\r\ncontent-length: {}\r\n\r\n",
                big.len()
            )
            .as_bytes(),
        )
        .unwrap();
        s.write_all(&big).unwrap();
        let r = read_reply(&mut s, &mut buf, false);
        let want = format!("PUT {} {:x}", big.len(), sha2::Sha256::digest(&big));
        assert!(
            String::from_utf8_lossy(&r.body).starts_with(&want),
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        // What hyper serves instead: a chunked request, `Expect`, HTTP/1.0.
        s.write_all(
            b"POST /echo HTTP/1.1\r\nhost: raw.apps.localhost\r\ntransfer-encoding: chunked\r\n\r\n\
              4\r\nwiki\r\n0\r\n\r\n",
        )
        .unwrap();
        let r = read_reply(&mut s, &mut buf, false);
        assert!(r.body.starts_with(b"POST 4 "), "{}", String::from_utf8_lossy(&r.body));
        let r = {
            s.write_all(get("/length").as_bytes()).unwrap();
            read_reply(&mut s, &mut buf, false)
        };
        assert_eq!(r.body, b"hello", "the connection hyper took over goes on");

        let mut s = connect(port);
        s.write_all(
            b"POST /echo HTTP/1.1\r\nhost: raw.apps.localhost\r\nexpect: 100-continue\r\n\
              content-length: 2\r\n\r\n",
        )
        .unwrap();
        let mut buf = Vec::new();
        let r = read_reply(&mut s, &mut buf, false);
        assert_eq!(r.status, 100, "{}", r.head);
        s.write_all(b"ok").unwrap();
        let r = read_reply(&mut s, &mut buf, false);
        assert!(r.body.starts_with(b"POST 2 "), "{}", String::from_utf8_lossy(&r.body));

        let mut s = connect(port);
        s.write_all(b"GET /length HTTP/1.0\r\nhost: raw.apps.localhost\r\n\r\n")
            .unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        let all = String::from_utf8(all).unwrap();
        assert!(all.ends_with("\r\n\r\nhello"), "{all}");

        // An answer cut short ends the client's connection rather than
        // leaving it waiting for bytes that never come.
        let mut s = connect(port);
        s.write_all(get("/cut").as_bytes()).unwrap();
        let started = std::time::Instant::now();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(String::from_utf8_lossy(&all).ends_with("only ten b"));

        // No route: the router's own answer, and the connection goes on.
        let mut s = connect(port);
        let mut buf = Vec::new();
        s.write_all(b"GET / HTTP/1.1\r\nhost: nowhere.apps.localhost\r\n\r\n")
            .unwrap();
        let r = read_reply(&mut s, &mut buf, false);
        assert_eq!(r.status, 404);
        assert!(String::from_utf8_lossy(&r.body).contains("no route for host"));
        s.write_all(get("/length").as_bytes()).unwrap();
        assert_eq!(read_reply(&mut s, &mut buf, false).body, b"hello");

        // A GET with a body the app leaves unread: its connection to the
        // app is not reused, where the body would be read as the start of
        // the next request.
        for _ in 0..3 {
            let r = ask(
                &mut s,
                &mut buf,
                "GET /ignores-body HTTP/1.1\r\nhost: raw.apps.localhost\r\ncontent-length: 5\r\n\r\nXXXXX"
                    .into(),
                false,
            );
            assert_eq!(r.body, b"ignored");
            let r = ask(&mut s, &mut buf, get("/length"), false);
            assert_eq!((r.status, &r.body[..]), (200, &b"hello"[..]));
        }
    })
    .await
    .unwrap();
    running.shutdown().await;
}
