//! Canary steps and traffic analysis. A step shifts a share of the route to
//! the candidate (weights on the local router; instance counts on Cloud
//! Foundry, which spreads requests evenly over instances). An analysis
//! watches both colors over one window, judges the candidate against the
//! other color (`deploy::analysis`), then asks `analyze` plugins; a failed
//! window stops the deploy and the usual undo rolls the candidate back.
//!
//! Where the numbers come from: the local router's counters; on Cloud
//! Foundry the router's timer of each request from log-cache
//! (`platform::log_cache`), or, where the API links none or it cannot be
//! read, the color's own URL probed during the window (health probes only).
//! The output says which.

use super::{Executor, Stop};
use crate::config::{Analysis, PlatformKind};
use crate::deploy::analysis::judge;
use crate::deploy::plan::{Instances, Step};
use crate::platform::log_cache::{Follow, LogCache, Unavailable};
use crate::platform::traffic::{Snapshot, Traffic};
use crate::plugin::Hook;
use crate::plugin::context::{AnalysisWindow, Color};
use std::time::{Duration, Instant};

/// How often a window looks at the counters (and probes, without them).
const TICK: Duration = Duration::from_millis(250);

/// Where a window's numbers come from.
enum Meter {
    Router,
    /// One probe of each color's own URL per tick, counted here.
    Probes(reqwest::Client, [Traffic; 2]),
    /// Each color's requests from log-cache; true once a failed read was
    /// reported.
    LogCache(LogCache, Box<[Follow; 2]>, bool),
}

impl Executor {
    pub(super) async fn weigh(
        &mut self,
        color: Color,
        percent: u8,
        instances: Option<Instances>,
    ) -> Result<(), Stop> {
        let client = self.site.client.clone();
        let route = self.site.route.guid.clone();
        let me = self.site.app(color).guid.clone();
        let other = self.site.app(color.other()).guid.clone();
        let other_mapped = self.site.mapped(color.other()).await?;
        if !other_mapped {
            self.map(color).await?;
            self.report.say(&format!(
                "  {} is not on the route: {color} takes every request",
                color.other()
            ));
            return Ok(());
        }
        if self.site.kind == PlatformKind::Local {
            let (mine, theirs) = (u32::from(percent), 100 - u32::from(percent));
            client
                .set_destinations(&route, &[(&me, Some(mine)), (&other, Some(theirs))])
                .await?;
            return Ok(());
        }
        // Cloud Foundry: as many candidate instances as the share needs,
        // then back to its own count at 100%, when the other color leaves.
        let process = client.web_process(&me).await?;
        let before = *self.canary_instances.get_or_insert(process.instances);
        match instances {
            Some(i) => {
                client.scale_process(&process.guid, i.candidate).await?;
                self.map(color).await?;
            }
            None => {
                client.scale_process(&process.guid, before).await?;
                client.unmap_route(&route, &other).await?;
            }
        }
        Ok(())
    }

    pub(super) async fn analyze(&mut self, step: &Step) -> Result<(), Stop> {
        let Step::Analyze {
            color,
            percent,
            up_to,
            min_requests,
            max_error_rate,
            max_p99_ratio,
            ..
        } = step
        else {
            unreachable!("called for analyze steps")
        };
        let color = *color;
        // The step's own limits (what `plan` showed, and what a recovered
        // deploy journaled), the rest from the file.
        let limits = Analysis {
            duration: *up_to,
            min_requests: *min_requests,
            max_error_rate: *max_error_rate,
            max_p99_ratio: *max_p99_ratio,
            ..self.file.analysis().unwrap_or_default()
        };
        let mut meter = match self.site.kind {
            PlatformKind::Local => Meter::Router,
            PlatformKind::Cf => match self.log_cache().await {
                Ok(meter) => meter,
                Err(why) => {
                    self.report.say(&format!(
                        "  Cloud Foundry: no per-request metrics from log-cache ({why}); \
                         analyzing with health probes of each color's own URL only"
                    ));
                    let http = crate::deploy::health::client(self.file.health.request_timeout);
                    Meter::Probes(http, [Traffic::default(), Traffic::default()])
                }
            },
        };
        let start = Instant::now();
        let hard_stop = start + limits.max_duration;
        let before = [
            self.sample(&mut meter, color).await?,
            self.sample(&mut meter, color.other()).await?,
        ];
        let mut until = start + limits.duration;
        self.window_attempt = 1;
        loop {
            loop {
                tokio::time::sleep(TICK).await;
                let now = self.sample(&mut meter, color).await?;
                let seen = now.requests().saturating_sub(before[0].requests());
                if Instant::now() >= until || limits.min_requests.is_some_and(|n| seen >= n) {
                    break;
                }
                if matches!(meter, Meter::Probes(..)) {
                    self.sample(&mut meter, color.other()).await?;
                }
            }
            let candidate = self.sample(&mut meter, color).await?.since(&before[0]);
            let baseline = self
                .sample(&mut meter, color.other())
                .await?
                .since(&before[1]);
            let window = AnalysisWindow {
                duration_ms: start.elapsed().as_millis() as u64,
                weight_percent: percent.unwrap_or(50),
                source: match meter {
                    Meter::Router => "router".into(),
                    Meter::Probes(..) => "probes".into(),
                    Meter::LogCache(..) => "log-cache".into(),
                },
                candidate,
                baseline: (baseline.requests > 0).then_some(baseline),
            };
            let verdict = judge(&window, &limits, color);
            for line in &verdict.lines {
                self.report.say(&format!("  {line}"));
            }
            self.report.event(serde_json::json!({
                "event": "analysis", "color": color, "percent": percent,
                "attempt": self.window_attempt, "window": window,
                "failed": verdict.fail, "inconclusive": verdict.inconclusive,
            }));
            if let Some(why) = verdict.fail {
                return Err(Stop::Failed(anyhow::anyhow!("traffic analysis: {why}")));
            }
            if let Some(note) = &verdict.inconclusive {
                self.report.say(&format!("  warning: {note}"));
            }
            self.window = Some(window);
            self.watch_longer = None;
            let judged = self.hooks(Hook::Analyze, Some(color)).await;
            self.window = None;
            judged?;
            let Some(wait) = self.watch_longer.take() else {
                return Ok(());
            };
            if Instant::now() + wait > hard_stop {
                return Err(Stop::Blocked(format!(
                    "an analyze plugin still asked to watch {color} longer after {} \
                     (analysis.max_duration): not judged, so not kept",
                    humantime::format_duration(Duration::from_secs(start.elapsed().as_secs()))
                )));
            }
            self.report.say(&format!(
                "  an analyze plugin asked to watch {} more",
                humantime::format_duration(wait)
            ));
            until = Instant::now() + wait;
            self.window_attempt += 1;
        }
    }

    /// Both colors followed on the log-cache the API links.
    async fn log_cache(&self) -> Result<Meter, Unavailable> {
        let lc = LogCache::discover(&self.site.client).await?;
        let follow = [
            lc.follow(&self.site.app(Color::Blue).guid).await?,
            lc.follow(&self.site.app(Color::Green).guid).await?,
        ];
        self.report.say(&format!(
            "  Cloud Foundry: each color's requests as the router timed them, from log-cache \
             ({})",
            lc.url()
        ));
        Ok(Meter::LogCache(lc, Box::new(follow), false))
    }

    /// `color`'s counters now (probing it once first, without a router).
    async fn sample(&self, meter: &mut Meter, color: Color) -> Result<Snapshot, Stop> {
        match meter {
            Meter::Router => Ok(self.site.client.traffic(&self.site.app(color).guid).await?),
            Meter::LogCache(lc, follow, reported) => {
                let f = &mut follow[usize::from(color != Color::Blue)];
                match lc.read(f).await {
                    Ok(snapshot) => Ok(snapshot),
                    // log-cache keeps what it has: a later read catches up.
                    Err(e) => {
                        if !std::mem::replace(reported, true) {
                            self.report.say(&format!(
                                "  warning: reading log-cache failed ({e}); the next read \
                                 catches up"
                            ));
                        }
                        Ok(f.snapshot())
                    }
                }
            }
            Meter::Probes(http, t) => {
                let i = usize::from(color != Color::Blue);
                let url = self
                    .site
                    .candidate_url(color, Instant::now() + TICK)
                    .await
                    .ok();
                if let Some(url) = url {
                    let health = &self.file.health;
                    let t0 = Instant::now();
                    let status = match http.get(format!("{url}{}", health.path)).send().await {
                        Ok(resp) => resp.status().as_u16(),
                        // No answer: what a router would have told a user.
                        Err(_) => 502,
                    };
                    t[i].record(status, t0.elapsed());
                }
                Ok(t[i].snapshot())
            }
        }
    }
}
