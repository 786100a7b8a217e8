//! What a process read of users, kept for a moment so that requests do not
//! pay for it again: the user behind an access token (on a `{ __typename }`
//! that database round trip is nine tenths of the work) or a `user(id:)`, a
//! list's `totalCount` (at a million users, a scan of the table), and the
//! divisions and groups shown beside users (on `user(id:)` with both, two of
//! its three statements).
//!
//! What keeps it correct:
//! - an entry lives at most `ttl` (`ROSTER_CACHE_SECS`; 0 turns caching off);
//! - every mutation run by this process reads past the caches and forgets
//!   everything when it ends (`http::graphql`), so a deactivation, a
//!   password change or a new role is seen by this process's next request;
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
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use entity::{division, group, user};
use tokio::sync::OnceCell;

/// Entries beyond this are not worth keeping: the cache empties and fills
/// again.
const MAX_ENTRIES: usize = 10_000;

/// All the caches, switched on and off together.
pub struct ReadCaches {
    /// Users by id, for token checks and `user(id:)` (`None`: no such user).
    pub users: ReadCache<i64, Option<Arc<user::Model>>>,
    /// `totalCount`s, by the SQL and values of their count.
    pub counts: ReadCache<String, i64>,
    /// Divisions by id (`None`: no such division).
    pub divisions: ReadCache<i64, Option<Arc<division::Model>>>,
    /// The groups of each user, by user id, in the order they are shown.
    pub groups_by_user: ReadCache<i64, Arc<Vec<group::Model>>>,
}

impl ReadCaches {
    /// Caches keeping entries for `ttl`; `enabled` is false while nothing
    /// would tell them of changes made elsewhere.
    pub fn new(ttl: Duration, enabled: bool) -> Self {
        Self {
            users: ReadCache::new(ttl, enabled),
            counts: ReadCache::new(ttl, enabled),
            divisions: ReadCache::new(ttl, enabled),
            groups_by_user: ReadCache::new(ttl, enabled),
        }
    }

    pub fn forget_all(&self) {
        self.users.forget_all();
        self.counts.forget_all();
        self.divisions.forget_all();
        self.groups_by_user.forget_all();
    }

    /// The user `id` changed: their token check and every count may be
    /// stale.
    pub fn user_changed(&self, id: i64) {
        self.users.forget(&id);
        self.counts.forget_all();
    }

    /// A guard that forgets everything when dropped: held while a mutation
    /// runs, it forgets once the mutation ends, however it ends (a deadline
    /// drops it), so a committed change is never left behind a stale entry.
    pub fn forget_all_on_drop(&self) -> ForgetAllOnDrop<'_> {
        ForgetAllOnDrop(self)
    }

    pub fn set_enabled(&self, enabled: bool) {
        self.users.set_enabled(enabled);
        self.counts.set_enabled(enabled);
        self.divisions.set_enabled(enabled);
        self.groups_by_user.set_enabled(enabled);
    }
}

pub struct ForgetAllOnDrop<'a>(&'a ReadCaches);

impl Drop for ForgetAllOnDrop<'_> {
    fn drop(&mut self) {
        self.0.forget_all();
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
        let entry = self.entry(&mut self.lock(), key);
        entry.value.get_or_try_init(|| load).await.cloned()
    }

    /// The entry of `key` if it is fresh (loaded or loading), else a new,
    /// empty one in its place.
    fn entry(&self, entries: &mut HashMap<K, Arc<Entry<V>>>, key: K) -> Arc<Entry<V>> {
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
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<Entry<V>>>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The values of `keys`: those cached, and those `load` gives for the
    /// rest in one call (a key it leaves out gets `V::default()`). What it
    /// loads is kept only for keys not forgotten while it ran.
    ///
    /// Unlike `get_or_load`, requests that miss together each load: a batch
    /// cannot wait on loads that other batches started for some of its keys
    /// without costing a statement per key.
    pub async fn get_or_load_many<E, F>(
        &self,
        keys: &[K],
        load: impl FnOnce(Vec<K>) -> F,
    ) -> Result<HashMap<K, V>, E>
    where
        K: Clone,
        V: Default,
        F: Future<Output = Result<HashMap<K, V>, E>>,
    {
        if !self.is_enabled() {
            return load(keys.to_vec()).await;
        }
        let mut found = HashMap::with_capacity(keys.len());
        let mut missing = Vec::new();
        {
            let mut entries = self.lock();
            for key in keys {
                let entry = self.entry(&mut entries, key.clone());
                match entry.value.get() {
                    Some(value) => {
                        found.insert(key.clone(), value.clone());
                    }
                    None => missing.push((key.clone(), entry)),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let mut loaded = load(missing.iter().map(|(key, _)| key.clone()).collect()).await?;
        let entries = self.lock();
        for (key, entry) in missing {
            let value = loaded.remove(&key).unwrap_or_default();
            // Kept only if this very entry is still there: a forget since the
            // load began removed it.
            if entries
                .get(&key)
                .is_some_and(|kept| Arc::ptr_eq(kept, &entry))
            {
                // A single load of the same entry may have been first; its
                // value is as fresh as this one.
                let _ = entry.value.set(value.clone());
            }
            found.insert(key, value);
        }
        Ok(found)
    }

    /// Forgets `key`, loaded or loading.
    pub fn forget(&self, key: &K) {
        self.lock().remove(key);
    }

    /// Forgets everything.
    pub fn forget_all(&self) {
        self.lock().clear();
    }

    /// Turns the cache on or off; either way it starts empty.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled
            .store(enabled && !self.ttl.is_zero(), Ordering::Release);
        self.forget_all();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
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

    /// A batch load that records the keys it was asked for and gives
    /// "v<key>" for each, except key 0 (missing).
    async fn batch(
        cache: &ReadCache<i64, String>,
        keys: &[i64],
        asked: &Mutex<Vec<Vec<i64>>>,
    ) -> HashMap<i64, String> {
        let load = |missing: Vec<i64>| async move {
            asked.lock().unwrap().push(missing.clone());
            tokio::time::sleep(Duration::from_millis(10)).await;
            let found = missing.into_iter().filter(|&k| k != 0);
            Ok::<_, Infallible>(found.map(|k| (k, format!("v{k}"))).collect())
        };
        match cache.get_or_load_many(keys, load).await {
            Ok(values) => values,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn a_batch_loads_only_what_is_missing_in_one_call() {
        let cache = ReadCache::new(MINUTE, true);
        let asked = Mutex::new(Vec::new());
        let values = batch(&cache, &[1, 2, 0], &asked).await;
        assert_eq!(values.get(&1).map(String::as_str), Some("v1"));
        assert_eq!(values.get(&0).map(String::as_str), Some(""));
        let values = batch(&cache, &[2, 3, 0], &asked).await;
        assert_eq!(values.len(), 3);
        assert_eq!(values.get(&3).map(String::as_str), Some("v3"));
        batch(&cache, &[0, 1, 2, 3], &asked).await;
        assert_eq!(*asked.lock().unwrap(), vec![vec![1, 2, 0], vec![3]]);

        // What a single load cached serves a batch, and the other way round.
        assert_eq!(
            cache
                .get_or_load(3, async { Ok::<_, Infallible>("x".into()) })
                .await,
            Ok("v3".into())
        );
        assert_eq!(
            cache
                .get_or_load(9, async { Ok::<_, Infallible>("v9".into()) })
                .await,
            Ok("v9".into())
        );
        batch(&cache, &[9], &asked).await;
        assert_eq!(asked.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_batch_in_flight_when_forgotten_keeps_nothing() {
        let cache = ReadCache::new(MINUTE, true);
        let asked = Mutex::new(Vec::new());
        let stale = batch(&cache, &[1, 2], &asked);
        tokio::pin!(stale);
        assert!(
            tokio::time::timeout(Duration::from_millis(1), &mut stale)
                .await
                .is_err()
        );
        cache.forget(&1);
        assert_eq!(stale.await.len(), 2);
        batch(&cache, &[1, 2], &asked).await;
        assert_eq!(*asked.lock().unwrap(), vec![vec![1, 2], vec![1]]);

        let off = ReadCache::new(MINUTE, false);
        batch(&off, &[1], &asked).await;
        batch(&off, &[1], &asked).await;
        assert_eq!(asked.lock().unwrap().len(), 4);
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
