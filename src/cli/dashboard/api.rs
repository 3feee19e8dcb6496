//! The page's data, `GET /api/state`: one JSON object a background task
//! rebuilds every look. It is what `status --json` says (colors, releases,
//! instances, health, the lock, the deploy under way with its route
//! weights), plus the deploy's steps from its journal with the one in
//! flight, whether it is paused (the state it publishes next to its
//! lease), the operators' commands and analysis windows it journaled, each
//! color's traffic (`traffic`), and the history. Looking is the page's
//! only cost on the platform, and it is paid once however many pages poll.

use super::Shared;
use super::traffic::Feed;
use crate::cli::deploy::Loaded;
use crate::deploy::journal::{self, Entry, Journal, Replay};
use crate::deploy::lock::Store;
use crate::deploy::operator::Channel;
use crate::deploy::site::Site;
use crate::platform::local;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a surveyed site (its apps' guids, for traffic and the control
/// record) is used before it is surveyed again.
const RESURVEY: Duration = Duration::from_secs(10);
/// History entries shown, newest first.
const HISTORY: usize = 20;

pub fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/api/state", get(state))
}

async fn state(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let last = shared.last.lock().unwrap().clone();
    ([(header::CACHE_CONTROL, "no-store")], Json(last))
}

/// Looks at the platform every `every`, for as long as the server runs.
pub async fn gather(shared: Arc<Shared>, every: Duration) {
    let mut looker = Looker::default();
    loop {
        let started = Instant::now();
        let mut look = looker.look(&shared.loaded).await;
        look["by"] = json!(shared.by);
        *shared.last.lock().unwrap() = look;
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}

#[derive(Default)]
struct Looker {
    site: Option<(Instant, Site)>,
    feed: Feed,
    /// The last deploy seen running, kept (with its end from the history)
    /// once its journal is gone.
    recent: Option<Value>,
}

impl Looker {
    async fn look(&mut self, l: &Loaded) -> Value {
        let mut errors = Vec::new();
        let mut status = match super::super::status::status_json(l).await {
            Ok(s) => s,
            Err(e) => {
                errors.push(format!("{e:#}"));
                json!({"app": l.file.app})
            }
        };
        if let Err(e) = self.survey(l).await {
            errors.push(format!("{e:#}"));
        }
        if let Some((_, site)) = &self.site {
            self.feed.look(site).await;
        }
        let jdir = journal::dir(&local::home_dir(), &l.file.app);
        let history = journal::history(&jdir).unwrap_or_else(|e| {
            errors.push(format!("{e:#}"));
            Vec::new()
        });
        match Journal::read(&jdir) {
            Ok(Some(replay)) => {
                let paused = self.paused(l, &replay).await;
                let deploy = deploy_json(&replay, &status["deploy"], paused);
                self.recent = Some(deploy.clone());
                status["deploy"] = deploy;
            }
            Ok(None) => {
                if let Some(r) = self.recent.as_mut() {
                    let end = history.iter().rev().find(|h| json!(h.id) == r["id"]);
                    r["state"] = json!("finished");
                    r["finished"] = json!(end);
                }
                status["deploy"] = json!(self.recent);
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
        let newest: Vec<_> = history.iter().rev().take(HISTORY).collect();
        status["history"] = json!(newest);
        status["traffic"] = self.feed.json();
        status["platform"] = json!(l.file.platform);
        status["errors"] = json!(errors);
        status["at"] = json!(crate::units::now_rfc3339());
        status
    }

    /// Surveys the site when it is due (or missing).
    async fn survey(&mut self, l: &Loaded) -> anyhow::Result<()> {
        if self
            .site
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < RESURVEY)
        {
            return Ok(());
        }
        self.site = l.site(false).await?.map(|s| (Instant::now(), s));
        Ok(())
    }

    /// Where the deploy says it is paused, in the state it publishes next
    /// to its lease (none while it runs, or where that cannot be read).
    async fn paused(&self, l: &Loaded, replay: &Replay) -> Option<String> {
        let (_, site) = self.site.as_ref()?;
        let channel = Channel {
            client: site.client.clone(),
            store: Store::of(site.kind, &site.space_guid),
            app: l.file.app.clone(),
        };
        let state = channel.read().await.ok()?.state?;
        (state.deploy == replay.record.id).then_some(state.paused)?
    }
}

/// The deploy under way: `status`'s object, with every step of its plan
/// (done, current or pending), where it is paused, and what was decided.
fn deploy_json(replay: &Replay, status: &Value, paused: Option<String>) -> Value {
    let r = &replay.record;
    let at = replay.resume_at();
    let steps: Vec<Value> = r
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let state = match () {
                _ if replay.done.contains(&i) => "done",
                _ if i == at => "current",
                _ => "pending",
            };
            json!({"index": i + 1, "kind": s.kind(), "color": s.color(),
                "text": s.to_string(), "state": state})
        })
        .collect();
    let decisions: Vec<Value> = replay
        .decisions
        .iter()
        .map(|d| match d {
            Entry::Control(c) => json!({"type": "control", "verb": c.verb, "by": c.by,
                "reason": c.reason, "at": c.at}),
            Entry::Analysis(a) => {
                let mut v = json!(a);
                v["type"] = json!("analysis");
                v
            }
            Entry::Approval(a) => {
                let mut v = json!(a);
                v["type"] = json!("approval");
                v
            }
            _ => Value::Null,
        })
        .collect();
    let mut d = match status {
        Value::Object(_) => status.clone(),
        _ => json!({"id": r.id, "kind": r.kind, "release": r.release,
            "previous_release": r.previous_release, "state": "running"}),
    };
    d["started"] = json!(r.started);
    d["steps"] = json!(steps);
    d["decisions"] = json!(decisions);
    d["paused"] = json!(paused);
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy::plan::Step;

    #[test]
    fn steps_are_done_current_or_pending_and_decisions_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let record: crate::deploy::journal::DeployRecord = serde_json::from_value(json!({
            "id": "d1", "kind": "deploy", "app": "shop", "file": "/x/bluegreen.yaml",
            "release": "v2", "previous_release": "v1", "started": "2026-01-01T00:00:00Z",
            "host": "h", "pid": 1, "order": ["blue", "green"],
            "steps": [Step::Validate, Step::AcquireLock, Step::RecordRelease],
            "before": {"blue": {"mapped": true}, "green": {"mapped": true}},
            "droplets": {}, "migration_version": null}))
        .unwrap();
        let mut j = Journal::begin(dir.path(), &record).unwrap();
        j.append(&Entry::Done { step: 0 }).unwrap();
        j.append(&Entry::Start { step: 1 }).unwrap();
        let command: crate::platform::lease::control::Command = serde_json::from_value(json!({
            "id": "c1", "deploy": "d1", "verb": "promote", "by": "dashboard (a@h)",
            "reason": "fine", "at": "2026-01-01T00:00:05Z"}))
        .unwrap();
        j.append(&Entry::Control(command)).unwrap();
        let replay = Journal::read(dir.path()).unwrap().unwrap();
        let d = deploy_json(&replay, &Value::Null, Some("paused at 10%".into()));
        let states: Vec<&str> = d["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["state"].as_str().unwrap())
            .collect();
        assert_eq!(states, ["done", "current", "pending"]);
        assert_eq!(d["paused"], "paused at 10%");
        assert_eq!(d["decisions"][0]["by"], "dashboard (a@h)");
        assert_eq!(d["decisions"][0]["reason"], "fine");
        assert_eq!((&d["id"], &d["state"]), (&json!("d1"), &json!("running")));
    }
}
