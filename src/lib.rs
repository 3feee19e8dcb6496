//! bluegreen: zero-downtime blue-green deploys with sandboxed WebAssembly
//! hook plugins. The binary is a thin shell over this library, so the
//! integration tests drive the same code paths users do.

pub mod cli;
pub mod config;
pub mod deploy;
pub mod output;
pub mod platform;
pub mod plugin;
pub mod units;

/// Input the user can fix: reported with exit code 2. It lives at the root
/// so every layer (config, deploy, cli) can raise it without importing the
/// CLI.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// The deploy file breaks the org policy: exit code 3, nothing changes.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyViolation(pub String);
