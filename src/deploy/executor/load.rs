//! `analysis.load`: a bounded synthetic request mix sent to the judged
//! color's own URL during a window, for apps with too little traffic to
//! judge (as Flagger's load tester does). Its answers are counted apart
//! from the router's and added to the color's sample; the output says so.
//! Never sent where its requests would also be counted elsewhere
//! (log-cache sees every request through the platform's router).

use crate::config::Health;
use crate::platform::traffic::{Sample, Snapshot, Traffic};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Requests in flight at once, at most: a hanging app holds this many, not
/// one per tick of the whole window.
const MAX_IN_FLIGHT: usize = 64;

/// A running load; stops at its deadline or when dropped.
pub struct Load {
    traffic: Arc<Traffic>,
    task: tokio::task::JoinHandle<()>,
    what: String,
}

impl Load {
    pub fn start(url: String, load: &crate::config::Load, health: &Health, until: Instant) -> Load {
        let traffic = Arc::new(Traffic::default());
        let paths = if load.paths.is_empty() {
            vec![health.path.clone()]
        } else {
            load.paths.clone()
        };
        let what = format!(
            "synthetic load: {} {} at {} requests/s to {url} (analysis.load), counted with the \
             router's",
            load.method,
            paths.join(", "),
            load.rate
        );
        let method = http::Method::from_bytes(load.method.as_bytes()).unwrap_or(http::Method::GET);
        let client = crate::deploy::health::client(health.request_timeout);
        let every = Duration::from_secs_f64(1.0 / f64::from(load.rate.max(1)));
        let counted = traffic.clone();
        let task = tokio::spawn(async move {
            let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
            let mut tick = tokio::time::interval(every);
            let mut n = 0usize;
            while Instant::now() < until {
                tick.tick().await;
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    continue;
                };
                let request =
                    client.request(method.clone(), format!("{url}{}", paths[n % paths.len()]));
                n += 1;
                let traffic = counted.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let started = Instant::now();
                    let awaiting = traffic.awaiting();
                    // No answer is what a user would have seen as a 502.
                    let status = request.send().await.map_or(502, |r| r.status().as_u16());
                    drop(awaiting);
                    traffic.record(status, started.elapsed());
                });
            }
        });
        Load {
            traffic,
            task,
            what,
        }
    }

    pub fn describe(&self) -> &str {
        &self.what
    }

    /// What the load saw so far, requests still awaiting an answer at
    /// their age.
    pub fn sample(&self) -> Sample {
        let now = self.traffic.snapshot();
        now.sample(&Snapshot::default())
            .with_pending(&now.pending_ages())
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.task.abort();
    }
}
