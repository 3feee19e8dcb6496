//! The local router's bounds as `security.md` states them: the request
//! head 5 s, idle keep-alive (`BLUEGREEN_ROUTER_KEEP_ALIVE`), the app's
//! first byte (`BLUEGREEN_ROUTER_FIRST_BYTE_TIMEOUT`, then 504), and the
//! connection cap of 4,096 at which a new connection closes the one
//! waiting longest on its client. The defaults too long to wait for in a
//! test are pinned in `router/limits.rs`.

use crate::deploy::Fixture;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long until the router closes `s` (EOF or reset), reading and
/// discarding what it sends; `None` when it is still open after `limit`.
fn closed_after(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

/// One request on `s` (kept alive), its whole answer read; returns the
/// status line.
fn ask(s: &mut TcpStream) -> String {
    s.write_all(b"GET / HTTP/1.1\r\nHost: nothing-here.apps.localhost\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "the router closed: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().unwrap())
        })
        .expect("an answer with a Content-Length");
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).unwrap();
    head.lines().next().unwrap().to_string()
}

/// Whether the router still holds `s` open (nothing to read, no EOF).
fn open(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let open = matches!((&*s).read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).unwrap();
    open
}

#[test]
fn a_request_head_that_does_not_arrive_within_5_s_is_closed() {
    let f = Fixture::new("");
    let mut s = TcpStream::connect(("127.0.0.1", f.router_port)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: shop.apps.localhost\r\n")
        .unwrap();
    let took = closed_after(&mut s, Duration::from_secs(15)).expect("closed within 15 s");
    assert!(
        took >= Duration::from_millis(4800) && took <= Duration::from_millis(6500),
        "closed after {took:?}"
    );
}

/// `BLUEGREEN_ROUTER_KEEP_ALIVE` bounds an idle kept-alive connection.
#[test]
fn bluegreen_router_keep_alive_bounds_an_idle_connection() {
    let mut f = Fixture::new("");
    f.restart_platform_with(&[("BLUEGREEN_ROUTER_KEEP_ALIVE", "1s")]);
    let mut s = TcpStream::connect(("127.0.0.1", f.router_port)).unwrap();
    assert!(ask(&mut s).starts_with("HTTP/1.1 404"));
    let took = closed_after(&mut s, Duration::from_secs(10)).expect("closed within 10 s");
    assert!(
        took >= Duration::from_millis(800) && took <= Duration::from_millis(2500),
        "closed after {took:?}"
    );
}

/// 4,096 connections are served at once; the 4,097th closes the one
/// waiting longest on its client (and only that one), and is served.
#[test]
fn at_4096_connections_a_new_one_closes_the_one_waiting_longest() {
    let mut f = Fixture::new("");
    // Stalled heads must outlive the test's setup (the default is 5 s).
    f.restart_platform_with(&[("BLUEGREEN_ROUTER_HEADER_TIMEOUT", "120s")]);
    let connect = || TcpStream::connect(("127.0.0.1", f.router_port)).unwrap();
    // The oldest: an idle keep-alive, waiting on its client since its
    // answer. The router dates waits to the millisecond, so the others
    // start a little later (an age gap, not a wait for anything).
    let mut oldest = connect();
    assert!(ask(&mut oldest).starts_with("HTTP/1.1 404"));
    std::thread::sleep(Duration::from_millis(50));
    let stalled: Vec<TcpStream> = (0..4094).map(|_| connect()).collect();
    // The 4,096th is served: by then the router has accepted every
    // connection before it (one listener, accepted in order).
    let mut last = connect();
    assert!(ask(&mut last).starts_with("HTTP/1.1 404"));
    assert!(open(&oldest), "closed at 4,096 connections");
    // One more: served, and the oldest goes.
    let mut extra = connect();
    assert!(ask(&mut extra).starts_with("HTTP/1.1 404"));
    assert!(
        closed_after(&mut oldest, Duration::from_secs(10)).is_some(),
        "the connection waiting longest is still open at 4,097"
    );
    let closed = stalled.iter().filter(|s| !open(s)).count();
    assert_eq!(closed, 0, "stalled heads closed besides the oldest");
    assert!(open(&last), "the served keep-alive stays");
}

/// "each read of a body 15 s (`_BODY_TIMEOUT`, then 408)".
#[test]
fn a_request_body_that_stops_arriving_gets_408_after_15_s() {
    let f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    let mut s = TcpStream::connect(("127.0.0.1", f.router_port)).unwrap();
    s.write_all(b"POST / HTTP/1.1\r\nHost: shop.apps.localhost\r\nContent-Length: 10\r\n\r\nab")
        .unwrap();
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut answer = [0u8; 12];
    s.read_exact(&mut answer).unwrap();
    let took = started.elapsed();
    assert_eq!(
        &answer,
        b"HTTP/1.1 408",
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert!(
        took >= Duration::from_millis(14_800) && took <= Duration::from_millis(17_000),
        "answered after {took:?}"
    );
}

/// `BLUEGREEN_ROUTER_FIRST_BYTE_TIMEOUT`: an app that has not begun its
/// answer by then gets its client a 504, while the answer it would have
/// sent later, and one within the bound, still arrive under the default.
#[test]
fn an_answer_not_begun_within_the_first_byte_timeout_is_a_504() {
    let mut f = Fixture::new("");
    crate::util::succeeded(f.deploy("v1"));
    // The default (60 s) waits for an app taking 2 s.
    let t = Instant::now();
    let (status, body) = crate::deploy::get(f.router_port, "shop", "/slow?ms=2000").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );

    f.restart_platform_with(&[("BLUEGREEN_ROUTER_FIRST_BYTE_TIMEOUT", "1s")]);
    crate::util::succeeded(f.deploy("v2"));
    let t = Instant::now();
    let (status, body) = crate::deploy::get(f.router_port, "shop", "/slow?ms=6000").unwrap();
    let took = t.elapsed();
    assert_eq!(status, 504, "{body}");
    // Cut at 1 s, long before the app's 6 s answer.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "504 after {took:?}"
    );
    let (status, body) = crate::deploy::get(f.router_port, "shop", "/slow?ms=100").unwrap();
    assert_eq!((status, body.contains("release v2")), (200, true), "{body}");
}
