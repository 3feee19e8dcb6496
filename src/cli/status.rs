//! `status`, `history` and `unlock`: what runs where (and a deploy under way,
//! `live`), what ran before, and clearing a lock whose holder is gone.

use super::deploy::{FileArg, Loaded};
use super::output::{Printer, outln};
use crate::cli::Exit;
use crate::config::PlatformKind;
use crate::deploy::journal;
use crate::deploy::lock::{self, Store};
use crate::deploy::site;
use crate::platform::client::CfClient;
use crate::platform::lease::Lease;
use crate::platform::local;
use clap::Args;
use look::look;
use serde_json::json;
use std::time::{Duration, Instant};

mod live;
mod look;
mod watch;

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Print JSON (`history`: one object per line, oldest first).
    #[arg(long)]
    pub json: bool,
}

/// `status` takes `--wait` besides what `history` takes.
#[derive(Debug, Args)]
pub struct StatusCmd {
    #[command(flatten)]
    pub args: StatusArgs,
    /// Wait up to this long (`30s`, `10m`) until no deploy runs and the
    /// route serves, then show it (exit 4 if a deploy still runs).
    #[arg(long, value_parser = crate::units::parse_duration)]
    pub wait: Option<Duration>,
    /// Look again every INTERVAL (default 1s) and show each look: the
    /// deploy's step, weights and its analysis window's numbers. Until
    /// Ctrl-C, or with `--wait` until the route serves and no deploy runs.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, default_missing_value = "1s",
          value_parser = crate::units::parse_duration)]
    pub watch: Option<Duration>,
}

/// The exit code says whether the route serves: 0 when a color on it
/// answers healthy (a deploy may be running), `NotServing` otherwise
/// (nothing deployed, or no healthy color on the route).
pub async fn status(cmd: &StatusCmd) -> anyhow::Result<Exit> {
    let args = &cmd.args;
    let l = Loaded::read(&args.file.file)?;
    if let Some(every) = cmd.watch {
        return watch::watch(&l, cmd, every).await;
    }
    let until = Instant::now() + cmd.wait.unwrap_or_default();
    let look = loop {
        let look = look(&l).await?;
        if look.settled() || Instant::now() >= until {
            break look;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    Printer::new(args.json).emit(look.json(&l), || look.print(&l));
    Ok(look.exit(cmd.wait.is_some()))
}

/// What `status --json` prints, looked at now (`bluegreen dashboard`
/// serves it, polled).
pub(super) async fn status_json(l: &Loaded) -> anyhow::Result<serde_json::Value> {
    Ok(look(l).await?.json(l))
}

/// The lock of an app whose site is not there (yet). Neither store needs the
/// app's apps (the local daemon keys it by app name; on Cloud Foundry it is
/// the space's lock app), so a first deploy holds it before it makes them,
/// and a runner killed in that window leaves it with no site to find it on.
/// `None` where no lock can exist: the local daemon is not running.
async fn siteless_lock(l: &Loaded) -> anyhow::Result<Option<(CfClient, Store, Option<Lease>)>> {
    let Some((client, port)) = site::connect(&l.file, false).await? else {
        return Ok(None);
    };
    let store = match l.file.platform {
        PlatformKind::Local => Store::Local,
        PlatformKind::Cf => site::Site::survey(&l.file, client.clone(), port, false)
            .await?
            .lock_store(),
    };
    let held = store.holder(&client, &l.file.app).await?;
    Ok(Some((client, store, held)))
}

fn print_status(l: &Loaded, route_url: &str, colors: &[serde_json::Value], holder: Option<&Lease>) {
    outln!("{} → {}", l.file.app, route_url);
    for c in colors {
        outln!(
            "  {:<5} {:<24} release {:<22} {:<8} {:<10} {}",
            c["color"].as_str().unwrap_or("app"),
            c["app"].as_str().unwrap_or_default(),
            c["release"].as_str().unwrap_or("-"),
            c["state"].as_str().unwrap_or_default().to_lowercase(),
            if c["mapped"] == true {
                "mapped"
            } else {
                "unmapped"
            },
            if c["healthy"] == true {
                "healthy"
            } else {
                "not healthy"
            },
        );
        let processes: Vec<site::ProcessSummary> =
            serde_json::from_value(c["processes"].clone()).unwrap_or_default();
        let line: Vec<String> = processes.iter().map(|p| p.to_string()).collect();
        outln!("        {}", line.join(", "));
        print_standby(l, &c["standby"]);
        if let Some(d) = c["deployment"].as_object() {
            outln!(
                "        CF {} deployment {}: {}",
                d["strategy"].as_str().unwrap_or_default(),
                d["guid"].as_str().unwrap_or_default(),
                d["state"].as_str().unwrap_or_default()
            );
        }
    }
    if let Some(h) = holder {
        outln!("  {}", lock::describe(h));
    }
}

/// A color's standby line: what `rollback` would map, until when; or that
/// its time is over, and who stops it.
fn print_standby(l: &Loaded, standby: &serde_json::Value) {
    let until = standby["until"].as_str();
    let release = standby["release"].as_str().unwrap_or("-");
    match (until, standby["expired"] == true, standby["ended"].as_str()) {
        (Some(t), false, _) => outln!(
            "        standby on release {release} until {t}: `bluegreen rollback` maps it again"
        ),
        (Some(t), true, _) => outln!(
            "        standby on release {release}: its time ended at {t}; {}",
            match l.file.platform {
                PlatformKind::Local => "the platform stops it",
                PlatformKind::Cf => "the next `bluegreen deploy`, `rollback` or `recover` stops it",
            }
        ),
        (None, _, Some(t)) => outln!("        standby ended at {t} (stopped)"),
        _ => {}
    }
}

pub async fn history(args: &StatusArgs) -> anyhow::Result<Exit> {
    let l = Loaded::read(&args.file.file)?;
    let entries = journal::history(&journal::dir(&local::home_dir(), &l.file.app))?;
    let out = Printer::new(args.json);
    // JSON oldest first, one per line; text newest first.
    for e in &entries {
        out.event(serde_json::to_value(e)?);
    }
    out.text(|| print_history(&l.file.app, &entries));
    Ok(super::Exit::Ok)
}

fn print_history(app: &str, entries: &[journal::HistoryEntry]) {
    if entries.is_empty() {
        outln!("{app}: no deploys yet");
    }
    for e in entries.iter().rev() {
        outln!(
            "{}  {:<8} {:<22} {:<8} from {:<22} {:>6.1}s{}",
            e.started,
            format!("{:?}", e.kind).to_lowercase(),
            e.release,
            format!("{:?}", e.result).to_lowercase(),
            e.previous_release.as_deref().unwrap_or("-"),
            e.duration_ms as f64 / 1e3,
            if e.recovered { "  (recovered)" } else { "" }
        );
        if let Some(m) = &e.message {
            // It may quote a plugin (a journal from before escaping, too).
            let first = m.lines().next().unwrap_or_default();
            outln!("    {}", super::output::printable(first));
        }
    }
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    #[command(flatten)]
    pub file: FileArg,
    /// Required: clearing another runner's lock is a deliberate act.
    #[arg(long)]
    pub force: bool,
    /// Print one JSON object: `{"app", "unlocked", "removed"}`.
    #[arg(long)]
    pub json: bool,
}

pub async fn unlock(args: &UnlockArgs) -> anyhow::Result<Exit> {
    let l = Loaded::read(&args.file.file)?;
    if !args.force {
        return Err(super::BadInput(
            "`unlock` clears another runner's lock; add --force if its holder is gone".into(),
        )
        .into());
    }
    let out = Printer::new(args.json);
    let (held, unlocked) = match l.site(false).await? {
        Some(site) => {
            let (platform, app, space) = (l.file.platform, &l.file.app, &site.space_guid);
            let held = lock::holder(&site.client, platform, app, space).await?;
            let unlocked = lock::force_unlock(&site.client, platform, app, space).await?;
            (held, unlocked)
        }
        None => match siteless_lock(&l).await? {
            Some((client, store, held)) => {
                let unlocked = store.release(&client, &l.file.app, None).await?;
                (held, unlocked)
            }
            None => {
                out.emit(
                    json!({"app": l.file.app, "unlocked": false, "removed": null}),
                    || outln!("{}: not deployed, so nothing is locked", l.file.app),
                );
                return Ok(super::Exit::Ok);
            }
        },
    };
    let removed = held.filter(|_| unlocked);
    out.emit(
        json!({"app": l.file.app, "unlocked": unlocked, "removed": removed}),
        || match &removed {
            Some(h) => outln!(
                "Unlocked {}: removed the lock of deploy {} (pid {} on {})",
                l.file.app,
                h.id,
                h.pid,
                h.host
            ),
            None => outln!("{}: not locked", l.file.app),
        },
    );
    Ok(super::Exit::Ok)
}
