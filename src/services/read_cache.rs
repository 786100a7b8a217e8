//! What a process read of users, kept for a moment so that requests do not
//! pay for it again: the user behind an access token (on a `{ __typename }`
//! that database round trip is nine tenths of the work) and a list's
//! `totalCount` (at a million users, a scan of the table).
//!
//! What keeps it correct:
//! - an entry lives at most `ttl` (`ROSTER_CACHE_SECS`; 0 turns caching off);
//! - every mutation run by this process forgets everything when it ends
//!   (`graphql::forget_reads`), so a deactivation, a password change or a new
//!   role is seen by this process's next request;
//! - on PostgreSQL, triggers notify every process of each change to users,
//!   memberships, groups and divisions (`startup::listen_for_changes`), and
//!   caching is off whenever that listener is not connected;
//! - a read that started before a forget does not store what it read: each
//!   forget moves the generation on, and [`ReadCache::store`] keeps an entry
//!   only if the generation is still the one its [`Ticket`] saw.
use std::{
    collections::HashMap,
    hash::Hash,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use entity::user;

/// Entries beyond this are not worth keeping: the cache empties and fills
/// again.
const MAX_ENTRIES: usize = 10_000;

/// Both caches, switched on and off together.
pub struct ReadCaches {
    /// Users by id, for token checks.
    pub users: ReadCache<i64, Arc<user::Model>>,
    /// `totalCount`s, by the SQL and values of their count.
    pub counts: ReadCache<String, i64>,
}

impl ReadCaches {
    /// Caches keeping entries for `ttl`; `enabled` is false while nothing
    /// would tell them of changes made elsewhere.
    pub fn new(ttl: Duration, enabled: bool) -> Self {
        Self {
            users: ReadCache::new(ttl, enabled),
            counts: ReadCache::new(ttl, enabled),
        }
    }

    pub fn forget_all(&self) {
        self.users.forget_all();
        self.counts.forget_all();
    }

    /// The user `id` changed (or joined, or left a group): their token check
    /// and every count may be stale.
    pub fn user_changed(&self, id: i64) {
        self.users.forget(&id);
        self.counts.forget_all();
    }

    pub fn set_enabled(&self, enabled: bool) {
        self.users.set_enabled(enabled);
        self.counts.set_enabled(enabled);
    }
}

pub struct ReadCache<K, V> {
    ttl: Duration,
    enabled: AtomicBool,
    generation: AtomicU64,
    entries: Mutex<HashMap<K, Entry<V>>>,
}

struct Entry<V> {
    value: V,
    stored: Instant,
}

/// Taken before reading from the database; see [`ReadCache::store`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    pub fn new(ttl: Duration, enabled: bool) -> Self {
        Self {
            ttl,
            enabled: AtomicBool::new(enabled && !ttl.is_zero()),
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value of `key`, if stored less than `ttl` ago and not forgotten.
    pub fn get(&self, key: &K) -> Option<V> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|entry| entry.stored.elapsed() < self.ttl)
            .map(|entry| entry.value.clone())
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// Keeps `value`, read from the database after `ticket` was taken, unless
    /// something was forgotten in between (what was read may be stale).
    pub fn store(&self, ticket: Ticket, key: K, value: V) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked under the lock: a forget moves the generation on and then
        // takes the lock, so either it removes this entry or this check
        // sees the new generation.
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                value,
                stored: Instant::now(),
            },
        );
    }

    /// Forgets `key`, and any read (of any key) in flight.
    pub fn forget(&self, key: &K) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(key);
    }

    /// Forgets everything.
    pub fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.clear();
    }

    /// Turns the cache on or off; either way it starts empty.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled
            .store(enabled && !self.ttl.is_zero(), Ordering::Release);
        self.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn keeps_what_it_stores_until_forgotten() {
        let cache = ReadCache::new(MINUTE, true);
        cache.store(cache.ticket(), 1, "one");
        cache.store(cache.ticket(), 2, "two");
        assert_eq!(cache.get(&1), Some("one"));
        cache.forget(&1);
        assert_eq!(cache.get(&1), None);
        assert_eq!(cache.get(&2), Some("two"));
        cache.forget_all();
        assert_eq!(cache.get(&2), None);
    }

    #[test]
    fn a_read_that_raced_a_forget_is_not_kept() {
        let cache = ReadCache::new(MINUTE, true);
        let ticket = cache.ticket();
        cache.forget(&7);
        cache.store(ticket, 1, "stale");
        assert_eq!(cache.get(&1), None);
        cache.store(cache.ticket(), 1, "fresh");
        assert_eq!(cache.get(&1), Some("fresh"));
    }

    #[test]
    fn entries_expire_and_a_disabled_cache_keeps_nothing() {
        let cache = ReadCache::new(Duration::from_millis(1), true);
        cache.store(cache.ticket(), 1, "one");
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get(&1), None);

        let off = ReadCache::new(Duration::ZERO, true);
        off.store(off.ticket(), 1, "one");
        assert_eq!(off.get(&1), None);

        let cache = ReadCache::new(MINUTE, false);
        cache.store(cache.ticket(), 1, "one");
        assert_eq!(cache.get(&1), None);
        cache.set_enabled(true);
        cache.store(cache.ticket(), 1, "one");
        assert_eq!(cache.get(&1), Some("one"));
        cache.set_enabled(false);
        assert_eq!(cache.get(&1), None);
    }

    #[test]
    fn a_user_change_forgets_that_user_and_every_count() {
        let caches = ReadCaches::new(MINUTE, true);
        caches
            .counts
            .store(caches.counts.ticket(), "count".to_owned(), 5);
        caches.user_changed(3);
        assert_eq!(caches.counts.get(&"count".to_owned()), None);
    }
}
