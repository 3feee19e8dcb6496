//! `status` while a deploy is under way. A journal alone does not mean a
//! deploy was interrupted: its runner may be at work right now. The lock
//! says which: a journal whose runner still holds a live lease (its
//! process runs on this host, or its lease has not expired elsewhere) is a
//! running deploy, shown with its step and the route's canary weights; only
//! a journal nobody works on is "interrupted: run `bluegreen recover`".

use crate::deploy::journal::{AnalysisRecord, Entry, Replay};
use crate::deploy::lock;
use crate::deploy::site::Site;
use crate::platform::lease::Lease;
use crate::plugin::context::Color;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A deploy with a journal: running or interrupted.
pub struct InFlight {
    pub replay: Replay,
    /// The live holder of the lock, when a runner works on it.
    pub runner: Option<Lease>,
    /// The route's weights per color, during a canary step.
    pub weights: Option<BTreeMap<Color, u32>>,
    /// The analysis window under way, as the runner last judged it
    /// (`deploy::window_now`).
    pub window: Option<Value>,
}

impl InFlight {
    /// The journal's deploy, and whether `holder` works on it: the same
    /// deploy, or a later one that recovers it before its own work.
    pub fn new(replay: Option<Replay>, holder: Option<&Lease>) -> Option<InFlight> {
        let replay = replay?;
        let runner = holder.filter(|h| lock::may_be_alive(h)).cloned();
        Some(InFlight {
            replay,
            runner,
            weights: None,
            window: None,
        })
    }

    pub fn running(&self) -> bool {
        self.runner.is_some()
    }

    /// Reads the route's weights (set only during a canary step).
    pub async fn read_weights(&mut self, site: &Site) -> anyhow::Result<()> {
        let dests = site.client.destinations(&site.route.guid).await?;
        let mut weights = BTreeMap::new();
        for d in &dests {
            let color = [Color::Blue, Color::Green]
                .into_iter()
                .find(|c| site.app(*c).guid == d.app.guid);
            if let (Some(c), Some(w)) = (color, d.weight) {
                *weights.entry(c).or_insert(0) += w;
            }
        }
        self.weights = (!weights.is_empty()).then_some(weights);
        Ok(())
    }

    /// The step in flight: 1-based index, total, kind, text.
    fn step(&self) -> Option<(usize, usize, &crate::deploy::plan::Step)> {
        let steps = &self.replay.record.steps;
        let at = self.replay.resume_at();
        steps.get(at).map(|s| (at + 1, steps.len(), s))
    }

    /// The `deploy` object of `status --json`.
    pub fn json(&self) -> Value {
        let r = &self.replay.record;
        let step = self.step().map(|(i, n, s)| {
            json!({"index": i, "total": n, "step": s.kind(), "color": s.color(),
                "text": s.to_string()})
        });
        json!({"id": r.id, "kind": r.kind, "release": r.release,
            "previous_release": r.previous_release,
            "state": if self.running() { "running" } else { "interrupted" },
            "step": step, "runner": self.runner, "weights": self.weights,
            "window": self.window, "windows": self.judged()})
    }

    /// The analysis windows judged so far, oldest first.
    fn judged(&self) -> Vec<&AnalysisRecord> {
        let decisions = self.replay.decisions.iter();
        decisions
            .filter_map(|e| match e {
                Entry::Analysis(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// The lines of `status` for people.
    pub fn print(&self) {
        let r = &self.replay.record;
        let kind = format!("{:?}", r.kind).to_lowercase();
        let Some(runner) = &self.runner else {
            crate::output::outln!("  {kind} {} was interrupted: run `bluegreen recover`", r.id);
            return;
        };
        let at = match self.step() {
            Some((i, n, s)) => format!("step {i}/{n}: {s}"),
            None => "finishing".to_string(),
        };
        crate::output::outln!(
            "  {kind} {} of release {} is running (from {}), {at}",
            r.id,
            r.release,
            r.previous_release.as_deref().unwrap_or("nothing"),
        );
        let recovering = if runner.id == r.id {
            String::new()
        } else {
            format!(" (deploy {}, which recovers it first)", runner.id)
        };
        crate::output::outln!(
            "    by `{}`{recovering}, pid {} on {}, since {}",
            runner.command,
            runner.pid,
            runner.host,
            runner.since
        );
        if let Some(w) = &self.weights {
            let shares: Vec<String> = w.iter().map(|(c, p)| format!("{c} {p}%")).collect();
            crate::output::outln!("    route weights: {}", shares.join(", "));
        }
        if let Some(a) = self.judged().last() {
            crate::output::outln!(
                "    last window: {} {}: {} ({})",
                a.color,
                at_percent(a.percent),
                a.verdict,
                crate::output::printable(&a.why)
            );
        }
        if let Some(w) = &self.window {
            let secs = |k: &str| w[k].as_u64().unwrap_or_default() as f64 / 1e3;
            let (judging, left) = (secs("elapsed_ms"), secs("left_ms"));
            crate::output::outln!(
                "    {} on {} {}: {judging:.1}s in, {left:.1}s left at most",
                if w["watch"] == true {
                    "watching"
                } else {
                    "window"
                },
                w["color"].as_str().unwrap_or_default(),
                at_percent(w["percent"].as_u64()),
            );
            for line in w["lines"].as_array().into_iter().flatten() {
                let line = crate::output::printable(line.as_str().unwrap_or_default());
                crate::output::outln!("      {line}");
            }
        }
    }
}

fn at_percent(p: Option<impl std::fmt::Display>) -> String {
    p.map(|p| format!("at {p}%"))
        .unwrap_or_else(|| "alone".into())
}
