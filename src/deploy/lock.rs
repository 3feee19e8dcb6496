//! The per-app deploy lock, held as a renewed lease (see
//! `platform::lease`): acquired after validation, renewed in the background
//! while the deploy works, released at the end. A runner that dies stops
//! renewing, so its lease expires on its own; `recover` of the same deploy
//! takes it over at once, and `unlock --force` clears it by hand.

use crate::config::PlatformKind;
use crate::platform::client::CfClient;
use crate::platform::lease::{Acquired, Lease, unix_now};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Long enough to ride out a slow API call, short enough that a dead
/// runner's lock frees itself soon.
pub const TTL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.holder))]
pub struct Locked {
    pub holder: Lease,
}

/// The deploy's lease is gone (taken by another deploy, or not renewed in
/// time): it stops before its next step rather than act beside another.
#[derive(Debug, thiserror::Error)]
#[error(
    "lost the deploy lock of `{app}`: {why}. Stopped before `{step}`, changing nothing \
     more; once the other holder is done, `bluegreen recover` finishes or rolls back this deploy"
)]
pub struct LostLock {
    pub app: String,
    pub why: String,
    pub step: String,
}

/// Whether the holder of `h` may still be at work: on this host, its
/// process is alive; elsewhere nobody can tell, so until its lease expires.
pub fn may_be_alive(h: &Lease) -> bool {
    if h.host == hostname() {
        h.pid != std::process::id() && crate::platform::local::pid_alive(h.pid)
    } else {
        h.expires > unix_now()
    }
}

/// This machine's name (`gethostname(2)`, not `/proc`: portable).
pub fn hostname() -> String {
    let name = gethostname::gethostname()
        .to_string_lossy()
        .trim()
        .to_string();
    if name.is_empty() {
        "unknown-host".into()
    } else {
        name
    }
}

/// Who holds the lock, and what to do about it.
pub fn describe(h: &Lease) -> String {
    let left = h.expires.saturating_sub(unix_now());
    let mut s = format!(
        "app `{}` is locked by deploy {} (`{}`, pid {} on {}, since {}; lease expires in {left}s)",
        h.app, h.id, h.command, h.pid, h.host, h.since
    );
    if h.host == hostname() && !crate::platform::local::pid_alive(h.pid) {
        s.push_str(
            "\n  that process is gone: run `bluegreen recover` to finish or roll back its deploy, \
             or `bluegreen unlock --force`",
        );
    } else {
        s.push_str(
            "\n  wait for it (`--wait 10m`), or if its holder is gone, `bluegreen unlock --force`",
        );
    }
    s
}

/// The lease's renewals, stopped when dropped.
pub struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Clone)]
pub struct DeployLock {
    client: CfClient,
    kind: PlatformKind,
    /// CF keeps the lease on the blue app.
    app_guid: String,
    lease: Lease,
    /// Why the lease was lost, once the heartbeat or a check found out.
    lost: Arc<Mutex<Option<String>>>,
}

impl DeployLock {
    pub fn new(client: CfClient, kind: PlatformKind, app_guid: &str, lease: Lease) -> DeployLock {
        DeployLock {
            client,
            kind,
            app_guid: app_guid.into(),
            lease,
            lost: Arc::default(),
        }
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    async fn try_once(&self, take_over: Option<&str>) -> anyhow::Result<Acquired> {
        let lease = self.lease.renewed(TTL);
        Ok(match self.kind {
            PlatformKind::Local => self.client.lease_local(&lease, take_over).await?,
            PlatformKind::Cf => {
                self.client
                    .lease_cf(&self.app_guid, &lease, take_over)
                    .await?
            }
        })
    }

    /// Acquires the lock, polling up to `wait` while someone else holds it.
    pub async fn acquire(&self, wait: Duration, take_over: Option<&str>) -> anyhow::Result<()> {
        let deadline = Instant::now() + wait;
        loop {
            let got = self.try_once(take_over).await?;
            if got.acquired {
                return Ok(());
            }
            // A runner on this host whose process is gone holds nothing any
            // more (killed, or its platform died under it): its lease is
            // taken over rather than waited out, as `recover` would; an
            // interrupted journal of it is recovered next.
            if take_over.is_none()
                && got.holder.host == hostname()
                && !may_be_alive(&got.holder)
                && self.try_once(Some(&got.holder.id)).await?.acquired
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Locked { holder: got.holder }.into());
            }
            tokio::time::sleep(Duration::from_secs(1).min(wait)).await;
        }
    }

    /// Renews the lease every third of its TTL while the returned guard
    /// lives (dropping it stops the renewals, on every way out). A renewal
    /// that finds another holder, or renewals failing for so long that the
    /// lease may have expired, mark the lock lost (see `ensure_held`).
    #[must_use = "the heartbeat stops when the guard is dropped"]
    pub fn heartbeat(&self) -> Heartbeat {
        let me = self.clone();
        Heartbeat(tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(TTL / 3).await;
                let why = match me.try_once(None).await {
                    Ok(got) if got.acquired => {
                        renewed = Instant::now();
                        continue;
                    }
                    Ok(got) => format!("deploy {} holds it now", got.holder.id),
                    Err(_) if renewed.elapsed() < TTL - TTL / 6 => continue,
                    Err(e) => format!(
                        "it could not be renewed for {}s, so it may have expired: {e:#}",
                        renewed.elapsed().as_secs()
                    ),
                };
                *me.lost.lock().unwrap() = Some(why);
                return;
            }
        }))
    }

    /// Whether this deploy still holds its lease. Locally the daemon is
    /// asked each time (a cheap call), so a lock taken over is noticed
    /// before the next step; on CF the heartbeat's last word counts.
    pub async fn ensure_held(&self) -> Result<(), String> {
        if let Some(why) = self.lost.lock().unwrap().clone() {
            return Err(why);
        }
        if self.kind == PlatformKind::Local {
            let current = self.client.lease_holder_local(&self.lease.app).await;
            let why = match current {
                Ok(Some(h)) if h.id == self.lease.id => return Ok(()),
                Ok(Some(h)) => {
                    format!("deploy {} (pid {} on {}) holds it now", h.id, h.pid, h.host)
                }
                Ok(None) => "it was released (`unlock --force`?)".to_string(),
                Err(e) => format!("the platform could not say who holds it: {e}"),
            };
            *self.lost.lock().unwrap() = Some(why.clone());
            return Err(why);
        }
        Ok(())
    }

    pub async fn release(&self) -> anyhow::Result<bool> {
        Ok(match self.kind {
            PlatformKind::Local => {
                self.client
                    .release_local(&self.lease.app, Some(&self.lease.id))
                    .await?
            }
            PlatformKind::Cf => {
                self.client
                    .release_cf(&self.app_guid, Some(&self.lease.id))
                    .await?
            }
        })
    }
}

/// The current holder, if any.
pub async fn holder(
    client: &CfClient,
    kind: PlatformKind,
    app: &str,
    app_guid: &str,
) -> anyhow::Result<Option<Lease>> {
    Ok(match kind {
        PlatformKind::Local => client.lease_holder_local(app).await?,
        PlatformKind::Cf => client.lease_holder_cf(app_guid).await?,
    })
}

/// Clears the lock whoever holds it.
pub async fn force_unlock(
    client: &CfClient,
    kind: PlatformKind,
    app: &str,
    app_guid: &str,
) -> anyhow::Result<bool> {
    Ok(match kind {
        PlatformKind::Local => client.release_local(app, None).await?,
        PlatformKind::Cf => client.release_cf(app_guid, None).await?,
    })
}
