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
//! - forgetting removes the entry itself, loaded or still loading: a request
//!   that comes after the forget starts a load of its own, so it never sees
//!   what was read before the change.
//!
//! Requests that miss the same key at the same moment share one load: when
//! an entry expires under load, one query runs, not one per request.
use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use entity::user;
use tokio::sync::OnceCell;

/// Entries beyond this are not worth keeping: the cache empties and fills
/// again.
const MAX_ENTRIES: usize = 10_000;

/// Both caches, switched on and off together.
pub struct ReadCaches {
    /// Users by id, for token checks (`None`: no such user).
    pub users: ReadCache<i64, Option<Arc<user::Model>>>,
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
    entries: Mutex<HashMap<K, Arc<Entry<V>>>>,
}

/// A value, loaded once by whichever request asked first.
struct Entry<V> {
    value: OnceCell<V>,
    created: Instant,
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    pub fn new(ttl: Duration, enabled: bool) -> Self {
        let cache = Self {
            ttl,
            enabled: AtomicBool::new(false),
            entries: Mutex::new(HashMap::new()),
        };
        cache.set_enabled(enabled);
        cache
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The value of `key`: cached if loaded less than `ttl` ago and not
    /// forgotten since, else what `load` gives (an error is not kept).
    pub async fn get_or_load<E>(
        &self,
        key: K,
        load: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if !self.is_enabled() {
            return load.await;
        }
        let entry = {
            let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
            match entries.get(&key) {
                Some(entry) if entry.created.elapsed() < self.ttl => Arc::clone(entry),
                _ => {
                    if entries.len() >= MAX_ENTRIES {
                        entries.clear();
                    }
                    let entry = Arc::new(Entry {
                        value: OnceCell::new(),
                        created: Instant::now(),
                    });
                    entries.insert(key, Arc::clone(&entry));
                    entry
                }
            }
        };
        entry.value.get_or_try_init(|| load).await.cloned()
    }

    /// Forgets `key`, loaded or loading.
    pub fn forget(&self, key: &K) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(key);
    }

    /// Forgets everything.
    pub fn forget_all(&self) {
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
    use std::{convert::Infallible, sync::atomic::AtomicUsize};

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// A cache of strings with a counter of the loads it ran.
    struct Counted {
        cache: ReadCache<i64, String>,
        loads: AtomicUsize,
    }

    impl Counted {
        fn new(ttl: Duration, enabled: bool) -> Self {
            Self {
                cache: ReadCache::new(ttl, enabled),
                loads: AtomicUsize::new(0),
            }
        }

        async fn get(&self, key: i64, value: &str) -> String {
            let load = async {
                self.loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok::<_, Infallible>(value.to_owned())
            };
            match self.cache.get_or_load(key, load).await {
                Ok(value) => value,
                Err(never) => match never {},
            }
        }

        fn loads(&self) -> usize {
            self.loads.load(Ordering::SeqCst)
        }
    }

    #[tokio::test]
    async fn keeps_what_it_loaded_until_forgotten() {
        let c = Counted::new(MINUTE, true);
        assert_eq!(c.get(1, "one").await, "one");
        assert_eq!(c.get(2, "two").await, "two");
        assert_eq!(c.get(1, "other").await, "one");
        assert_eq!(c.loads(), 2);
        c.cache.forget(&1);
        assert_eq!(c.get(1, "new").await, "new");
        assert_eq!(c.get(2, "other").await, "two");
        c.cache.forget_all();
        assert_eq!(c.get(2, "new").await, "new");
        assert_eq!(c.loads(), 4);
    }

    #[tokio::test]
    async fn requests_that_miss_together_share_one_load() {
        let c = Arc::new(Counted::new(MINUTE, true));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let c = Arc::clone(&c);
                tokio::spawn(async move { c.get(1, "one").await })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.ok().as_deref(), Some("one"));
        }
        assert_eq!(c.loads(), 1);
    }

    #[tokio::test]
    async fn a_load_in_flight_when_forgotten_serves_nobody_after() {
        let c = Counted::new(MINUTE, true);
        let stale = c.get(1, "stale");
        tokio::pin!(stale);
        // Start the load, then forget while it runs.
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut stale)
                .await
                .is_err()
        );
        c.cache.forget_all();
        assert_eq!(stale.await, "stale");
        assert_eq!(c.get(1, "fresh").await, "fresh");
    }

    #[tokio::test]
    async fn entries_expire_and_a_disabled_cache_keeps_nothing() {
        let c = Counted::new(Duration::from_millis(1), true);
        c.get(1, "one").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(c.get(1, "two").await, "two");

        let off = Counted::new(Duration::ZERO, true);
        off.get(1, "one").await;
        assert_eq!(off.get(1, "two").await, "two");

        let c = Counted::new(MINUTE, false);
        c.get(1, "one").await;
        assert_eq!(c.get(1, "two").await, "two");
        c.cache.set_enabled(true);
        c.get(1, "three").await;
        assert_eq!(c.get(1, "four").await, "three");
        c.cache.set_enabled(false);
        assert_eq!(c.get(1, "five").await, "five");
    }

    #[tokio::test]
    async fn a_user_change_forgets_that_user_and_every_count() {
        let caches = ReadCaches::new(MINUTE, true);
        let count = |n| async move { Ok::<_, Infallible>(n) };
        let key = || "count".to_owned();
        assert_eq!(caches.counts.get_or_load(key(), count(5)).await, Ok(5));
        assert_eq!(caches.counts.get_or_load(key(), count(6)).await, Ok(5));
        caches.user_changed(3);
        assert_eq!(caches.counts.get_or_load(key(), count(7)).await, Ok(7));
    }
}
