//! Command-line interface: one file per subcommand. Each returns the process
//! exit code ([`Exit`]); errors are mapped to codes by [`Exit::of`].

mod cf_env;
mod completions;
mod dashboard;
mod deploy;
mod init;
mod logs;
mod new_plugin;
mod operator;
pub use crate::output;
mod plan;
mod platform;
mod plugin;
mod policy;
mod recover;
mod schema;
mod service;
mod status;

use crate::platform::lease::control::Verb;
use clap::{Parser, Subcommand};

/// Exit codes, documented in docs/src/cli.md ("Exit codes").
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done, or the plugin said proceed.
    Ok = 0,
    /// Something failed (a plugin malfunctioned, timed out, trapped ...).
    Failed = 1,
    /// Bad input: arguments, files, or a plugin that is not a valid plugin.
    BadInput = 2,
    /// A plugin or policy blocked on purpose.
    Blocked = 3,
    /// Another deploy holds the app's lock.
    Locked = 4,
    /// `status`: the route does not serve (no color on it answers healthy,
    /// or nothing is deployed).
    NotServing = 5,
    /// `promote`, `resume`, `abort`: no deploy to take the command (none
    /// runs, it is not paused, or its runner is gone).
    NotRunning = 6,
    /// A plugin asked to be called again later (sysexits' EX_TEMPFAIL).
    Retry = 75,
    /// A deploy stopped by Ctrl-C (128 + SIGINT), rolled back.
    Interrupted = 130,
    /// A deploy stopped by SIGTERM (128 + SIGTERM), rolled back.
    Terminated = 143,
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e as u8)
    }
}

impl Exit {
    /// The one mapping from an error to an exit code: the first class (in
    /// this order) that any cause in the chain belongs to, however deeply
    /// it is nested.
    pub fn of(err: &anyhow::Error) -> Exit {
        use crate::deploy::executor::DeployError;
        use crate::platform::PlatformError;
        let any = |f: &dyn Fn(&(dyn std::error::Error + 'static)) -> bool| err.chain().any(f);
        if let Some(signal) = err.chain().find_map(|c| match c.downcast_ref() {
            Some(DeployError::Interrupted { signal, .. }) => Some(*signal),
            _ => c
                .downcast_ref::<crate::deploy::interrupt::Interrupted>()
                .map(|i| i.signal),
        }) {
            return match signal {
                crate::deploy::interrupt::Signal::Int => Exit::Interrupted,
                crate::deploy::interrupt::Signal::Term => Exit::Terminated,
            };
        }
        if any(&|c| {
            c.is::<BadInput>()
                || c.is::<crate::config::ConfigError>()
                || matches!(c.downcast_ref(), Some(PlatformError::Bind { .. }))
                || matches!(c.downcast_ref::<crate::plugin::PluginError>(), Some(e) if e.kind.is_invalid_plugin())
        }) {
            return Exit::BadInput;
        }
        if any(&|c| {
            c.is::<crate::PolicyViolation>()
                || matches!(c.downcast_ref(), Some(DeployError::Blocked { .. }))
        }) {
            return Exit::Blocked;
        }
        if any(&|c| {
            c.is::<crate::deploy::lock::Locked>() || c.is::<crate::deploy::lock::LostLock>()
        }) {
            return Exit::Locked;
        }
        if any(&|c| c.is::<operator::NoDeploy>()) {
            return Exit::NotRunning;
        }
        Exit::Failed
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "bluegreen",
    version,
    about = "Zero-downtime blue-green deploys with sandboxed WebAssembly hook plugins"
)]
pub struct Cli {
    /// Print only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail: each platform API call, each plugin log line.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// The Cloud Foundry org to deploy to, with `--space` (else CF_ORG and
    /// CF_SPACE, else the cf login's target).
    #[arg(
        short = 'o',
        long,
        global = true,
        value_name = "ORG",
        requires = "space"
    )]
    pub org: Option<String>,
    /// The Cloud Foundry space to deploy to, with `--org`.
    #[arg(
        short = 's',
        long,
        global = true,
        value_name = "SPACE",
        requires = "org"
    )]
    pub space: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy the app: each color in turn off the route, new code, healthy, back.
    Deploy {
        #[command(flatten)]
        args: deploy::RunArgs,
        /// The release id (default: the git commit, or a hash of the files).
        #[arg(long)]
        release: Option<String>,
        #[command(flatten)]
        overrides: deploy::OverrideArgs,
    },
    /// Show every step of a deploy and the plugins at each hook, without acting.
    Plan {
        #[command(flatten)]
        args: deploy::RunArgs,
        #[arg(long)]
        release: Option<String>,
    },
    /// Go back to the previous (or a named) release through the same sequence.
    Rollback {
        #[command(flatten)]
        args: deploy::RunArgs,
        /// The release to go back to (default: the one before the current).
        #[arg(long)]
        to: Option<String>,
        /// Judge it with the deploy file's canary steps and analysis (by
        /// default a rollback is a plain blue-green: the release served before).
        #[arg(long)]
        analyze: bool,
    },
    /// Finish a running deploy now: skip its remaining pauses and analysis windows.
    Promote(operator::OperatorArgs),
    /// Let a paused deploy go on to its next step.
    Resume(operator::OperatorArgs),
    /// Roll a running or paused deploy back now, as a failed step does.
    Abort(operator::OperatorArgs),
    /// Finish or roll back a deploy that was interrupted.
    Recover {
        #[command(flatten)]
        args: deploy::RunArgs,
    },
    /// The release on each color, mapped or not, healthy or not, and a
    /// deploy under way; exit 5 when the route does not serve.
    Status(status::StatusCmd),
    /// Past deploys and rollbacks, newest first.
    History(status::StatusArgs),
    /// The output of the deploy file's app (both colors, or `--color`), on
    /// the local platform.
    Logs(logs::LogsArgs),
    /// Serve a live page of the app: colors, a deploy's steps and traffic,
    /// history, and promote/resume/abort buttons.
    Dashboard(dashboard::DashboardArgs),
    /// Remove the app's deploy lock when its holder is gone.
    Unlock(status::UnlockArgs),
    /// Inspect the org policy a deploy runs under.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Check, run and inspect hook plugins (WebAssembly components).
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Run the embedded local platform: apps as processes behind a router.
    #[command(subcommand)]
    Platform(platform::PlatformCommand),
    /// Write a commented bluegreen.yaml from what the app directory holds.
    Init(init::InitArgs),
    /// Print a shell completion script: `bluegreen completions bash > …`.
    Completions(completions::CompletionsArgs),
    /// Print the deploy file's JSON Schema, for editors: `bluegreen schema > .bluegreen.schema.json`.
    Schema(schema::SchemaArgs),
}

pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    output::set_verbosity(match (cli.quiet, cli.verbose) {
        (true, _) => output::Verbosity::Quiet,
        (_, true) => output::Verbosity::Verbose,
        _ => output::Verbosity::Normal,
    });
    if let (Some(org), Some(space)) = (cli.org, cli.space) {
        crate::deploy::site::set_target(org, space);
    }
    match cli.command {
        Command::Deploy {
            args,
            release,
            overrides,
        } => deploy::run(&args, release, None, &overrides).await,
        Command::Plan { args, release } => plan::plan(&args, release).await,
        Command::Rollback { args, to, analyze } => {
            let overrides = deploy::OverrideArgs {
                analyze,
                ..Default::default()
            };
            deploy::run(&args, None, Some(to), &overrides).await
        }
        Command::Recover { args } => recover::recover(&args).await,
        Command::Promote(args) => operator::run(Verb::Promote, &args).await,
        Command::Resume(args) => operator::run(Verb::Resume, &args).await,
        Command::Abort(args) => operator::run(Verb::Abort, &args).await,
        Command::Status(args) => status::status(&args).await,
        Command::History(args) => status::history(&args).await,
        Command::Unlock(args) => status::unlock(&args).await,
        Command::Dashboard(args) => dashboard::run(&args).await,
        Command::Logs(args) => logs::run(&args).await,
        Command::Policy(cmd) => policy::run(cmd).await,
        Command::Plugin(cmd) => plugin::run(cmd).await,
        Command::Platform(cmd) => platform::run(cmd).await,
        Command::Init(args) => init::run(&args),
        Command::Completions(args) => completions::run(&args),
        Command::Schema(args) => schema::run(&args),
    }
}

pub use crate::BadInput;

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn the_exit_code_comes_from_any_cause_however_deep() {
        let deep = |e: anyhow::Error| -> anyhow::Error {
            Err::<(), _>(e)
                .context("loading")
                .context("preparing the deploy")
                .unwrap_err()
        };
        assert_eq!(Exit::of(&deep(BadInput("x".into()).into())), Exit::BadInput);
        let config = crate::config::ConfigError::Field {
            path: "bluegreen.yaml".into(),
            field: "app".into(),
            message: "bad".into(),
        };
        assert_eq!(Exit::of(&deep(config.into())), Exit::BadInput);
        let locked = crate::deploy::lock::LostLock {
            app: "shop".into(),
            why: "expired".into(),
            step: "map".into(),
        };
        assert_eq!(Exit::of(&deep(locked.into())), Exit::Locked);
        assert_eq!(Exit::of(&anyhow::anyhow!("boom")), Exit::Failed);
        use crate::deploy::interrupt::{Interrupted, Signal};
        let signal = |signal| Interrupted {
            signal,
            what: "stopped".into(),
        };
        assert_eq!(
            Exit::of(&deep(signal(Signal::Int).into())),
            Exit::Interrupted
        );
        assert_eq!(
            Exit::of(&deep(signal(Signal::Term).into())),
            Exit::Terminated
        );
        let rolled_back = crate::deploy::executor::DeployError::Interrupted {
            signal: Signal::Int,
            what: "deploy interrupted".into(),
            aftermath: "rolled blue back".into(),
        };
        assert_eq!(Exit::of(&deep(rolled_back.into())) as u8, 130);
        assert_eq!(
            std::process::ExitCode::from(Exit::Retry),
            std::process::ExitCode::from(75)
        );
    }
}
