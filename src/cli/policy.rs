//! `policy check`: the effective org policy for a deploy file, and what the
//! deploy file tried to change about it.

use super::deploy::{FileArg, Loaded};
use super::output::{BAD, Printer, outln, paint};
use crate::cli::Exit;
use crate::deploy::plugins::Plugins;
use clap::{Args, Subcommand};
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the effective policy and every way the deploy file breaks it.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub file: FileArg,
    #[arg(long)]
    pub policy: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: PolicyCommand) -> anyhow::Result<Exit> {
    let PolicyCommand::Check(args) = cmd;
    let l = Loaded::read(&args.file.file)?;
    let policy = l.policy(args.policy.as_deref())?;
    let (plugins, violations) = Plugins::load_checked(&l.file, &l.path, &l.base, policy).await?;
    let p = &plugins.policy;
    let required: Vec<_> = p
        .policy
        .required_plugins
        .iter()
        .map(|(name, r)| {
            let found = plugins.loaded.iter().find(|x| &x.name == name);
            json!({"name": name, "sha256": r.sha256, "locked_settings": r.settings,
                "from": found.map(|f| f.path.display().to_string()),
                "digest_matches": found.is_some_and(|f| f.sha256 == r.sha256)})
        })
        .collect();
    Printer::new(args.json).emit(
            json!({"policy": p.path, "source": p.source,
                "added": p.added.as_ref().map(|(path, source)| json!({"policy": path, "source": source})),
                "required_plugins": required,
                "required_hooks": p.policy.required_hooks, "overrides": {
                    "allowed": p.policy.overrides.allowed,
                    "require_reason": p.policy.overrides.require_reason},
                "migrate": {"require_rehearsal": p.policy.migrate.require_rehearsal},
                "violations": violations}),
    || {
        outln!("Effective {}", p.describe());
        for r in &required {
            outln!(
                "  required plugin {} (sha256 {}): {}",
                r["name"].as_str().unwrap_or_default(),
                r["sha256"].as_str().unwrap_or_default(),
                match (r["from"].as_str(), r["digest_matches"] == true) {
                    (Some(from), true) => format!("ok, from {from}"),
                    (Some(from), false) => format!("{} at {from}", paint(BAD, "DIGEST MISMATCH")),
                    (None, _) => paint(BAD, "MISSING"),
                }
            );
            if let Some(locked) = r["locked_settings"].as_object().filter(|o| !o.is_empty()) {
                let pairs: Vec<String> = locked
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                outln!("    locked settings: {}", pairs.join(", "));
            }
        }
        let hooks: Vec<&str> = p.policy.required_hooks.iter().map(|h| h.name()).collect();
        outln!(
            "  hooks that must have a plugin: {}",
            if hooks.is_empty() {
                "none".into()
            } else {
                hooks.join(", ")
            }
        );
        outln!(
            "  overrides (--allow): {}",
            match (
                p.policy.overrides.allowed,
                p.policy.overrides.require_reason
            ) {
                (false, _) => "not allowed",
                (true, true) => "allowed with --reason",
                (true, false) => "allowed",
            }
        );
        if p.policy.migrate.require_rehearsal {
            outln!("  migration rehearsal: required (one that cannot run refuses the deploy)");
        }
        if violations.is_empty() {
            outln!("The deploy file {} complies.", l.path.display());
        } else {
            outln!("What the deploy file {} tries to change:", l.path.display());
            for v in &violations {
                outln!("  {} {v}", paint(BAD, "✗"));
            }
        }
    });
    Ok(if violations.is_empty() {
        super::Exit::Ok
    } else {
        super::Exit::Blocked
    })
}
