//! Which leases this process holds, so that taking the lock again under the
//! same deploy id (a deploy that recovers an earlier one first, under its
//! own lease) nests inside the guard already held instead of starting a
//! second heartbeat, and releasing the inner guard leaves the lease held
//! for the outer one. Kamal's `with_lock` is re-entrant the same way.
//!
//! A lease is known by where it is kept as well as by app and deploy id:
//! one process may hold locks on two platforms (or spaces), and the same
//! app and id there is another lock. Keyed by app and id alone, an acquire
//! on the second platform nested in the first one's guard and answered
//! "acquired" while another deploy held the second platform's lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Which lease a guard holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// Where it is kept: the platform's API and the store in it.
    pub place: String,
    pub app: String,
    /// The deploy id.
    pub id: String,
}

/// Live holders by key. Only weak references: a guard dropped without
/// release must still stop its heartbeat.
pub struct Nesting<T> {
    held: Mutex<HashMap<Key, Weak<T>>>,
}

impl<T> Default for Nesting<T> {
    fn default() -> Self {
        Nesting {
            held: Mutex::default(),
        }
    }
}

impl<T> Nesting<T> {
    /// The holder of `key` still alive in this process, shared.
    pub fn enter(&self, key: &Key) -> Option<Arc<T>> {
        self.held.lock().unwrap().get(key).and_then(Weak::upgrade)
    }

    /// Whether this process holds deploy `id`'s lease of `app` anywhere.
    pub fn holds_anywhere(&self, app: &str, id: &str) -> bool {
        let map = self.held.lock().unwrap();
        map.iter()
            .any(|(k, w)| k.app == app && k.id == id && w.strong_count() > 0)
    }

    /// Records `held` as the holder of `key` (the outermost guard).
    pub fn insert(&self, key: Key, held: &Arc<T>) {
        let mut map = self.held.lock().unwrap();
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(key, Arc::downgrade(held));
    }

    /// Whether `held` is the last guard of `key`, which then leaves the
    /// table: only that one releases the lease. Decided under the table's
    /// mutex, which `enter` also takes, so no guard nests in meanwhile.
    pub fn leave(&self, key: &Key, held: &Arc<T>) -> bool {
        let mut map = self.held.lock().unwrap();
        if Arc::strong_count(held) > 1 {
            return false;
        }
        if map
            .get(key)
            .is_some_and(|w| w.ptr_eq(&Arc::downgrade(held)))
        {
            map.remove(key);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str) -> Key {
        key_at("cf-a", id)
    }

    fn key_at(place: &str, id: &str) -> Key {
        Key {
            place: place.into(),
            app: "shop".into(),
            id: id.into(),
        }
    }

    #[test]
    fn a_nested_guard_shares_the_outer_one_and_only_the_last_leaves() {
        let n = Nesting::default();
        assert!(n.enter(&key("d1")).is_none());
        let outer = Arc::new(1);
        n.insert(key("d1"), &outer);
        let inner = n.enter(&key("d1")).expect("nests");
        assert!(Arc::ptr_eq(&outer, &inner));
        assert!(
            n.enter(&key("d2")).is_none(),
            "another deploy id never nests"
        );
        assert!(
            n.enter(&key_at("cf-b", "d1")).is_none(),
            "nor the same deploy id's lease on another platform"
        );
        assert!(n.holds_anywhere("shop", "d1"));
        assert!(!n.holds_anywhere("shop", "d2"));
        assert!(!n.leave(&key("d1"), &inner), "the outer guard still holds");
        drop(inner);
        assert!(n.leave(&key("d1"), &outer));
        drop(outer);
        assert!(n.enter(&key("d1")).is_none());
        assert!(!n.holds_anywhere("shop", "d1"));
    }

    #[test]
    fn a_guard_dropped_without_release_is_not_found_again() {
        let n = Nesting::default();
        let dropped = Arc::new(1);
        n.insert(key("d1"), &dropped);
        drop(dropped);
        assert!(n.enter(&key("d1")).is_none());
        // A new holder of the same key replaces the stale entry, and an
        // old guard's late leave does not remove the new one.
        let fresh = Arc::new(2);
        n.insert(key("d1"), &fresh);
        let stale = Arc::new(3);
        assert!(n.leave(&key("d1"), &stale));
        assert!(n.enter(&key("d1")).is_some());
    }
}
