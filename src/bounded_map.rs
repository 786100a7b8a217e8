//! A map of results that depend on nothing but their key (a parsed document
//! by its text, a checked token by its text), so nothing in it goes stale.
//! It holds at most `max_entries` entries weighing at most `max_bytes` in
//! all (each entry's weight is given when it is inserted) and empties when
//! either is reached: a client sending ever new keys costs the work the map
//! would have saved, never memory.
use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{Mutex, MutexGuard, PoisonError},
};

pub struct BoundedMap<K, V> {
    max_entries: usize,
    max_bytes: usize,
    entries: Mutex<Entries<K, V>>,
}

struct Entries<K, V> {
    map: HashMap<K, V>,
    bytes: usize,
}

impl<K: Eq + Hash, V: Clone> BoundedMap<K, V> {
    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            max_entries,
            max_bytes,
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                bytes: 0,
            }),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.lock().map.get(key).cloned()
    }

    /// Keeps `value` under `key`, counted as `weight` bytes; an entry
    /// heavier than the whole map is not kept.
    pub fn insert(&self, key: K, value: V, weight: usize) {
        if weight > self.max_bytes {
            return;
        }
        let mut entries = self.lock();
        // Kept already (with the same weight: it depends on nothing but its
        // key): no reason to empty a full map.
        if let Some(kept) = entries.map.get_mut(&key) {
            *kept = value;
            return;
        }
        if entries.map.len() >= self.max_entries || entries.bytes + weight > self.max_bytes {
            entries.map.clear();
            entries.bytes = 0;
        }
        if entries.map.insert(key, value).is_none() {
            entries.bytes += weight;
        }
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// What the entries weigh, as given.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Entries<K, V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_max_entries_emptying_when_full() {
        let map = BoundedMap::<Box<str>, u32>::new(2, 1_000);
        assert!(map.is_empty());
        map.insert("a".into(), 1, 10);
        map.insert("b".into(), 2, 10);
        assert_eq!(
            (map.get("a"), map.get("b"), map.len(), map.bytes()),
            (Some(1), Some(2), 2, 20)
        );
        // A key kept already does not empty a full map.
        map.insert("b".into(), 2, 10);
        assert_eq!((map.get("a"), map.len(), map.bytes()), (Some(1), 2, 20));
        map.insert("c".into(), 3, 10);
        assert_eq!((map.get("a"), map.get("c"), map.len()), (None, Some(3), 1));
    }

    #[test]
    fn keeps_at_most_max_bytes_and_nothing_heavier() {
        let map = BoundedMap::<Box<str>, u32>::new(100, 100);
        map.insert("a".into(), 1, 60);
        map.insert("b".into(), 2, 60);
        assert_eq!(
            (map.get("a"), map.get("b"), map.bytes()),
            (None, Some(2), 60)
        );
        map.insert("c".into(), 3, 101);
        assert_eq!((map.get("c"), map.len()), (None, 1));
    }
}
