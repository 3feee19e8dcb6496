//! `promote`, `resume` and `abort`: an operator's word to the deploy that
//! holds the app's lock, from any terminal or CI job that reaches the
//! platform. The command is written next to the lease (the local daemon, or
//! an annotation on Cloud Foundry's lock app: `platform::lease::control`),
//! and this waits until the deploy acknowledges it, so a zero exit means
//! the deploy took it. With no deploy to take it (none running, or one
//! running but not paused for `resume`) it says so and exits 6; a deploy
//! whose runner died gets the command recorded for `bluegreen recover`.

use super::deploy::{FileArg, Loaded};
use super::output::{Printer, outln};
use crate::cli::Exit;
use crate::config::PlatformKind;
use crate::deploy::lock::{self, Store};
use crate::deploy::operator::{Channel, who};
use crate::deploy::site;
use crate::platform::lease::control::{Command, Control, Verb};
use clap::Args;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct OperatorArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Why (journaled with who sent it, and shown in the deploy's output).
    #[arg(long)]
    pub reason: Option<String>,
    /// How long to wait for the deploy to acknowledge the command.
    #[arg(long, value_parser = crate::units::parse_duration, default_value = "30s")]
    pub wait: Duration,
    /// Print one JSON object: `{"app", "deploy", "verb", "acknowledged", ...}`.
    #[arg(long)]
    pub json: bool,
}

/// No deploy could take the command: exit 6.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NoDeploy(pub String);

pub async fn run(verb: Verb, args: &OperatorArgs) -> anyhow::Result<Exit> {
    let l = Loaded::read(&args.file.file)?;
    let taken = send(&l, verb, args.reason.clone(), args.wait, who()).await?;
    Printer::new(args.json).emit(taken.json(), || outln!("{}", taken.line()));
    Ok(Exit::Ok)
}

/// A command the deploy took: who sent it, where the deploy was paused,
/// and what it does about it.
pub struct Taken {
    pub app: String,
    pub deploy: String,
    pub verb: Verb,
    pub by: String,
    pub reason: Option<String>,
    pub paused: Option<String>,
    pub doing: String,
}

impl Taken {
    /// `--json`'s object.
    pub fn json(&self) -> serde_json::Value {
        json!({"app": self.app, "deploy": self.deploy, "verb": self.verb, "by": self.by,
            "reason": self.reason, "paused": self.paused, "acknowledged": true,
            "doing": self.doing})
    }

    /// The line for people.
    pub fn line(&self) -> String {
        let at = self
            .paused
            .as_ref()
            .map(|p| format!(", {p}"))
            .unwrap_or_default();
        format!(
            "{}: deploy {} of {}{at} took it: {}",
            self.verb.name(),
            self.deploy,
            self.app,
            self.doing
        )
    }
}

/// Sends `verb` to the deploy holding `l`'s lock, as `by`, and waits up to
/// `wait` for it to acknowledge: what the CLI's verbs and the dashboard's
/// buttons do alike.
pub async fn send(
    l: &Loaded,
    verb: Verb,
    reason: Option<String>,
    wait: Duration,
    by: String,
) -> anyhow::Result<Taken> {
    let app = &l.file.app;
    let name = verb.name();
    let Some((client, port)) = site::connect(&l.file, false).await? else {
        return Err(NoDeploy(format!("{app}: no platform runs, so no deploy to {name}")).into());
    };
    let store = match l.file.platform {
        PlatformKind::Local => Store::Local,
        PlatformKind::Cf => site::Site::survey(&l.file, client.clone(), port, false)
            .await?
            .lock_store(),
    };
    let Some(holder) = store.holder(&client, app).await? else {
        return Err(NoDeploy(format!("{app}: no deploy runs, so nothing to {name}")).into());
    };
    let channel = Channel {
        client,
        store,
        app: app.clone(),
    };
    let before = channel.read().await?;
    let state = before.state.filter(|s| s.deploy == holder.id);
    let paused = state.as_ref().and_then(|s| s.paused.clone());
    if verb == Verb::Resume && state.is_some() && paused.is_none() {
        return Err(NoDeploy(format!(
            "deploy {} of {app} runs and is not paused: nothing to resume",
            holder.id
        ))
        .into());
    }
    let command = Command {
        id: format!("{}-{}", crate::platform::lease::unix_now(), nonce()),
        deploy: holder.id.clone(),
        verb,
        by,
        reason,
        at: crate::units::now_rfc3339(),
    };
    let write = Control {
        state: None,
        command: Some(command.clone()),
    };
    if !channel.write(&write).await? {
        return Err(NoDeploy(format!("{app}: no deploy runs, so nothing to {name}")).into());
    }
    if !lock::may_be_alive(&holder) {
        return Err(NoDeploy(format!(
            "deploy {} of {app} is not running (its runner is gone): `{name}` is recorded, and \
             `bluegreen recover` carries it out",
            holder.id
        ))
        .into());
    }
    let deadline = Instant::now() + wait;
    let doing = loop {
        let now = channel.read().await?;
        if let Some(s) = now
            .state
            .filter(|s| s.handled.as_deref() == Some(&command.id))
        {
            break s.doing.unwrap_or_default();
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "deploy {} of {app} did not take `{name}` within {} (it listens while it has \
                 pauses or analysis windows; one whose runner died takes it at `bluegreen \
                 recover`)",
                holder.id,
                crate::units::human_duration(wait)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    Ok(Taken {
        app: app.clone(),
        deploy: holder.id,
        verb,
        by: command.by,
        reason: command.reason,
        paused,
        doing,
    })
}

/// A few bits that tell two commands of one second apart.
fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:08x}{:x}", t, std::process::id())
}
