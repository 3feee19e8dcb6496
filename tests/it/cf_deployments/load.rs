//! Load through the router for the length of a deployment: fast GETs,
//! GETs the app holds 250 ms (cut if an instance stops with them in
//! flight: the router tries them again elsewhere but counts a 5xx), and
//! POSTs with a body the app also holds 250 ms (which the router never
//! sends twice, so an instance stopped under one fails it). Counts which
//! droplet answered.

use super::Shares;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Load {
    stop: Arc<AtomicBool>,
    tally: Arc<Mutex<Tally>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Default, Clone, Debug)]
pub struct Tally {
    pub ok: usize,
    pub failed: Vec<String>,
    pub shares: Shares,
}

/// Enough slow requests that every instance has some in flight at most
/// moments: a stop that does not drain it first cuts one.
const KINDS: [(&str, &str); 6] = [
    ("GET", "/"),
    ("GET", "/slow"),
    ("GET", "/slow"),
    ("GET", "/slow"),
    ("POST", "/orders"),
    ("POST", "/orders"),
];
const BODY: &str = "{\"item\": 42, \"note\": \"a body to forward\"}";

impl Load {
    /// Starts the load on route `host` at the router's `port`.
    pub fn start(port: u16, host: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let tasks = KINDS
            .into_iter()
            .map(|(method, path)| {
                let (stop, tally) = (stop.clone(), tally.clone());
                let host = format!("{host}.apps.localhost");
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    let url = format!("http://127.0.0.1:{port}{path}");
                    while !stop.load(Ordering::SeqCst) {
                        let mut req = http
                            .request(method.parse().unwrap(), &url)
                            .header("host", &host)
                            .timeout(Duration::from_secs(10));
                        if method == "POST" {
                            req = req.body(BODY);
                        }
                        let outcome = match req.send().await {
                            Ok(r) if r.status() == 200 => Ok(r.text().await.unwrap_or_default()),
                            Ok(r) => Err(format!("{method} {path}: HTTP {}", r.status())),
                            Err(e) => Err(format!("{method} {path}: {e}")),
                        };
                        {
                            let mut t = tally.lock().unwrap();
                            match outcome {
                                Ok(text)
                                    if method == "POST"
                                        && !text.contains(&format!("got {}", BODY.len())) =>
                                {
                                    t.failed.push(format!("POST body lost: {text}"))
                                }
                                Ok(text) => {
                                    t.ok += 1;
                                    let version = text.split_whitespace().next().unwrap_or("?");
                                    *t.shares.entry(version.to_string()).or_default() += 1;
                                }
                                Err(e) => t.failed.push(e),
                            }
                        }
                        // Not flat out: the fast GETs alone would take a
                        // core from every other test running beside this.
                        tokio::time::sleep(Duration::from_millis(3)).await;
                    }
                })
            })
            .collect();
        Load { stop, tally, tasks }
    }

    /// How many requests were answered or failed since the last `take`.
    pub fn answered(&self) -> usize {
        let t = self.tally.lock().unwrap();
        t.ok + t.failed.len()
    }

    /// Waits until `n` more requests were answered or failed (bounded far
    /// above the usual few milliseconds): the load ran on after what came
    /// before.
    pub async fn more(&self, n: usize) {
        let want = self.answered() + n;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while self.answered() < want {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the load got {} of {n} more answers",
                n + self.answered() - want
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What was answered during a window of at least two seconds and at
    /// least 200 answers (bounded): a share of fewer means little, and a
    /// loaded machine answers fewer in two seconds than an idle one's
    /// thousands.
    pub async fn window(&self) -> Tally {
        let started = tokio::time::Instant::now();
        while started.elapsed() < Duration::from_secs(2) || self.answered() < 200 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "only {} answers in a minute",
                self.answered()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.take()
    }

    /// What was answered so far, and starts counting afresh.
    pub fn take(&self) -> Tally {
        std::mem::take(&mut *self.tally.lock().unwrap())
    }

    /// Stops the load; everything answered since the last `take`.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::SeqCst);
        let tally = self.tally.clone();
        for t in self.tasks {
            t.await.unwrap();
        }
        std::mem::take(&mut *tally.lock().unwrap())
    }
}

/// Fails the test on any failed request, naming the first few.
pub fn assert_none_failed(what: &str, t: &Tally) {
    assert!(
        t.failed.is_empty(),
        "{what}: {} of {} requests failed: {:?}",
        t.failed.len(),
        t.ok + t.failed.len(),
        &t.failed[..t.failed.len().min(5)]
    );
    assert!(t.ok > 50, "{what}: only {} requests answered", t.ok);
}
