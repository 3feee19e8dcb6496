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
use crate::config::{Analysis, Inconclusive, PlatformKind};
use crate::deploy::analysis::{Evidence, Verdict, judge};
use crate::deploy::plan::{Instances, Step};
use crate::platform::log_cache::{Follow, LogCache, Unavailable};
use crate::platform::traffic::{Sample, Snapshot, Traffic};
use crate::plugin::Hook;
use crate::plugin::context::{AnalysisWindow, Color};
use std::time::{Duration, Instant};

/// How often a window looks at the counters (and probes, without them).
const TICK: Duration = Duration::from_millis(250);
/// The pre-deploy reference ends once the route served this many requests
/// (or `analysis.min_requests`, if more), else at the window's time.
const BASELINE_REQUESTS: u64 = 400;
/// Probes of each color for the reference when the route has no traffic.
const BASELINE_PROBES: u32 = 12;
/// Latency is first tested at this many requests, then at each doubling.
const FIRST_LATENCY_LOOK: u64 = 32;

fn meter_name(meter: &Meter) -> &'static str {
    match meter {
        Meter::Router => "router",
        Meter::Probes(..) => "probes",
        Meter::LogCache(..) => "log-cache",
    }
}

/// Where a window's numbers come from.
enum Meter {
    Router,
    /// One probe of each color's own URL per tick, counted here.
    Probes(reqwest::Client, Box<[Traffic; 2]>),
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
            last,
            ..
        } = step
        else {
            unreachable!("called for analyze steps")
        };
        let color = *color;
        let limits = self.step_limits(*up_to, *min_requests, *max_error_rate, *max_p99_ratio);
        let mut meter = self.meter().await;
        let start = Instant::now();
        let hard_stop = start + limits.max_duration;
        let mut until = start + limits.duration;
        self.window_attempt = 1;
        loop {
            let window = self
                .window(&mut meter, color, *percent, &limits, until, *last)
                .await?;
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
                    crate::units::human_duration(Duration::from_secs(start.elapsed().as_secs()))
                )));
            }
            self.report.say(&format!(
                "  an analyze plugin asked to watch {} more",
                crate::units::human_duration(wait)
            ));
            until = Instant::now() + wait;
            self.window_attempt += 1;
        }
    }

    /// A window's limits: the step's own (what `plan` showed, and what a
    /// recovered deploy journaled), the rest from the file.
    pub(super) fn step_limits(
        &self,
        duration: Duration,
        min_requests: Option<u64>,
        max_error_rate: f64,
        max_p99_ratio: f64,
    ) -> Analysis {
        Analysis {
            duration,
            min_requests,
            max_error_rate,
            max_p99_ratio,
            ..self.file.analysis().unwrap_or_default()
        }
    }

    /// The reference: the route's live traffic before anything moves, both
    /// colors as one (they serve one release). With no traffic on the
    /// router, each color's own URL probed for a few ticks instead.
    pub(super) async fn baseline(&mut self, up_to: Duration) -> Result<(), Stop> {
        let limits = self.file.analysis().unwrap_or_default();
        // Enough to compare to, or the window's time.
        let enough = limits.min_requests.unwrap_or(0).max(BASELINE_REQUESTS);
        let mut meter = self.meter().await;
        let colors = [Color::Blue, Color::Green];
        let mut first = Vec::new();
        for c in colors {
            first.push(self.sample(&mut meter, c).await?);
        }
        let until = Instant::now() + up_to;
        let mut route = Sample::default();
        while Instant::now() < until {
            tokio::time::sleep(TICK).await;
            route = Sample::default();
            for (i, c) in colors.into_iter().enumerate() {
                let now = self.sample(&mut meter, c).await?;
                route = route.plus(&now.sample(&first[i]));
            }
            if route.metrics.requests >= enough {
                break;
            }
        }
        if route.metrics.requests == 0 && matches!(meter, Meter::Router) {
            self.report.say(
                "  no live traffic on the route: probing each color's own URL for the reference",
            );
            let http = crate::deploy::health::client(self.file.health.request_timeout);
            let mut probes =
                Meter::Probes(http, Box::new([Traffic::default(), Traffic::default()]));
            for _ in 0..BASELINE_PROBES {
                for c in colors {
                    self.sample(&mut probes, c).await?;
                }
                tokio::time::sleep(TICK).await;
            }
            for c in colors {
                let probed = self.sample(&mut probes, c).await?;
                route = route.plus(&probed.sample(&Snapshot::default()));
            }
        }
        let source = meter_name(&meter);
        self.report.say(&format!(
            "  {} ({source})",
            crate::deploy::analysis::describe_route(&route.metrics)
        ));
        self.report.event(serde_json::json!({
            "event": "baseline", "source": source, "route": route.metrics,
        }));
        self.pre_deploy = Some(route);
        Ok(())
    }

    /// After the migration: `color`, still on the old release and alone on
    /// the route, against the route before the deploy. A failure names the
    /// migration, since nothing else changed for that color.
    pub(super) async fn watch(&mut self, color: Color, up_to: Duration) -> Result<(), Stop> {
        let limits = Analysis {
            duration: up_to,
            ..self.file.analysis().unwrap_or_default()
        };
        let mut meter = self.meter().await;
        let until = Instant::now() + up_to;
        self.watching = true;
        let watched = self
            .window(&mut meter, color, None, &limits, until, false)
            .await;
        self.watching = false;
        match watched {
            Ok(_) => Ok(()),
            Err(Stop::Failed(why)) => {
                let command = self
                    .file
                    .migrate
                    .as_ref()
                    .map(|m| m.command.clone())
                    .unwrap_or_default();
                let names: Vec<_> = self.pending.iter().map(|m| m.path.clone()).collect();
                Err(Stop::Failed(anyhow::anyhow!(
                    "the migration (`{command}`: {}) broke {color}, which still serves the old \
                     release: {why}. The schema change is not undone by a rollback: deploy a \
                     release that works with it, or restore the database",
                    if names.is_empty() {
                        "no pending files listed".to_string()
                    } else {
                        names.join(", ")
                    }
                )))
            }
            Err(other) => Err(other),
        }
    }

    /// Where this deploy's windows read their numbers.
    async fn meter(&mut self) -> Meter {
        match self.site.kind {
            PlatformKind::Local => Meter::Router,
            PlatformKind::Cf => match self.log_cache().await {
                Ok(meter) => meter,
                Err(why) => {
                    self.report.say(&format!(
                        "  Cloud Foundry: no per-request metrics from log-cache ({}); \
                         analyzing with health probes of each color's own URL only",
                        crate::output::printable(&why.to_string())
                    ));
                    let http = crate::deploy::health::client(self.file.health.request_timeout);
                    Meter::Probes(http, Box::new([Traffic::default(), Traffic::default()]))
                }
            },
        }
    }

    /// One window on `color`, judged at every tick against the route before
    /// the deploy and the other color, until the judge decides or `until`
    /// passes. A failure (or a window that could not decide, where that
    /// fails) stops the deploy; else the window, for `analyze` plugins.
    async fn window(
        &mut self,
        meter: &mut Meter,
        color: Color,
        percent: Option<u8>,
        limits: &Analysis,
        until: Instant,
        last_step: bool,
    ) -> Result<AnalysisWindow, Stop> {
        let start = Instant::now();
        let before = [
            self.sample(meter, color).await?,
            self.sample(meter, color.other()).await?,
        ];
        if self.pre_deploy.is_none() {
            self.report.say(
                "  no pre-deploy reference (a recovered deploy): judged against the other \
                 color and the ceilings only",
            );
        }
        let load = match &limits.load {
            Some(load) if !matches!(meter, Meter::LogCache(..)) => {
                let url = self.site.candidate_url(color, until).await.ok();
                url.map(|url| super::load::Load::start(url, load, &self.file.health, until))
            }
            _ => None,
        };
        if let Some(l) = &load {
            self.report.say(&format!("  {}", l.describe()));
        }
        let mut next_look = FIRST_LATENCY_LOOK;
        let (judgement, window) = loop {
            tokio::time::sleep(TICK).await;
            if matches!(meter, Meter::Probes(..)) {
                self.sample(meter, color.other()).await?;
            }
            let now = self.sample(meter, color).await?;
            let mut judged = now.sample(&before[0]).with_pending(&now.pending_ages());
            if let Some(l) = &load {
                judged = judged.plus(&l.sample());
            }
            let theirs = self.sample(meter, color.other()).await?;
            let other = theirs
                .sample(&before[1])
                .with_pending(&theirs.pending_ages());
            let closing = Instant::now() >= until;
            // Looks count latencies, hung requests included.
            let observed: u64 = judged.latency.iter().sum();
            let latency_look = closing || observed >= next_look;
            if latency_look {
                next_look = next_look.saturating_mul(2);
            }
            let (judged_name, other_name) = (color.to_string(), color.other().to_string());
            let evidence = Evidence {
                judged_name: &judged_name,
                other_name: &other_name,
                judged: &judged,
                other: (other.metrics.requests > 0).then_some(&other),
                before: self.pre_deploy.as_ref(),
                elapsed: start.elapsed(),
                closing,
                latency_look,
                last_step,
            };
            let judgement = judge(&evidence, limits);
            crate::deploy::window_now::write(
                self.journal.dir(),
                &serde_json::json!({
                    "color": color, "percent": percent, "attempt": self.window_attempt,
                    "watch": self.watching,
                    "elapsed_ms": start.elapsed().as_millis() as u64,
                    "left_ms": until.saturating_duration_since(Instant::now()).as_millis() as u64,
                    "lines": judgement.lines, "deciding": judgement.verdict != Verdict::Continue,
                }),
            );
            if judgement.verdict != Verdict::Continue {
                let window = AnalysisWindow {
                    duration_ms: start.elapsed().as_millis() as u64,
                    weight_percent: percent.unwrap_or(50),
                    source: meter_name(meter).into(),
                    candidate: judged.metrics.clone(),
                    baseline: (other.metrics.requests > 0).then(|| other.metrics.clone()),
                };
                break (judgement, window);
            }
        };
        // Decided: the view of a window under way goes (the verdict is journaled).
        crate::deploy::window_now::clear(self.journal.dir());
        for line in &judgement.lines {
            self.report.say(&format!("  {line}"));
        }
        let (failed, inconclusive, passed) = verdict_fields(&judgement.verdict);
        // After a migration the old color is watched, not the release.
        let event = if self.watching { "watch" } else { "analysis" };
        self.report.event(serde_json::json!({
            "event": event, "color": color, "percent": percent,
            "attempt": self.window_attempt, "window": window,
            "failed": failed, "inconclusive": inconclusive, "passed": passed,
            "tests": judgement.tests, "method": crate::deploy::analysis::method(limits),
            "load": load.as_ref().map(|l| l.describe()),
        }));
        self.journal_verdict(color, percent, &judgement.verdict, &window)?;
        settle(&self.report, judgement.verdict)?;
        Ok(window)
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
                                "  warning: reading log-cache failed ({}); the next read \
                                 catches up",
                                crate::output::printable(&e.to_string())
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

/// A verdict as the `analysis` event's `failed`, `inconclusive` and
/// `passed` fields.
pub(super) fn verdict_fields(v: &Verdict) -> (Option<String>, Option<String>, Option<String>) {
    match v {
        Verdict::Fail(why) => (Some(why.clone()), None, None),
        Verdict::Inconclusive(why, _) => (None, Some(why.clone()), None),
        Verdict::Pass(why) => (None, None, Some(why.clone())),
        Verdict::Continue => (None, None, None),
    }
}

impl Executor {
    /// Journals a window's verdict: `bluegreen dashboard` reads it there
    /// (the `--json` events reach the deploy's own caller only).
    pub(super) fn journal_verdict(
        &mut self,
        color: Color,
        percent: Option<u8>,
        verdict: &Verdict,
        window: &AnalysisWindow,
    ) -> anyhow::Result<()> {
        let (verdict, why) = match verdict {
            Verdict::Fail(why) => ("failed", why.clone()),
            Verdict::Inconclusive(why, _) => ("inconclusive", why.clone()),
            Verdict::Pass(why) => ("passed", why.clone()),
            Verdict::Continue => return Ok(()),
        };
        let ended_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let record = crate::deploy::journal::AnalysisRecord {
            color,
            percent,
            verdict: verdict.into(),
            why,
            watch: self.watching,
            ended_ms,
            window: window.clone(),
        };
        self.journal
            .append(&crate::deploy::journal::Entry::Analysis(record))
    }
}

/// What a window's verdict means for the deploy: a failure (or a window
/// that could not decide, where that fails) stops it.
pub(super) fn settle(report: &crate::deploy::progress::Reporter, v: Verdict) -> Result<(), Stop> {
    match v {
        Verdict::Fail(why) => Err(Stop::Failed(anyhow::anyhow!("traffic analysis: {why}"))),
        Verdict::Inconclusive(why, Inconclusive::Fail) => Err(Stop::Failed(anyhow::anyhow!(
            "traffic analysis could not decide: {why}; the new release is not kept \
             without evidence (analysis.on_inconclusive: warn to go on anyway)"
        ))),
        Verdict::Inconclusive(why, Inconclusive::Warn) => {
            report.say(&format!("  warning: {why}"));
            Ok(())
        }
        Verdict::Pass(why) => {
            report.say(&format!("  passed: {why}"));
            Ok(())
        }
        Verdict::Continue => unreachable!("a window ends on a decision"),
    }
}
