//! bluegreen: zero-downtime blue-green deploys with sandboxed WebAssembly
//! hook plugins. The binary is a thin shell over this library, so the
//! integration tests drive the same code paths users do.

pub mod cli;
pub mod config;
pub mod deploy;
pub mod platform;
pub mod plugin;
pub mod units;
