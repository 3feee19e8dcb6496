//! Command-line interface: one file per subcommand. Each returns the process
//! exit code; errors are mapped to codes by [`exit_code_for`].

mod platform;
mod plugin;

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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, run and inspect hook plugins (WebAssembly components).
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Run the embedded local platform: apps as processes behind a router.
    #[command(subcommand)]
    Platform(platform::PlatformCommand),
}

pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Plugin(cmd) => plugin::run(cmd).await,
        Command::Platform(cmd) => platform::run(cmd).await,
    }
}

/// Input the user can fix: reported with exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<BadInput>()) {
        return exit::BAD_INPUT;
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
