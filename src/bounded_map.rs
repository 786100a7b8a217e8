//! A map of results that depend on nothing but their key (a parsed document
//! by its text, a checked token by its text), so nothing in it goes stale.
//! It holds at most `max` entries and empties when full: a client sending
//! ever new keys costs the work the map would have saved, never memory.
use std::{
    borrow::Borrow,
    collections::HashMap,
    hash::Hash,
    sync::{Mutex, MutexGuard, PoisonError},
};

pub struct BoundedMap<K, V> {
    max: usize,
    entries: Mutex<HashMap<K, V>>,
}

impl<K: Eq + Hash, V: Clone> BoundedMap<K, V> {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.lock().get(key).cloned()
    }

    pub fn insert(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.max {
            entries.clear();
        }
        entries.insert(key, value);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, V>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_max_entries_emptying_when_full() {
        let map = BoundedMap::<Box<str>, u32>::new(2);
        assert!(map.is_empty());
        map.insert("a".into(), 1);
        map.insert("b".into(), 2);
        assert_eq!(
            (map.get("a"), map.get("b"), map.len()),
            (Some(1), Some(2), 2)
        );
        map.insert("c".into(), 3);
        assert_eq!((map.get("a"), map.get("c"), map.len()), (None, Some(3), 1));
    }
}
