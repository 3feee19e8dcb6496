//! The router's hand-off to hyper as `platforms/local.md` states it: a
//! request with "more than 64 headers or 16 KiB of head goes, with the
//! bytes read so far, to hyper for the rest of that connection". Both
//! paths reach the app; what tells them apart here is the answer's head:
//! the router's own path copies the app's header names as the app wrote
//! them (`Server:`), hyper writes them lowercase (`server:`).

use crate::deploy::Fixture;
use crate::util::{py_app, succeeded};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Which path served an answer, by how the app's `Server` header reads.
fn path_of(head: &str) -> &'static str {
    if head.contains("\r\nServer: ") {
        "router"
    } else if head.contains("\r\nserver: ") {
        "hyper"
    } else {
        panic!("no Server header from the app: {head}")
    }
}

/// An app that answers with how many `x-n-*` headers it got and the
/// length of its `x-pad` header, deployed on both colors.
fn counting_app() -> Fixture {
    let f = Fixture::new("");
    std::fs::write(
        f.root.path().join("app/app.py"),
        py_app(
            "",
            "200",
            r#""%d %d\n" % (sum(1 for k in self.headers.keys() if k.lower().startswith("x-n-")), len(self.headers.get("x-pad", "")))"#,
        ),
    )
    .unwrap();
    succeeded(f.deploy("v1"));
    f
}

/// A GET for the route with `extra` headers `x-n-0: v` ... and, when
/// `pad` is not 0, an `x-pad` header sized so that the whole head is
/// `pad` bytes.
fn request(extra: usize, pad: usize) -> Vec<u8> {
    let mut head = String::from("GET / HTTP/1.1\r\nhost: shop.apps.localhost\r\n");
    for i in 0..extra {
        head.push_str(&format!("x-n-{i}: v\r\n"));
    }
    if pad > 0 {
        let fixed = head.len() + "x-pad: \r\n\r\n".len();
        head.push_str(&format!("x-pad: {}\r\n", "a".repeat(pad - fixed)));
    }
    head.push_str("\r\n");
    if pad > 0 {
        assert_eq!(head.len(), pad);
    }
    head.into_bytes()
}

/// Sends `req` on `s` (kept alive) and reads the whole answer: its head
/// and its body.
fn exchange(s: &mut TcpStream, req: &[u8]) -> (String, String) {
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(req).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no Content-Length: {head}"));
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

fn connect(f: &Fixture) -> TcpStream {
    TcpStream::connect(("127.0.0.1", f.router_port)).unwrap()
}

/// 64 headers (`host` and 63 more) are the router's own; 65 go to hyper,
/// which serves that connection from then on, and the app gets every
/// header either way. A new connection starts on the router's path again.
#[test]
fn more_than_64_headers_go_to_hyper_for_the_rest_of_the_connection() {
    let f = counting_app();
    let mut s = connect(&f);
    let (head, body) = exchange(&mut s, &request(63, 0));
    assert_eq!(
        (path_of(&head), body.as_str()),
        ("router", "63 0\n"),
        "{head}"
    );
    let (head, body) = exchange(&mut s, &request(0, 0));
    assert_eq!(
        (path_of(&head), body.as_str()),
        ("router", "0 0\n"),
        "{head}"
    );

    let mut s = connect(&f);
    let (head, body) = exchange(&mut s, &request(64, 0));
    assert_eq!(
        (path_of(&head), body.as_str()),
        ("hyper", "64 0\n"),
        "{head}"
    );
    // The rest of that connection, an ordinary request included.
    let (head, body) = exchange(&mut s, &request(0, 0));
    assert_eq!(
        (path_of(&head), body.as_str()),
        ("hyper", "0 0\n"),
        "{head}"
    );

    let (head, _) = exchange(&mut connect(&f), &request(0, 0));
    assert_eq!(path_of(&head), "router", "{head}");
}

/// A head of 16,384 bytes (16 KiB) is the router's own; one byte more goes
/// to hyper, and the app gets the header whole.
#[test]
fn a_head_over_16_kib_goes_to_hyper() {
    let f = counting_app();
    // What the app gets of `x-pad` for a head of `size` bytes.
    let pad = |size: usize| size - request(0, 0).len() - "x-pad: \r\n".len();
    let mut s = connect(&f);
    let (head, body) = exchange(&mut s, &request(0, 16 << 10));
    assert_eq!(path_of(&head), "router", "{head}");
    assert_eq!(body, format!("0 {}\n", pad(16 << 10)));

    let mut s = connect(&f);
    let (head, body) = exchange(&mut s, &request(0, (16 << 10) + 1));
    assert_eq!(path_of(&head), "hyper", "{head}");
    assert_eq!(body, format!("0 {}\n", pad((16 << 10) + 1)));
    let (head, _) = exchange(&mut s, &request(0, 0));
    assert_eq!(
        path_of(&head),
        "hyper",
        "the rest of the connection: {head}"
    );
}
