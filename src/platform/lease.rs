//! The deploy lock as a lease: who holds it (deploy id, host, pid, command)
//! and until when. The holder renews it while it works, so a runner that
//! died stops holding it once the lease expires, and its details let the
//! next user see whether it is gone.
//!
//! Two stores: the local platform keeps leases in its daemon and checks and
//! writes them under one mutex (no race); on Cloud Foundry the lease lives
//! on a lock app that only one runner can create (`cf`: CF has no
//! compare-and-swap on metadata, but an app's name is unique in its space,
//! so the server's refusal of a second create decides who holds it).

use super::PlatformError;
use super::client::CfClient;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod cf;
pub mod control;
mod lock_app;
pub use lock_app::{LOCK_SUFFIX, ROLE_LABEL, is_lock_app, lock_app_name};

/// The annotation that carries a lease on Cloud Foundry (on the lock app).
pub const ANNOTATION: &str = "bluegreen.dev/lock";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The deploy id; a `recover` of that deploy may take the lease over.
    pub id: String,
    pub app: String,
    pub host: String,
    pub pid: u32,
    pub command: String,
    /// RFC 3339.
    pub since: String,
    /// Seconds since the Unix epoch.
    pub expires: u64,
    /// Which process on `host` holds it; none in leases written before
    /// this was recorded, or where `/proc` could not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessIdentity>,
}

/// A process as one machine can tell it from every other: a host name and a
/// pid are not enough, since containers may share a host name while each
/// has its own pid namespace (pid 7 in one is not pid 7 in the next), a pid
/// is reused once its process ends, and a reboot ends every process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    /// `/proc/sys/kernel/random/boot_id`: new at every boot.
    pub boot_id: String,
    /// The pid namespace the pid counts in (`readlink /proc/PID/ns/pid`,
    /// e.g. `pid:[4026531836]`).
    pub pid_ns: String,
    /// When it started, in clock ticks since boot (`/proc/PID/stat`).
    pub started: u64,
}

impl ProcessIdentity {
    /// Process `pid` of this machine, as `/proc` tells it (none when it is
    /// gone or `/proc` is not there).
    pub fn of(pid: u32) -> Option<ProcessIdentity> {
        let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let pid_ns = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()?;
        Some(ProcessIdentity {
            boot_id: boot_id.trim().to_string(),
            pid_ns: pid_ns.to_string_lossy().into_owned(),
            started: process_started(pid)?,
        })
    }

    /// This process.
    pub fn this() -> Option<ProcessIdentity> {
        static THIS: std::sync::OnceLock<Option<ProcessIdentity>> = std::sync::OnceLock::new();
        THIS.get_or_init(|| ProcessIdentity::of(std::process::id()))
            .clone()
    }
}

/// When process `pid` started, in clock ticks since boot: field 22 of
/// `/proc/PID/stat`, counted after the parenthesised command name (which
/// may hold spaces and parentheses itself).
pub fn process_started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Lease {
    pub fn expired(&self) -> bool {
        self.expires <= unix_now()
    }

    /// Whether `self` (held) lets `want` in: free when expired, when it is
    /// the same holder renewing, or when `want` takes over a named deploy.
    pub fn yields_to(&self, want: &Lease, take_over: Option<&str>) -> bool {
        self.expired() || self.id == want.id || take_over == Some(self.id.as_str())
    }

    pub fn renewed(&self, ttl: Duration) -> Lease {
        Lease {
            expires: unix_now() + ttl.as_secs().max(1),
            ..self.clone()
        }
    }
}

/// What an acquire attempt found: ours now, or someone else's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acquired {
    pub acquired: bool,
    pub holder: Lease,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AcquireRequest {
    pub lease: Lease,
    #[serde(default)]
    pub take_over: Option<String>,
}

impl CfClient {
    /// Local platform: acquires or renews the lease on `lease.app`.
    pub async fn lease_local(
        &self,
        lease: &Lease,
        take_over: Option<&str>,
    ) -> Result<Acquired, PlatformError> {
        let body = AcquireRequest {
            lease: lease.clone(),
            take_over: take_over.map(String::from),
        };
        self.call(
            reqwest::Method::PUT,
            &format!("/bluegreen/v1/locks/{}", lease.app),
            Some(&body),
        )
        .await
    }

    /// Local platform: the current holder, if any (expired or not).
    pub async fn lease_holder_local(&self, app: &str) -> Result<Option<Lease>, PlatformError> {
        let v: serde_json::Value = self.get(&format!("/bluegreen/v1/locks/{app}")).await?;
        Ok(serde_json::from_value(v["holder"].clone()).unwrap_or(None))
    }

    /// Local platform: releases the lease if `id` holds it (any holder with `None`).
    pub async fn release_local(&self, app: &str, id: Option<&str>) -> Result<bool, PlatformError> {
        let path = match id {
            Some(id) => format!("/bluegreen/v1/locks/{app}?id={id}"),
            None => format!("/bluegreen/v1/locks/{app}?force=true"),
        };
        let v: serde_json::Value = self
            .call::<(), _>(reqwest::Method::DELETE, &path, None)
            .await?;
        Ok(v["released"].as_bool().unwrap_or(false))
    }
}

/// The lease store the local daemon serves (`/bluegreen/v1/locks/{app}`).
pub fn decide(held: Option<Lease>, req: &AcquireRequest) -> Acquired {
    match held {
        Some(h) if !h.yields_to(&req.lease, req.take_over.as_deref()) => Acquired {
            acquired: false,
            holder: h,
        },
        _ => Acquired {
            acquired: true,
            holder: req.lease.clone(),
        },
    }
}
