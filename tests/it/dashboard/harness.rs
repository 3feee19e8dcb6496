//! The processes and plain HTTP the dashboard's tests use: a `bluegreen`
//! child (the dashboard, a deploy) whose output is read as it comes and
//! which is killed if the test ends first, and requests to the dashboard
//! as a program other than a browser would send them.

use crate::deploy::Fixture;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child `bluegreen` killed on drop, its stdout lines and stderr collected.
pub struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Proc {
    pub fn start(f: &Fixture, args: &[&str]) -> Proc {
        let mut child = f.spawn(args);
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = Some(std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        }));
        Proc {
            child,
            lines,
            stderr,
        }
    }

    fn line(&self, limit: Duration) -> String {
        self.lines.recv_timeout(limit).expect("a line of output")
    }

    /// Waits (bounded) for the exit; its status, stdout's lines and stderr.
    pub fn finish(mut self, limit: Duration) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not end within {limit:?}");
            std::thread::sleep(Duration::from_millis(50));
        };
        let err = self.stderr.take().map(|t| t.join().unwrap()).unwrap();
        (status, self.lines.try_iter().collect(), err)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `bluegreen dashboard --port 0`, and the URL it prints.
pub fn dashboard(f: &Fixture) -> (Proc, String) {
    let p = Proc::start(f, &["dashboard", "--port", "0"]);
    let first = p.line(Duration::from_secs(30));
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"))
        .to_string();
    (p, url)
}

/// Plain HTTP to the dashboard, as another program (not a browser) would.
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Http {
        Http {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    pub fn text(&self, url: &str) -> (u16, String) {
        self.rt.block_on(async {
            let r = self.client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }

    pub fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (u16, Value) {
        self.rt.block_on(async {
            let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let mut req = self
                .client
                .request(method, url)
                .timeout(Duration::from_secs(60));
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        })
    }
}
