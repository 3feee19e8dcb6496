//! Platforms: one Cloud Foundry v3 client ([`client::CfClient`]) that drives a
//! real Cloud Foundry or Korifi, and the embedded local platform
//! ([`local`]) that serves the same API subset on one machine.

pub mod auth;
pub mod calls;
pub mod client;
pub mod deployments;
pub mod lease;
pub mod local;
pub mod log_cache;
pub mod package;
pub mod standby;
pub mod traffic;
pub mod trust;
pub mod v3;

use std::path::PathBuf;
use std::time::Duration;

/// Platform failures users see. API errors keep CF's code, title and detail.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("{method} {path}: {title} ({code}): {detail} [HTTP {status}]")]
    Api {
        method: String,
        path: String,
        status: u16,
        code: u64,
        title: String,
        detail: String,
    },
    #[error("{method} {url}: {message}")]
    Http {
        method: String,
        url: String,
        message: String,
    },
    #[error("{what} did not finish within {}", crate::units::human_duration(*.after))]
    Timeout { what: String, after: Duration },
    #[error("{what} failed: {detail}")]
    Failed { what: String, detail: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The cause is part of the message (not a `source`), so it is printed
    /// once, followed by the fix (`local::daemon::bind_error`).
    #[error("cannot listen on 127.0.0.1:{port} ({what}): {cause}{fix}")]
    Bind {
        port: u16,
        what: &'static str,
        cause: String,
        fix: String,
    },
    #[error("cf login state: {0}")]
    Auth(String),
    #[error("local platform: {0}")]
    Local(String),
    #[error(transparent)]
    Store(#[from] local::StoreError),
}

impl PlatformError {
    /// The server has no such endpoint (CF's 404 `Unknown request`, or a
    /// 405/501): a platform serving a smaller subset, such as Korifi.
    pub fn is_unknown_endpoint(&self) -> bool {
        matches!(
            self,
            PlatformError::Api {
                status: 405 | 501,
                ..
            }
        ) || matches!(
            self,
            PlatformError::Api {
                status: 404,
                code: 10000,
                ..
            }
        )
    }
}

impl PlatformError {
    /// The CF error title (`CF-ResourceNotFound`, ...) if this is an API error.
    pub fn cf_title(&self) -> Option<&str> {
        match self {
            PlatformError::Api { title, .. } => Some(title),
            _ => None,
        }
    }
}
