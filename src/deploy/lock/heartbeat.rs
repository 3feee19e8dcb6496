//! Renewing a held lease in the background, and how long a holder may trust
//! it. A lease written at `t` lasts until `t + TTL` by the server's clock,
//! and a taker may take it over after that; so the holder trusts it only
//! until `TTL - TTL/6` after the *start* of its last renewal that counted
//! (the sixth absorbs clock rounding and the call's own time). Past that,
//! even before a renewal has failed or come back, it stops before its next
//! step: on Cloud Foundry a lease taken over is not announced, and a
//! renewal hanging on an unreachable API must not keep a deploy going.

use super::{Store, TTL};
use crate::platform::client::CfClient;
use crate::platform::lease::Lease;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long after a counted renewal started the lease is trusted.
const TRUSTED: Duration = Duration::from_secs(TTL.as_secs() - TTL.as_secs() / 6);

/// What the heartbeat and the deploy's checks know of one held lease.
pub(super) struct Standing {
    /// Why the lease was lost, once the heartbeat or a check found out.
    lost: Mutex<Option<String>>,
    /// Until when the lease is trusted without another renewal.
    until: Mutex<Instant>,
}

impl Standing {
    /// A lease whose acquiring call started at `started`.
    pub fn new(started: Instant) -> Arc<Standing> {
        Arc::new(Standing {
            lost: Mutex::default(),
            until: Mutex::new(started + TRUSTED),
        })
    }

    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap().clone()
    }

    pub fn lose(&self, why: String) {
        self.lost.lock().unwrap().get_or_insert(why);
    }

    /// A renewal that started at `started` counted.
    pub fn renewed(&self, started: Instant) {
        let mut until = self.until.lock().unwrap();
        *until = (*until).max(started + TRUSTED);
    }

    fn lapsed(&self) -> bool {
        Instant::now() >= *self.until.lock().unwrap()
    }

    /// Whether the lease may still be trusted: not lost, and renewed
    /// recently enough (see the module doc); a lapse is lost for good.
    pub fn check(&self) -> Result<(), String> {
        if let Some(why) = self.lost() {
            return Err(why);
        }
        if self.lapsed() {
            let why = format!(
                "it was not renewed within {}s, so it may have expired and been taken over",
                TRUSTED.as_secs()
            );
            self.lose(why.clone());
            return Err(why);
        }
        Ok(())
    }
}

/// Renews `lease` every third of its TTL until aborted. A renewal that
/// finds another holder, or a lease that went unrenewed for too long, marks
/// the lock lost (see `LockGuard::ensure_held`).
pub(super) fn heartbeat(
    client: CfClient,
    store: Store,
    lease: Lease,
    standing: Arc<Standing>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(TTL / 3).await;
            if standing.check().is_err() {
                return;
            }
            let started = Instant::now();
            match store.try_once(&client, &lease, None).await {
                Ok(got) if got.acquired => standing.renewed(started),
                Ok(got) => {
                    standing.lose(format!("deploy {} holds it now", got.holder.id));
                    return;
                }
                Err(e) if standing.lapsed() => {
                    standing.lose(format!("it could not be renewed: {e:#}"));
                    return;
                }
                Err(_) => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_trusted_until_a_sixth_of_its_ttl_before_it_could_expire() {
        let fresh = Standing::new(Instant::now());
        assert_eq!(fresh.check(), Ok(()));

        // Acquired (or last renewed) by a call that started TRUSTED ago: it
        // could expire on the server within the sixth left, so not trusted,
        // and a renewal counted afterwards does not bring it back.
        let lapsed = Standing::new(Instant::now() - TRUSTED);
        let why = lapsed.check().unwrap_err();
        assert!(why.contains("not renewed within 50s"), "{why}");
        lapsed.renewed(Instant::now());
        assert_eq!(lapsed.check(), Err(why));

        // A renewal that counted moves the horizon; an older one never
        // moves it back.
        let renewed = Standing::new(Instant::now() - TRUSTED + Duration::from_secs(1));
        renewed.renewed(Instant::now());
        renewed.renewed(Instant::now() - TTL);
        assert_eq!(renewed.check(), Ok(()));
        renewed.lose("deploy d2 holds it now".into());
        renewed.lose("later news".into());
        assert_eq!(renewed.check(), Err("deploy d2 holds it now".into()));
    }
}
