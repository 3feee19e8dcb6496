//! Hook plugins: WebAssembly components, found in a plugin directory, called
//! at deploy hooks inside a sandbox. See `wit/hooks.wit` for the plugin
//! author's side of the contract.

mod bindings;
pub mod builtin;
mod cache;
pub mod context;
mod error;
mod hook;
mod host;
mod https;
mod sandbox;

pub use cache::{Cache, CacheStatus, sha256_hex};
pub use context::{HookContext, Outcome, Verdict};
pub use error::{FailureKind, PluginError};
pub use hook::Hook;
pub use host::{CallReport, OnError, Plugin, PluginConfig, PluginHost};
pub use sandbox::{DEFAULT_OUTPUT_CAP, DEFAULT_TIMEOUT, DirGrant, Origin, Sandbox};
