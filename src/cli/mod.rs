//! Command-line interface: one file per subcommand. Each returns the process
//! exit code; errors are mapped to codes by [`exit_code_for`].

mod completions;
mod deploy;
mod init;
mod new_plugin;
pub use crate::output;
mod platform;
mod plugin;
mod policy;
mod recover;
mod rollback;
mod service;
mod status;

use clap::{Parser, Subcommand};

/// Exit codes, documented in the README.
pub mod exit {
    /// Done, or the plugin said proceed.
    pub const OK: u8 = 0;
    /// Something failed (a plugin malfunctioned, timed out, trapped ...).
    pub const FAILED: u8 = 1;
    /// Bad input: arguments, files, or a plugin that is not a valid plugin.
    pub const BAD_INPUT: u8 = 2;
    /// A plugin or policy blocked on purpose.
    pub const BLOCKED: u8 = 3;
    /// Another deploy holds the app's lock.
    pub const LOCKED: u8 = 4;
    /// A plugin asked to be called again later (sysexits' EX_TEMPFAIL).
    pub const RETRY: u8 = 75;
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
    },
    /// Finish or roll back a deploy that was interrupted.
    Recover {
        #[command(flatten)]
        args: deploy::RunArgs,
    },
    /// The release on each color, mapped or not, healthy or not.
    Status(status::StatusArgs),
    /// Past deploys and rollbacks, newest first.
    History(status::StatusArgs),
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
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    output::set_verbosity(match (cli.quiet, cli.verbose) {
        (true, _) => output::Verbosity::Quiet,
        (_, true) => output::Verbosity::Verbose,
        _ => output::Verbosity::Normal,
    });
    match cli.command {
        Command::Deploy {
            args,
            release,
            overrides,
        } => deploy::run(&args, release, None, &overrides).await,
        Command::Plan { args, release } => deploy::plan(&args, release).await,
        Command::Rollback { args, to } => {
            deploy::run(&args, None, Some(to), &deploy::OverrideArgs::default()).await
        }
        Command::Recover { args } => recover::recover(&args).await,
        Command::Status(args) => status::status(&args).await,
        Command::History(args) => status::history(&args).await,
        Command::Unlock(args) => status::unlock(&args).await,
        Command::Policy(cmd) => policy::run(cmd).await,
        Command::Plugin(cmd) => plugin::run(cmd).await,
        Command::Platform(cmd) => platform::run(cmd).await,
        Command::Init(args) => init::run(&args),
        Command::Completions(args) => completions::run(&args),
    }
}

pub use crate::BadInput;

pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<BadInput>()) {
        return exit::BAD_INPUT;
    }
    if err
        .chain()
        .any(|c| c.is::<crate::deploy::plugins::PolicyViolation>())
    {
        return exit::BLOCKED;
    }
    if err
        .chain()
        .any(|c| c.is::<crate::deploy::lock::Locked>() || c.is::<crate::deploy::lock::LostLock>())
    {
        return exit::LOCKED;
    }
    if let Some(e) = err.downcast_ref::<crate::deploy::executor::DeployError>() {
        return match e {
            crate::deploy::executor::DeployError::Blocked { .. } => exit::BLOCKED,
            crate::deploy::executor::DeployError::Failed { .. } => exit::FAILED,
        };
    }
    if err.chain().any(|c| {
        matches!(
            c.downcast_ref(),
            Some(crate::platform::PlatformError::Bind { .. })
        )
    }) {
        return exit::BAD_INPUT;
    }
    match err.downcast_ref::<crate::plugin::PluginError>() {
        Some(e) if e.kind.is_invalid_plugin() => exit::BAD_INPUT,
        _ => exit::FAILED,
    }
}
