//! Where an app's lease is kept, and the calls on it that need no guard:
//! who holds it (`status`, `recover`) and clearing it (`unlock --force`).

use super::TTL;
use crate::config::PlatformKind;
use crate::platform::client::CfClient;
use crate::platform::lease::{Acquired, Lease};

/// Where an app's lease is kept. Neither store needs the app's own apps to
/// exist, so a first deploy holds the lock before it makes anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Store {
    /// The local daemon keeps leases by app name.
    Local,
    /// Cloud Foundry keeps it on the lock app `<app>-bluegreen-lock` in
    /// this space, which only one runner can create (`platform::lease::cf`).
    Cf { space_guid: String },
}

impl Store {
    pub fn of(kind: PlatformKind, space_guid: &str) -> Store {
        match kind {
            PlatformKind::Local => Store::Local,
            PlatformKind::Cf => Store::Cf {
                space_guid: space_guid.into(),
            },
        }
    }

    /// One attempt to acquire or renew `lease` for another `TTL`.
    pub(super) async fn try_once(
        &self,
        client: &CfClient,
        lease: &Lease,
        take_over: Option<&str>,
    ) -> anyhow::Result<Acquired> {
        let lease = lease.renewed(TTL);
        Ok(match self {
            Store::Local => client.lease_local(&lease, take_over).await?,
            Store::Cf { space_guid } => client.lease_cf(space_guid, &lease, take_over).await?,
        })
    }

    /// The current holder of `app`'s lock, if any.
    pub async fn holder(&self, client: &CfClient, app: &str) -> anyhow::Result<Option<Lease>> {
        Ok(match self {
            Store::Local => client.lease_holder_local(app).await?,
            Store::Cf { space_guid } => client.lease_holder_cf(space_guid, app).await?,
        })
    }

    /// Releases `app`'s lease if deploy `id` holds it (whoever does with `None`).
    pub async fn release(
        &self,
        client: &CfClient,
        app: &str,
        id: Option<&str>,
    ) -> anyhow::Result<bool> {
        Ok(match self {
            Store::Local => client.release_local(app, id).await?,
            Store::Cf { space_guid } => client.release_cf(space_guid, app, id).await?,
        })
    }
}

/// The current holder, if any.
pub async fn holder(
    client: &CfClient,
    kind: PlatformKind,
    app: &str,
    space_guid: &str,
) -> anyhow::Result<Option<Lease>> {
    Store::of(kind, space_guid).holder(client, app).await
}

/// Clears the lock whoever holds it.
pub async fn force_unlock(
    client: &CfClient,
    kind: PlatformKind,
    app: &str,
    space_guid: &str,
) -> anyhow::Result<bool> {
    Store::of(kind, space_guid).release(client, app, None).await
}
