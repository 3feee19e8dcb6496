//! The per-app deploy lock, held as a renewed lease (see
//! `platform::lease`) through one guard, `LockGuard`: acquired after
//! validation and before anything is created on the platform, renewed in
//! the background while the deploy works, released by consuming the guard
//! at the end. A runner that dies stops renewing, so its lease expires on
//! its own; `recover` of the same deploy takes it over at once, and
//! `unlock --force` clears it by hand. How long a holder trusts its lease
//! between renewals is in `heartbeat`.

use crate::platform::client::CfClient;
use crate::platform::lease::{Lease, unix_now};
use heartbeat::{Standing, heartbeat};
use nesting::{Key, Nesting};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

mod heartbeat;
mod holder;
mod nesting;
mod store;

use holder::{Holder, judge};
pub use store::{Store, force_unlock, holder};

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

/// Whether the holder of `h` may still be at work: on this host and in
/// this pid namespace, its process runs (this process only while it holds
/// a lease of that app and deploy id itself, on any platform, since `h`
/// does not say where it was read: otherwise our pid is a dead runner's,
/// reused); elsewhere, or in another container, nobody here can tell, so
/// until its lease expires. See `holder`.
pub fn may_be_alive(h: &Lease) -> bool {
    match judge(h) {
        Holder::Elsewhere | Holder::OtherNamespace => h.expires > unix_now(),
        Holder::Running if h.pid == std::process::id() => HELD.holds_anywhere(&h.app, &h.id),
        Holder::Running => true,
        Holder::Gone(_) => false,
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
    match judge(h) {
        Holder::Gone(why) => s.push_str(&format!(
            "\n  that process is gone ({why}): run `bluegreen recover` to finish or roll back \
             its deploy, or `bluegreen unlock --force`"
        )),
        Holder::OtherNamespace => s.push_str(
            "\n  it runs in another pid namespace on this machine (another container?), so \
             whether it is still at work cannot be told from here: its lease is left to expire \
             (`--wait 10m`); if you know it is gone, `bluegreen unlock --force`",
        ),
        Holder::Elsewhere | Holder::Running => s.push_str(
            "\n  wait for it (`--wait 10m`), or if its holder is gone, `bluegreen unlock --force`",
        ),
    }
    s
}

/// What every guard of one lease in this process shares; dropping the
/// last guard drops it and so stops the heartbeat.
struct Held {
    client: CfClient,
    store: Store,
    lease: Lease,
    /// Whether it was lost, and until when it is trusted.
    standing: Arc<Standing>,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

impl Held {
    fn key(&self) -> Key {
        key(&self.client, &self.store, &self.lease)
    }
}

/// Which lease `lease` is: the same app and deploy id on another platform
/// or in another space is another lock (see `nesting`).
fn key(client: &CfClient, store: &Store, lease: &Lease) -> Key {
    let place = match store {
        Store::Local => format!("{} local", client.api()),
        Store::Cf { space_guid } => format!("{} space {space_guid}", client.api()),
    };
    Key {
        place,
        app: lease.app.clone(),
        id: lease.id.clone(),
    }
}

/// The leases this process holds (see `nesting`).
static HELD: LazyLock<Nesting<Held>> = LazyLock::new(Nesting::default);

/// The app's deploy lock, held: acquired with its heartbeat running, and
/// given up by `release`, which consumes it.
///
/// Dropping a guard without `release` only stops the heartbeat: the lease
/// stays until it expires (`TTL`), as after a crash. It is not released
/// there because `Drop` cannot wait on the platform, and because a deploy
/// that ended without releasing was interrupted (its journal is still
/// there): its lease tells others so until `recover` (which takes over the
/// same deploy id at once) or a deploy on this host (which takes over a
/// lease whose process is gone) picks it up.
#[must_use = "dropping the guard stops its heartbeat; `release` it when done"]
pub struct LockGuard {
    held: Arc<Held>,
}

impl LockGuard {
    /// Acquires `lease` in `store`, polling up to `wait` while someone else
    /// holds it (`take_over`: the deploy id whose lease `recover` may take
    /// over), and starts renewing it. Re-entrant: while this process holds
    /// the same lease (same app and deploy id, on the same platform and in
    /// the same space), this renews it and returns a guard nested in that
    /// one, whose `release` leaves the lease held.
    pub async fn acquire(
        client: CfClient,
        store: Store,
        lease: Lease,
        wait: Duration,
        take_over: Option<&str>,
    ) -> anyhow::Result<LockGuard> {
        let key = key(&client, &store, &lease);
        if let Some(held) = HELD.enter(&key) {
            let started = Instant::now();
            let got = held.store.try_once(&held.client, &held.lease, None).await?;
            if got.acquired {
                held.standing.renewed(started);
                return Ok(LockGuard { held });
            }
            held.standing
                .lose(format!("deploy {} holds it now", got.holder.id));
            return Err(Locked { holder: got.holder }.into());
        }
        let deadline = Instant::now() + wait;
        let mut started;
        loop {
            started = Instant::now();
            let got = store.try_once(&client, &lease, take_over).await?;
            if got.acquired {
                break;
            }
            // A runner on this host whose process is gone holds nothing any
            // more (killed, or its platform died under it): its lease is
            // taken over rather than waited out, as `recover` would; an
            // interrupted journal of it is recovered next.
            if take_over.is_none()
                && got.holder.host == hostname()
                && !may_be_alive(&got.holder)
                && store
                    .try_once(&client, &lease, Some(&got.holder.id))
                    .await?
                    .acquired
            {
                break;
            }
            if Instant::now() >= deadline {
                return Err(Locked { holder: got.holder }.into());
            }
            tokio::time::sleep(Duration::from_secs(1).min(wait)).await;
        }
        let standing = Standing::new(started);
        let heartbeat = heartbeat(
            client.clone(),
            store.clone(),
            lease.clone(),
            standing.clone(),
        );
        let held = Arc::new(Held {
            client,
            store,
            lease,
            standing,
            heartbeat,
        });
        HELD.insert(key, &held);
        Ok(LockGuard { held })
    }

    /// The same lock again, nested in this guard: for a run under this
    /// deploy's lease that releases "its" lock when done (a deploy
    /// recovering an earlier one first), leaving this guard holding it.
    pub async fn reenter(&self) -> anyhow::Result<LockGuard> {
        let h = &self.held;
        LockGuard::acquire(
            h.client.clone(),
            h.store.clone(),
            h.lease.clone(),
            Duration::ZERO,
            None,
        )
        .await
    }

    pub fn lease(&self) -> &Lease {
        &self.held.lease
    }

    /// Whether this deploy still holds its lease. Locally the daemon is
    /// asked each time (a cheap call), so a lock taken over is noticed
    /// before the next step; on CF the heartbeat's last word counts, and a
    /// lease not renewed in time is not trusted (see `heartbeat`).
    pub async fn ensure_held(&self) -> Result<(), String> {
        let h = &self.held;
        if h.store != Store::Local {
            return h.standing.check();
        }
        if let Some(why) = h.standing.lost() {
            return Err(why);
        }
        let current = h.client.lease_holder_local(&h.lease.app).await;
        let why = match current {
            Ok(Some(l)) if l.id == h.lease.id => return Ok(()),
            Ok(Some(l)) => {
                format!("deploy {} (pid {} on {}) holds it now", l.id, l.pid, l.host)
            }
            Ok(None) => "it was released (`unlock --force`?)".to_string(),
            Err(e) => format!("the platform could not say who holds it: {e}"),
        };
        h.standing.lose(why.clone());
        Err(why)
    }

    /// Gives the lock up: stops the heartbeat and releases the lease;
    /// whether this deploy still held it. A guard nested in another one
    /// (see `acquire`) leaves the lease to the outer guard.
    pub async fn release(self) -> anyhow::Result<bool> {
        let h = &self.held;
        if !HELD.leave(&h.key(), h) {
            return Ok(h.standing.lost().is_none());
        }
        h.heartbeat.abort();
        h.store
            .release(&h.client, &h.lease.app, Some(&h.lease.id))
            .await
    }
}
