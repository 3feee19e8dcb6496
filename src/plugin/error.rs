//! Typed plugin failures. Each one names the plugin and, for calls, the hook,
//! and carries what the plugin printed, because a bare "trap" helps nobody.

use super::hook::Hook;
use crate::output::{printable, printable_lines};
use std::path::PathBuf;
use std::time::Duration;

/// What went wrong, by kind; tests and `--json` match on this.
#[derive(Debug, thiserror::Error)]
pub enum FailureKind {
    #[error("timed out after {}", crate::units::human_duration(*.0))]
    Timeout(Duration),
    #[error("exceeded its memory limit of {} MiB", .0 / (1024 * 1024))]
    MemoryLimit(u64),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("was denied a capability it was not granted: {0}")]
    Denied(String),
    #[error("returned an invalid result: {0}")]
    BadResult(String),
    /// The plugin returned `err(...)`: it malfunctioned (not a veto).
    #[error("reported an error: {0}")]
    Malfunction(String),
    #[error("is not a WebAssembly component: {0}")]
    NotAComponent(String),
    #[error("does not fit the bluegreen:hooks interface: {0}")]
    WorldMismatch(String),
    #[error("does not handle the `{0}` hook (it exports no `{iface}`)", iface = .0.interface())]
    HookNotHandled(Hook),
    #[error("cannot be read: {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not be set up: {0}")]
    Host(String),
}

impl FailureKind {
    /// A stable short name for machine-readable output.
    pub fn code(&self) -> &'static str {
        match self {
            FailureKind::Timeout(_) => "timeout",
            FailureKind::MemoryLimit(_) => "memory-limit",
            FailureKind::Trap(_) => "trap",
            FailureKind::Denied(_) => "denied",
            FailureKind::BadResult(_) => "bad-result",
            FailureKind::Malfunction(_) => "plugin-error",
            FailureKind::NotAComponent(_) => "not-a-component",
            FailureKind::WorldMismatch(_) => "world-mismatch",
            FailureKind::HookNotHandled(_) => "hook-not-handled",
            FailureKind::Io { .. } => "io",
            FailureKind::Host(_) => "host",
        }
    }

    /// Problems with the plugin file itself, found before any call; the CLI
    /// reports them as bad input (exit 2) rather than as a failed call.
    pub fn is_invalid_plugin(&self) -> bool {
        matches!(
            self,
            FailureKind::NotAComponent(_)
                | FailureKind::WorldMismatch(_)
                | FailureKind::HookNotHandled(_)
                | FailureKind::Io { .. }
        )
    }
}

/// A plugin failure with the plugin's name and, for calls, the hook. Its
/// text carries the plugin's own (an `err` message, its stderr, names from
/// its binary), so it is escaped here, once, for every place that shows it:
/// the error chain `main` prints, `--json`, a warning finding.
#[derive(Debug, thiserror::Error)]
#[error(
    "plugin `{}`{} {}{}",
    printable(.plugin),
    hook_suffix(.hook),
    printable_lines(&.kind.to_string()),
    stderr_suffix(.stderr)
)]
pub struct PluginError {
    pub plugin: String,
    pub hook: Option<Hook>,
    pub kind: FailureKind,
    /// The tail of what the plugin wrote to stderr (panics print there).
    pub stderr: String,
}

impl PluginError {
    pub fn new(plugin: &str, hook: Option<Hook>, kind: FailureKind) -> Self {
        PluginError {
            plugin: plugin.to_string(),
            hook,
            kind,
            stderr: String::new(),
        }
    }
}

fn hook_suffix(hook: &Option<Hook>) -> String {
    hook.map(|h| format!(" at hook `{h}`")).unwrap_or_default()
}

fn stderr_suffix(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = stderr.trim_end().lines().map(printable).collect();
        format!("\n  plugin stderr:\n    {}", lines.join("\n    "))
    }
}
