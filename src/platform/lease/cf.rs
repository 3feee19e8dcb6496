//! The lease on Cloud Foundry: a lock app, `<app>-bluegreen-lock` in the
//! deploy's space, created stopped and never pushed (it serves nothing and
//! uses no memory quota), its lease in the annotation `bluegreen.dev/lock`.
//!
//! Why an app: CF has no compare-and-swap on metadata (a `PATCH` merges
//! blindly; the v3 API has no `If-Match`), so a lease written and read back
//! lets two runners both believe they hold it. An app's name is unique in
//! its space (a unique index on space and name; a second `POST /v3/apps`
//! answers 422 `CF-UniquenessError`, 10016), so the create decides: of
//! runners racing to create the lock app, exactly one succeeds.
//!
//! - No lock app: create it, the lease in the same call.
//! - Held by this deploy id (renewal, or `recover` of that deploy): `PATCH`
//!   the annotation, counted only when it answered before the lease it
//!   renews could have expired (`renew_lock_app`).
//! - Held by a lease that yields (expired, or named by `take_over`): delete
//!   that lock app by the guid read, read again, race to create it. A taker
//!   never deletes a lock app a live holder re-created (its guid is new),
//!   and no counted renewal lands on a lock app after a taker saw it
//!   expired, so a lease taken over is never one its holder still renews.
//!
//! Runners' clocks differ, so the lease holds its expiry in the server's
//! time (from each response's `Date`); a lease read is shifted onto this
//! machine's clock.

use super::lock_app::{ROLE_LABEL, gone, lock_app_name, name_taken};
use super::{ANNOTATION, Acquired, Lease, unix_now};
use crate::platform::{PlatformError, client::CfClient, v3};
use std::time::{Duration, Instant};

/// How long a lock app's deletion (a job on CF) may take.
const DELETE_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads, deletes and creates one attempt may go through while other
/// runners change the lock app under it.
const ROUNDS: usize = 6;

/// How far an expiry shifted between clocks may be off: `Date` has whole
/// seconds, and a skew within 2 s counts as none (see `lock_app::skew`).
const SLACK: Duration = Duration::from_secs(4);

/// What a create of the lock app came to.
enum Created {
    Yes,
    /// Another runner's create won.
    Taken,
    /// No answer, or a server error: read again to know.
    Unknown(PlatformError),
}

/// What a renewal by `PATCH` came to.
enum Renewal {
    Counted,
    /// The lock app is gone (taken over, or `unlock --force`).
    Gone,
    /// Too close to expiry to renew, or answered too late to be sure it
    /// landed before: the lock app is taken over like anyone's.
    TakeOver,
}

impl CfClient {
    /// Acquires or renews `lease` (expiry on this machine's clock) in the
    /// space; `take_over` names a deploy whose lease may be taken although
    /// it has not expired.
    pub async fn lease_cf(
        &self,
        space_guid: &str,
        lease: &Lease,
        take_over: Option<&str>,
    ) -> Result<Acquired, PlatformError> {
        let mut unsure = None;
        for _ in 0..ROUNDS {
            let sent = Instant::now();
            let (found, skew) = self.read_lock_app(space_guid, &lease.app).await?;
            let on_server = Lease {
                expires: lease.expires.saturating_add_signed(skew),
                ..lease.clone()
            };
            let Some(found) = found else {
                match self.create_lock_app(space_guid, &on_server).await? {
                    Created::Yes => {
                        return Ok(Acquired {
                            acquired: true,
                            holder: lease.clone(),
                        });
                    }
                    Created::Taken => {}
                    Created::Unknown(e) => unsure = Some(e),
                }
                continue;
            };
            let held = &found.lease;
            if !held.yields_to(lease, take_over) {
                return Ok(Acquired {
                    acquired: false,
                    holder: held.clone(),
                });
            }
            if held.id == lease.id {
                match self
                    .renew_lock_app(&found.guid, held, &on_server, sent)
                    .await?
                {
                    Renewal::Counted => {
                        return Ok(Acquired {
                            acquired: true,
                            holder: lease.clone(),
                        });
                    }
                    Renewal::Gone => continue,
                    Renewal::TakeOver => {}
                }
            }
            // Expired, or named by `take_over`: taken over.
            self.delete_lock_app(&found.guid).await?;
        }
        Err(unsure.unwrap_or_else(|| PlatformError::Failed {
            what: format!("taking the lock app `{}`", lock_app_name(&lease.app)),
            detail: format!("it changed hands {ROUNDS} times while this runner tried"),
        }))
    }

    /// Cloud Foundry: the lease on the lock app of `app`, if any, with its
    /// expiry on this machine's clock.
    pub async fn lease_holder_cf(
        &self,
        space_guid: &str,
        app: &str,
    ) -> Result<Option<Lease>, PlatformError> {
        Ok(self
            .read_lock_app(space_guid, app)
            .await?
            .0
            .map(|f| f.lease))
    }

    /// Cloud Foundry: deletes the lock app if deploy `id` holds it (any
    /// holder's with `None`); whether one was deleted.
    pub async fn release_cf(
        &self,
        space_guid: &str,
        app: &str,
        id: Option<&str>,
    ) -> Result<bool, PlatformError> {
        let Some(found) = self.read_lock_app(space_guid, app).await?.0 else {
            return Ok(false);
        };
        if let Some(id) = id
            && found.lease.id != id
        {
            return Ok(false);
        }
        self.delete_lock_app(&found.guid).await?;
        Ok(true)
    }

    /// Renews `held` (this deploy's lease, read at `sent`) on the lock app
    /// `guid`. A renewal counts only if its answer came before the lease
    /// read could have expired: then it landed before any taker could see
    /// that lease expired, so no taker deletes a lock app renewed under it.
    /// One answered later (or a failure answered later) may have landed
    /// after a taker saw it expired, so the lock app is given up and taken
    /// over instead.
    async fn renew_lock_app(
        &self,
        guid: &str,
        held: &Lease,
        on_server: &Lease,
        sent: Instant,
    ) -> Result<Renewal, PlatformError> {
        let left = Duration::from_secs(held.expires.saturating_sub(unix_now()));
        let deadline = sent + left.saturating_sub(SLACK);
        if Instant::now() >= deadline {
            return Ok(Renewal::TakeOver);
        }
        let mut metadata = v3::Metadata::default();
        metadata
            .annotations
            .insert(ANNOTATION.into(), Some(lease_json(on_server)));
        let result = self.set_metadata(guid, &metadata).await;
        if Instant::now() >= deadline {
            return Ok(Renewal::TakeOver);
        }
        match result {
            Ok(_) => Ok(Renewal::Counted),
            Err(e) if gone(&e) => Ok(Renewal::Gone),
            Err(e) => Err(e),
        }
    }

    /// Creates the lock app carrying `lease`. A create is never repeated
    /// blindly (`POST` is not idempotent); when its answer was lost or a
    /// server error, the next read tells whether it landed.
    async fn create_lock_app(
        &self,
        space_guid: &str,
        lease: &Lease,
    ) -> Result<Created, PlatformError> {
        let body = serde_json::json!({
            "name": lock_app_name(&lease.app),
            "relationships": { "space": CfClient::to_one(space_guid) },
            "metadata": {
                "labels": { ROLE_LABEL: "lock" },
                "annotations": { ANNOTATION: lease_json(lease) },
            },
        });
        match self.post::<v3::App>("/v3/apps", &body).await {
            Ok(_) => Ok(Created::Yes),
            Err(e) if name_taken(&e) => Ok(Created::Taken),
            Err(e @ PlatformError::Http { .. }) => Ok(Created::Unknown(e)),
            Err(e @ PlatformError::Api { status: 500.., .. }) => Ok(Created::Unknown(e)),
            Err(e) => Err(e),
        }
    }

    /// Deletes the lock app `guid` (that one only: a lock app created since
    /// has another guid) and waits for CF's job, so a create after this
    /// does not find the name still taken; gone already is fine.
    async fn delete_lock_app(&self, guid: &str) -> Result<(), PlatformError> {
        match self.delete_app(guid, DELETE_TIMEOUT).await {
            Err(e) if gone(&e) => Ok(()),
            other => other,
        }
    }
}

fn lease_json(lease: &Lease) -> String {
    serde_json::to_string(lease).expect("a lease serializes")
}
