//! A bounded map with CLOCK (second-chance) eviction: the shared mechanism of the resolved-handle
//! and open-file caches (keyed by wire handle bytes) and the inode-handle cache (keyed by an
//! inode's identity).
//!
//! Every operation is O(1) amortised: a hit only sets a bit, and eviction walks a ring of keys,
//! giving each recently used entry one more round. That approximates LRU without reordering a
//! list on every hit, which matters because hits are the common case and happen under the lock.

use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use bytes::Bytes;

struct Slot<V> {
    value: V,
    referenced: bool,
}

struct Inner<K, V> {
    map: HashMap<K, Slot<V>>,
    /// Eviction order. May hold keys already removed from `map` (skipped when reached); it is
    /// rebuilt when such leftovers make it twice the capacity.
    ring: VecDeque<K>,
}

/// A bounded cache; values are cloned out (they are `Arc`s or `Bytes` in practice).
pub struct ClockCache<V, K = Bytes> {
    inner: Mutex<Inner<K, V>>,
    capacity: usize,
}

impl<V: Clone, K: Hash + Eq + Clone> ClockCache<V, K> {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        ClockCache { inner: Mutex::new(Inner { map: HashMap::new(), ring: VecDeque::new() }), capacity }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // A panic while holding the lock leaves the map consistent (every step is a single
        // insert or remove), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value for `key`, marking it recently used.
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let mut inner = self.lock();
        let slot = inner.map.get_mut(key)?;
        slot.referenced = true;
        Some(slot.value.clone())
    }

    /// The value for `key` if `keep` accepts it, marking it used; otherwise the entry is left
    /// alone and `None` is returned.
    pub fn get_if<Q: Hash + Eq + ?Sized>(&self, key: &Q, keep: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let mut inner = self.lock();
        let slot = inner.map.get_mut(key)?;
        if !keep(&slot.value) {
            return None;
        }
        slot.referenced = true;
        Some(slot.value.clone())
    }

    /// Inserts or replaces `key`. Returns what left the cache (the replaced value and any
    /// evicted ones), so the caller can drop them outside the lock: dropping may close or sync a
    /// file.
    pub fn insert(&self, key: K, value: V) -> Vec<V> {
        let mut out = Vec::new();
        let mut inner = self.lock();
        match inner.map.entry(key.clone()) {
            Entry::Occupied(mut e) => {
                let old = std::mem::replace(e.get_mut(), Slot { value, referenced: true });
                out.push(old.value);
                return out;
            }
            Entry::Vacant(e) => {
                e.insert(Slot { value, referenced: false });
            }
        }
        inner.ring.push_back(key);
        while inner.map.len() > self.capacity {
            let Some(candidate) = inner.ring.pop_front() else { break };
            let Some(slot) = inner.map.get_mut(&candidate) else { continue };
            if slot.referenced {
                slot.referenced = false;
                inner.ring.push_back(candidate);
            } else if let Some(slot) = inner.map.remove(&candidate) {
                out.push(slot.value);
            }
        }
        if inner.ring.len() > 2 * self.capacity {
            let Inner { map, ring } = &mut *inner;
            ring.retain(|k| map.contains_key(k));
        }
        out
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        self.lock().map.remove(key).map(|s| s.value)
    }

    /// Removes and returns every entry for which `drop_it` is true.
    pub fn take_where(&self, mut drop_it: impl FnMut(&V) -> bool) -> Vec<V> {
        let mut inner = self.lock();
        let keys: Vec<K> =
            inner.map.iter().filter(|(_, s)| drop_it(&s.value)).map(|(k, _)| k.clone()).collect();
        keys.iter().filter_map(|k| inner.map.remove(k)).map(|s| s.value).collect()
    }

    /// A copy of every value (for sweeps that must not hold the lock while they work).
    pub fn values(&self) -> Vec<(K, V)> {
        self.lock().map.iter().map(|(k, s)| (k.clone(), s.value.clone())).collect()
    }

    /// Empties the cache, returning the values.
    pub fn drain(&self) -> Vec<V> {
        let mut inner = self.lock();
        inner.ring.clear();
        inner.map.drain().map(|(_, s)| s.value).collect()
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Bytes {
        Bytes::copy_from_slice(&i.to_be_bytes())
    }

    #[test]
    fn bounded_and_evicts_unreferenced_first() {
        let c = ClockCache::new(3);
        for i in 0..3 {
            assert!(c.insert(key(i), i).is_empty());
        }
        // 0 is used, so 1 (the oldest unused) goes first.
        assert_eq!(c.get(&key(0)), Some(0));
        assert_eq!(c.insert(key(3), 3), vec![1]);
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(&key(1)), None);
        assert_eq!(c.get(&key(0)), Some(0));
        assert_eq!(c.insert(key(4), 4), vec![2]);
    }

    #[test]
    fn replace_returns_the_old_value_and_keeps_the_size() {
        let c = ClockCache::new(2);
        c.insert(key(1), 10);
        assert_eq!(c.insert(key(1), 11), vec![10]);
        assert_eq!(c.len(), 1);
        assert_eq!(c.get(&key(1)), Some(11));
    }

    #[test]
    fn removals_and_churn_keep_the_ring_bounded() {
        let c = ClockCache::new(8);
        for i in 0..10_000u32 {
            c.insert(key(i), i);
            if i % 3 == 0 {
                c.remove(&key(i));
            }
            if i % 5 == 0 {
                c.get(&key(i.saturating_sub(2)));
            }
            assert!(c.len() <= 8);
            assert!(c.lock().ring.len() <= 2 * 8 + 1, "ring grew to {}", c.lock().ring.len());
        }
        let taken = c.take_where(|v| v % 2 == 0);
        assert!(taken.iter().all(|v| v % 2 == 0));
        assert!(c.values().iter().all(|(_, v)| v % 2 == 1));
        assert!(!taken.is_empty());
        assert!(!c.drain().is_empty());
        assert!(c.is_empty());
    }

    #[test]
    fn get_if_leaves_rejected_entries() {
        let c = ClockCache::new(2);
        c.insert(key(1), 1);
        assert_eq!(c.get_if(&key(1), |v| *v == 2), None);
        assert_eq!(c.get_if(&key(1), |v| *v == 1), Some(1));
        assert_eq!(c.len(), 1);
    }
}
