//! The deploy lock as a lease: who holds it (deploy id, host, pid, command)
//! and until when. The holder renews it while it works, so a runner that
//! died stops holding it once the lease expires, and its details let the
//! next user see whether it is gone.
//!
//! Two stores: the local platform keeps leases in its daemon and checks and
//! writes them under one mutex (no race); on Cloud Foundry the lease is an
//! annotation on the blue app, written and then read back after a pause.
//! CF has no compare-and-swap on metadata, so two runners whose read and
//! write both fall inside that pause can both believe they hold it; the
//! README documents this window. Runners' clocks differ, so the annotation
//! holds its expiry in the server's time (from each response's `Date`), and
//! a lease read back is shifted onto this machine's clock.

use super::PlatformError;
use super::client::CfClient;
use super::v3;
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The annotation that carries a lease on Cloud Foundry.
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

/// How long the CF store waits between writing a lease and reading it back.
const SETTLE: Duration = Duration::from_millis(1500);

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

    /// Cloud Foundry: the lease annotation on `app_guid`, if any, with its
    /// expiry on this machine's clock.
    pub async fn lease_holder_cf(&self, app_guid: &str) -> Result<Option<Lease>, PlatformError> {
        Ok(self.lease_and_skew(app_guid).await?.0)
    }

    /// The lease (expiry on our clock) and how far the server's clock is
    /// ahead of ours.
    async fn lease_and_skew(&self, app_guid: &str) -> Result<(Option<Lease>, i64), PlatformError> {
        let path = format!("/v3/apps/{app_guid}");
        let resp = self
            .request::<()>(reqwest::Method::GET, &path, None)
            .await?;
        let skew = skew(resp.headers().get(reqwest::header::DATE));
        let app: v3::App = resp.json().await.map_err(|e| PlatformError::Http {
            method: "GET".into(),
            url: path,
            message: format!("unexpected response body: {}", e.without_url()),
        })?;
        let lease = app
            .metadata
            .annotations
            .get(ANNOTATION)
            .cloned()
            .flatten()
            .and_then(|s| serde_json::from_str::<Lease>(&s).ok())
            .map(|l| Lease {
                expires: shift(l.expires, -skew),
                ..l
            });
        Ok((lease, skew))
    }

    /// Cloud Foundry: write, wait, read back (see the module doc's race window).
    pub async fn lease_cf(
        &self,
        app_guid: &str,
        lease: &Lease,
        take_over: Option<&str>,
    ) -> Result<Acquired, PlatformError> {
        let (held, skew) = self.lease_and_skew(app_guid).await?;
        if let Some(held) = held
            && !held.yields_to(lease, take_over)
        {
            return Ok(Acquired {
                acquired: false,
                holder: held,
            });
        }
        let fresh = lease.id != take_over.unwrap_or_default();
        let on_server = Lease {
            expires: shift(lease.expires, skew),
            ..lease.clone()
        };
        self.write_annotation(
            app_guid,
            Some(serde_json::to_string(&on_server).expect("json")),
        )
        .await?;
        if fresh {
            tokio::time::sleep(SETTLE).await;
        }
        let now = self.lease_holder_cf(app_guid).await?;
        Ok(match now {
            Some(h) if h.id != lease.id => Acquired {
                acquired: false,
                holder: h,
            },
            _ => Acquired {
                acquired: true,
                holder: lease.clone(),
            },
        })
    }

    /// Cloud Foundry: removes the lease if `id` holds it (any holder with `None`).
    pub async fn release_cf(
        &self,
        app_guid: &str,
        id: Option<&str>,
    ) -> Result<bool, PlatformError> {
        match self.lease_holder_cf(app_guid).await? {
            Some(h) if id.is_none_or(|id| id == h.id) => {
                self.write_annotation(app_guid, None).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn write_annotation(
        &self,
        app_guid: &str,
        value: Option<String>,
    ) -> Result<(), PlatformError> {
        let mut metadata = v3::Metadata::default();
        metadata.annotations.insert(ANNOTATION.into(), value);
        self.set_metadata(app_guid, &metadata).await?;
        Ok(())
    }
}

/// Seconds the server's clock (a response's `Date`) is ahead of ours. The
/// header has whole seconds, so within 2 s the clocks count as agreeing.
fn skew(date: Option<&reqwest::header::HeaderValue>) -> i64 {
    let Some(server) = date
        .and_then(|d| d.to_str().ok())
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    else {
        return 0;
    };
    let skew = server.as_secs() as i64 - unix_now() as i64;
    if skew.abs() <= 2 { 0 } else { skew }
}

fn shift(t: u64, by: i64) -> u64 {
    t.saturating_add_signed(by)
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
