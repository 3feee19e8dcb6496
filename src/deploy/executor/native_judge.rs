//! Judging a Cloud Foundry deployment: one app's requests from log-cache,
//! split by the `process_id` gorouter tags each timer with, so the new
//! instances (the deployment's new process) are judged against the old
//! ones over the same window and against the app before the deploy (the
//! baseline, read before anything moved), by the same judge as a color
//! (`deploy::analysis`), then by the `analyze` plugins. Without log-cache
//! there is nothing to split, and a judge that cannot judge says so.

use super::{Executor, Stop};
use crate::config::Inconclusive;
use crate::deploy::analysis::{Evidence, Verdict, describe_route, judge};
use crate::deploy::plan::native::Native;
use crate::platform::log_cache::{Follow, LogCache};
use crate::platform::traffic::{Sample, Snapshot};
use crate::plugin::Hook;
use crate::plugin::context::{AnalysisWindow, Color};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(250);
/// The baseline ends once the app served this many requests (or
/// `analysis.min_requests`, if more), else at the window's time.
const BASELINE_REQUESTS: u64 = 400;
/// Latency is first tested at this many requests, then at each doubling.
const FIRST_LATENCY_LOOK: u64 = 32;

pub(super) struct Meter {
    lc: LogCache,
    follow: Follow,
}

impl Meter {
    /// Both counters after one more read: the old instances', and the new
    /// process's once split off.
    async fn read(&mut self) -> Result<(Snapshot, Snapshot), Stop> {
        // A failed read is caught up by the next: log-cache keeps what it has.
        let rest = match self.lc.read(&mut self.follow).await {
            Ok(s) => s,
            Err(_) => self.follow.snapshot(),
        };
        Ok((rest, self.follow.split_snapshot().unwrap_or_default()))
    }
}

impl Executor {
    /// The app's log-cache reads, found once per deploy.
    async fn native_meter(&mut self) -> Result<&mut Meter, String> {
        if self.native.meter.is_none() {
            let lc = LogCache::discover(&self.site.client)
                .await
                .map_err(|e| e.to_string())?;
            let follow = lc
                .follow(&self.site.app(Color::Blue).guid)
                .await
                .map_err(|e| e.to_string())?;
            self.report.say(&format!(
                "  the app's requests as the router timed them, by process, from log-cache ({})",
                lc.url()
            ));
            self.native.meter = Some(Meter { lc, follow });
        }
        Ok(self.native.meter.as_mut().expect("set above"))
    }

    /// The app's live traffic before the deployment: the reference.
    pub(super) async fn native_baseline(&mut self, up_to: Duration) -> Result<(), Stop> {
        let enough = self
            .file
            .analysis()
            .unwrap_or_default()
            .min_requests
            .unwrap_or(0)
            .max(BASELINE_REQUESTS);
        if self.record.before[&Color::Blue].droplet.is_none() {
            self.report
                .say("  the first release of the app: nothing serves yet, no reference to read");
            return Ok(());
        }
        let meter = match self.native_meter().await {
            Ok(m) => m,
            Err(why) => {
                self.report.say(&format!(
                    "  no per-request metrics from log-cache ({}): no reference",
                    crate::output::printable(&why)
                ));
                return Ok(());
            }
        };
        let (first, _) = meter.read().await?;
        let until = Instant::now() + up_to;
        let mut app = Sample::default();
        while Instant::now() < until && app.metrics.requests < enough {
            tokio::time::sleep(TICK).await;
            app = meter.read().await?.0.sample(&first);
        }
        self.report
            .say(&format!("  {} (log-cache)", describe_route(&app.metrics)));
        self.report.event(serde_json::json!({
            "event": "baseline", "source": "log-cache", "route": app.metrics,
        }));
        self.pre_deploy = (app.metrics.requests > 0).then_some(app);
        Ok(())
    }

    /// One window on the new instances, then the `analyze` plugins.
    pub(super) async fn judge_native(&mut self, step: &Native) -> Result<(), Stop> {
        let Native::Judge {
            step,
            up_to,
            min_requests,
            max_error_rate,
            max_p99_ratio,
            last,
        } = step
        else {
            unreachable!("called for judge steps")
        };
        if self.record.before[&Color::Blue].droplet.is_none() {
            self.report.say(
                "  the first release of the app: nothing ran before it, so it is judged by its \
                 health checks alone",
            );
            return Ok(());
        }
        let limits = self.step_limits(*up_to, *min_requests, *max_error_rate, *max_p99_ratio);
        let process = self
            .native
            .new_process()
            .ok_or_else(|| anyhow::anyhow!("the deployment names no new process"))?
            .to_string();
        if let Err(why) = self.native_meter().await {
            let why = format!("no per-request metrics from log-cache ({why})");
            let fails = *last && limits.on_inconclusive != Some(Inconclusive::Warn);
            return conclude_blind(&self.report, why, fails);
        }
        // Out of `self` for the window, which reads `self` meanwhile.
        let mut meter = self.native.meter.take().expect("found above");
        meter.follow.split(&process);
        let (old0, new0) = meter.read().await?;
        let start = Instant::now();
        let until = start + limits.duration;
        let mut next_look = FIRST_LATENCY_LOOK;
        let (judgement, window) = loop {
            tokio::time::sleep(TICK).await;
            let (old, new) = meter.read().await?;
            let judged = new.sample(&new0).with_pending(&new.pending_ages());
            let other = old.sample(&old0).with_pending(&old.pending_ages());
            let closing = Instant::now() >= until;
            let observed: u64 = judged.latency.iter().sum();
            let latency_look = closing || observed >= next_look;
            if latency_look {
                next_look = next_look.saturating_mul(2);
            }
            let evidence = Evidence {
                judged_name: "the new instances",
                other_name: "the old instances",
                judged: &judged,
                other: (other.metrics.requests > 0).then_some(&other),
                before: self.pre_deploy.as_ref(),
                elapsed: start.elapsed(),
                closing,
                latency_look,
                last_step: *last,
            };
            let judgement = judge(&evidence, &limits);
            if judgement.verdict != Verdict::Continue {
                let total = judged.metrics.requests + other.metrics.requests;
                let window = AnalysisWindow {
                    duration_ms: start.elapsed().as_millis() as u64,
                    weight_percent: (judged.metrics.requests * 100)
                        .checked_div(total)
                        .unwrap_or(100) as u8,
                    source: "log-cache".into(),
                    candidate: judged.metrics.clone(),
                    baseline: (other.metrics.requests > 0).then(|| other.metrics.clone()),
                };
                break (judgement, window);
            }
        };
        self.native.meter = Some(meter);
        for line in &judgement.lines {
            self.report.say(&format!("  {line}"));
        }
        let (failed, inconclusive, passed) = super::analyze::verdict_fields(&judgement.verdict);
        self.report.event(serde_json::json!({
            "event": "analysis", "canary_step": step, "process": process,
            "percent": window.weight_percent, "attempt": 1, "window": window,
            "failed": failed, "inconclusive": inconclusive, "passed": passed,
            "tests": judgement.tests, "method": crate::deploy::analysis::method(&limits),
        }));
        let percent = Some(window.weight_percent);
        self.journal_verdict(Color::Blue, percent, &judgement.verdict, &window)?;
        super::analyze::settle(&self.report, judgement.verdict)?;
        self.window = Some(window);
        let judged = self.hooks(Hook::Analyze, Some(Color::Blue)).await;
        self.window = None;
        self.watch_longer = None;
        judged
    }
}

/// A judge without numbers: a warning, or at the last step (unless the
/// file says `warn`) a failure, never a silent pass.
fn conclude_blind(
    report: &crate::deploy::progress::Reporter,
    why: String,
    fails: bool,
) -> Result<(), Stop> {
    let why = crate::output::printable(&why);
    if fails {
        return Err(Stop::Failed(anyhow::anyhow!(
            "{why}: the new release is not kept without evidence (analysis.on_inconclusive: \
             warn to go on anyway)"
        )));
    }
    report.say(&format!(
        "  warning: {why}; judged by its health checks alone"
    ));
    Ok(())
}
