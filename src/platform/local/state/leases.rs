//! The deploy lock on the local platform: one lease per app name, read,
//! decided (`lease::decide`) and written in one store transaction, so two
//! deploys asking at once cannot both find it free. This is the
//! compare-and-swap Cloud Foundry's metadata lacks (see `platform::lease`).

use super::super::records::LEASE;
use super::{ApiErr, ApiResult, Platform};
use crate::platform::lease::{AcquireRequest, Acquired, Lease, decide};

/// What a release found: whether it let go, and who held the lease.
pub struct Released {
    pub released: bool,
    pub holder: Option<Lease>,
}

impl Platform {
    /// The lease on `app`, expired or not.
    pub fn lease_holder(&self, app: &str) -> ApiResult<Option<Lease>> {
        self.transaction(|tx| tx.find(LEASE, app))
    }

    /// Acquires or renews the lease on `app` unless someone else holds it.
    pub fn acquire_lease(&self, app: &str, req: &AcquireRequest) -> ApiResult<Acquired> {
        if req.lease.app != app {
            return Err(ApiErr::unprocessable(format!(
                "the lease is for {}, not {app}",
                req.lease.app
            )));
        }
        self.transaction(|tx| {
            let decision = decide(tx.find(LEASE, app)?, req);
            if decision.acquired {
                tx.put(LEASE, app, &req.lease)?;
            }
            Ok(decision)
        })
    }

    /// Releases the lease on `app` if deploy `id` holds it, or whoever holds
    /// it with `force`.
    pub fn release_lease(&self, app: &str, id: Option<&str>, force: bool) -> ApiResult<Released> {
        self.transaction(|tx| {
            let holder: Option<Lease> = tx.find(LEASE, app)?;
            let released = match &holder {
                Some(h) if force || id == Some(h.id.as_str()) => {
                    tx.delete(LEASE, app)?;
                    true
                }
                _ => false,
            };
            Ok(Released { released, holder })
        })
    }
}
