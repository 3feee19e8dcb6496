//! Who may be closed when the router is full. Every open connection has a
//! slot that says since when it has been waiting on its client (an idle
//! keep-alive, a head or a body not arriving), or that it is not. At the
//! connection cap the accept loop closes those waiting longest, so clients
//! that stall, on purpose or not, can never keep fresh ones out: the
//! stalled and the fresh may come from one address (a NAT, a load
//! balancer), so it is the stall that is judged, never the address.
//! nginx does the same with idle keep-alive connections when it runs out.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::Notify;

/// Milliseconds since the first call, plus one (0 means "not waiting").
fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// One connection's state, shared with the accept loop.
#[derive(Default)]
pub(super) struct Slot {
    waiting_since: AtomicU64,
    evicted: AtomicBool,
    evict: Notify,
}

impl Slot {
    /// The connection now waits on its client, unless it already did.
    pub(super) fn waiting(&self) {
        let _ =
            self.waiting_since
                .compare_exchange(0, now_ms(), Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The client sent what was waited for; the connection is busy.
    pub(super) fn busy(&self) {
        self.waiting_since.store(0, Ordering::Relaxed);
    }

    /// Resolves when the accept loop chose this connection to close.
    pub(super) async fn evicted(&self) {
        let notified = self.evict.notified();
        if self.evicted.load(Ordering::SeqCst) {
            return;
        }
        notified.await
    }
}

/// Every open connection's slot.
#[derive(Clone, Default)]
pub(super) struct Stalls {
    slots: Arc<Mutex<HashMap<u64, Arc<Slot>>>>,
    next: Arc<AtomicU64>,
}

/// A connection's registration; leaves the registry when dropped.
pub(super) struct Registered {
    pub(super) slot: Arc<Slot>,
    id: u64,
    stalls: Stalls,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.stalls.slots.lock().unwrap().remove(&self.id);
    }
}

impl Stalls {
    /// Registers a new connection, waiting on its client from now.
    pub(super) fn register(&self) -> Registered {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let slot = Arc::new(Slot::default());
        slot.waiting();
        self.slots.lock().unwrap().insert(id, slot.clone());
        Registered {
            slot,
            id,
            stalls: self.clone(),
        }
    }

    /// Tells up to `n` of the connections waiting longest on their client
    /// to close; returns how many were told. Those already told are not
    /// counted again.
    pub(super) fn evict_oldest(&self, n: usize) -> usize {
        let slots = self.slots.lock().unwrap();
        let mut waiting: Vec<(u64, &Arc<Slot>)> = slots
            .values()
            .filter(|s| !s.evicted.load(Ordering::SeqCst))
            .map(|s| (s.waiting_since.load(Ordering::Relaxed), s))
            .filter(|(since, _)| *since > 0)
            .collect();
        waiting.sort_unstable_by_key(|(since, _)| *since);
        for (_, slot) in waiting.iter().take(n) {
            slot.evicted.store(true, Ordering::SeqCst);
            slot.evict.notify_one();
        }
        waiting.len().min(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_connections_waiting_longest_are_evicted_first_and_busy_ones_never() {
        let stalls = Stalls::default();
        let oldest = stalls.register();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let busy = stalls.register();
        busy.slot.busy();
        let younger = stalls.register();
        assert_eq!(stalls.evict_oldest(1), 1);
        tokio::time::timeout(std::time::Duration::from_secs(5), oldest.slot.evicted())
            .await
            .expect("the oldest was told");
        assert!(!younger.slot.evicted.load(Ordering::SeqCst));
        // The busy one is never chosen, the told one not twice.
        assert_eq!(stalls.evict_oldest(5), 1);
        assert!(younger.slot.evicted.load(Ordering::SeqCst));
        assert!(!busy.slot.evicted.load(Ordering::SeqCst));
        drop(oldest);
        assert_eq!(stalls.slots.lock().unwrap().len(), 2);
    }
}
