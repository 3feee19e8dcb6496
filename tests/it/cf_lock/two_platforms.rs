//! One process holding locks on two platforms: the same app and deploy id
//! on each is a lock of its own. A process-wide table of held leases keyed
//! by app and deploy id alone let an acquire on the second platform nest in
//! the guard held on the first: it renewed the first platform's lock app and
//! answered "acquired" while another deploy held the second's. That is how
//! the two race tests above, run side by side in one process under load,
//! saw both runners of a round win (each test's round-3 runners had the ids
//! of the other test's) and a release that deleted nothing.

use super::{lock_apps, runner, space};
use crate::platform::start;
use bluegreen::deploy::lock::{LockGuard, Locked, Store};
use bluegreen::platform::lease::{Lease, unix_now};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_deploy_id_on_another_platform_is_another_lock() {
    let (tmp_a, tmp_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (running_a, a) = start(tmp_a.path()).await;
    let (running_b, b) = start(tmp_b.path()).await;
    let store_a = Store::Cf {
        space_guid: space(&a).await,
    };
    let space_b = space(&b).await;
    let store_b = Store::Cf {
        space_guid: space_b.clone(),
    };
    // On B, another deploy holds the lock.
    let other = Lease {
        expires: unix_now() + 60,
        ..runner("other", "runner-2")
    };
    assert!(b.lease_cf(&space_b, &other, None).await.unwrap().acquired);

    let lease = runner("d1", "runner-0");
    let on_a = LockGuard::acquire(a.clone(), store_a, lease.clone(), Duration::ZERO, None)
        .await
        .unwrap();
    let err = LockGuard::acquire(
        b.clone(),
        store_b.clone(),
        lease.clone(),
        Duration::ZERO,
        None,
    )
    .await
    .err()
    .expect("refused on B, where deploy `other` holds the lock");
    let locked = err.downcast_ref::<Locked>().expect("a Locked error");
    assert_eq!(locked.holder.id, "other", "{err:#}");

    // Free on B, d1 takes B's lock with a lock app of its own there; each
    // release gives up its own platform's lock and leaves the other's.
    assert!(store_b.release(&b, "shop", None).await.unwrap());
    let on_b = LockGuard::acquire(b.clone(), store_b.clone(), lease, Duration::ZERO, None)
        .await
        .unwrap();
    let holder = store_b.holder(&b, "shop").await.unwrap().unwrap();
    assert_eq!(holder.id, "d1");
    assert_eq!(lock_apps(&b).await.len(), 1);
    assert!(on_b.release().await.unwrap());
    assert!(lock_apps(&b).await.is_empty());
    assert_eq!(lock_apps(&a).await.len(), 1);
    assert!(on_a.release().await.unwrap());
    assert!(lock_apps(&a).await.is_empty());
    running_a.shutdown().await;
    running_b.shutdown().await;
}
