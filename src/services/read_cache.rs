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
//!
//! What bounds its memory: keys are fixed-size (ids, or the SHA-256 of a
//! count's SQL and values, never client text); each cache holds at most
//! [`MAX_ENTRIES`] entries and `max_bytes` of them as weighed by [`Weigh`];
//! entries that expired are swept out once per `ttl` as new ones come, not
//! only replaced when asked for again; and a cache over either bound drops
//! what expired, then, if still over, empties and fills again.
use std::{
    collections::HashMap,
    future::Future,
    hash::Hash,
    mem::size_of,
    sync::{
        Arc, Mutex, MutexGuard, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use entity::{division, group, user};

use super::access::Account;
use crate::domain::Permissions;
use tokio::sync::OnceCell;

/// How a marker notice starts (`marker:<process>:<number>`).
const MARKER_PREFIX: &str = "marker:";

/// Entries beyond this are not worth keeping: the cache empties and fills
/// again.
pub const MAX_ENTRIES: usize = 10_000;

/// A key of the count cache: the SHA-256 of the count's SQL and values.
pub type CountKey = [u8; 32];

/// The count cache's key for a statement and its values.
pub fn count_key(sql: &str, values: &impl std::fmt::Debug) -> CountKey {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(sql.as_bytes());
    hasher.update([0]);
    hasher.update(format!("{values:?}").as_bytes());
    hasher.finalize().into()
}

/// The memory a cached value holds beyond its own size, roughly: what its
/// strings and lists own on the heap.
pub trait Weigh {
    fn heap_bytes(&self) -> usize;
}

impl Weigh for i64 {
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl Weigh for CountKey {
    fn heap_bytes(&self) -> usize {
        0
    }
}

impl Weigh for String {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl<T: Weigh> Weigh for Option<T> {
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, Weigh::heap_bytes)
    }
}

impl<T: Weigh> Weigh for Arc<T> {
    fn heap_bytes(&self) -> usize {
        size_of::<T>() + T::heap_bytes(self)
    }
}

impl<T: Weigh> Weigh for Vec<T> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * size_of::<T>() + self.iter().map(Weigh::heap_bytes).sum::<usize>()
    }
}

impl Weigh for user::Model {
    fn heap_bytes(&self) -> usize {
        [
            &self.username,
            &self.username_folded,
            &self.email,
            &self.email_folded,
            &self.first_name,
            &self.first_name_folded,
            &self.last_name,
            &self.last_name_folded,
        ]
        .iter()
        .map(|s| s.heap_bytes())
        .sum::<usize>()
            + self.phone_number.heap_bytes()
            + self.password_hash.heap_bytes()
            + self.remote_id.heap_bytes()
            + self.remote_id_folded.heap_bytes()
    }
}

impl Weigh for division::Model {
    fn heap_bytes(&self) -> usize {
        self.name.heap_bytes() + self.name_folded.heap_bytes()
    }
}

impl Weigh for group::Model {
    fn heap_bytes(&self) -> usize {
        self.name.heap_bytes() + self.name_folded.heap_bytes()
    }
}

/// A group with what it carries.
#[derive(Clone, Debug, PartialEq)]
pub struct CarryingGroup {
    pub group: group::Model,
    pub carries: Permissions,
}

impl Weigh for CarryingGroup {
    fn heap_bytes(&self) -> usize {
        self.group.heap_bytes()
    }
}

/// All the caches, switched on and off together.
pub struct ReadCaches {
    /// Users by id with their permissions, for token checks and `user(id:)`
    /// (`None`: no such user).
    pub users: ReadCache<i64, Option<Arc<Account>>>,
    /// `totalCount`s, by the digest of the SQL and values of their count.
    pub counts: ReadCache<CountKey, i64>,
    /// Divisions by id (`None`: no such division).
    pub divisions: ReadCache<i64, Option<Arc<division::Model>>>,
    /// The groups of each user, by user id, in the order they are shown.
    pub groups_by_user: ReadCache<i64, Arc<Vec<group::Model>>>,
    /// Groups by id with the permissions they carry (`None`: no such
    /// group), for reading a user's groups and permissions from their
    /// memberships alone.
    pub groups: ReadCache<i64, Option<Arc<CarryingGroup>>>,
    /// Markers this process sent through PostgreSQL's change channel, as
    /// the listener hears them back (see [`ReadCaches::await_own_changes`]).
    markers: tokio::sync::broadcast::Sender<u64>,
    next_marker: AtomicU64,
    /// Tells this process's markers from other processes'.
    process: u64,
    /// Dropped with the caches: tells their listener to stop.
    gone: tokio::sync::watch::Sender<()>,
}

/// How long a mutation waits to hear its own changes back at most.
const OWN_CHANGES_WAIT: Duration = Duration::from_secs(1);

impl ReadCaches {
    /// Caches keeping entries for `ttl` and at most `max_bytes` in all;
    /// `enabled` is false while nothing would tell them of changes made
    /// elsewhere.
    pub fn new(ttl: Duration, max_bytes: usize, enabled: bool) -> Self {
        let each = max_bytes / 5;
        Self {
            users: ReadCache::new(ttl, each, enabled),
            counts: ReadCache::new(ttl, each, enabled),
            divisions: ReadCache::new(ttl, each, enabled),
            groups_by_user: ReadCache::new(ttl, each, enabled),
            groups: ReadCache::new(ttl, each, enabled),
            markers: tokio::sync::broadcast::Sender::new(1024),
            next_marker: AtomicU64::new(0),
            process: rand::random(),
            gone: tokio::sync::watch::Sender::new(()),
        }
    }

    /// Each cache's name and what it did and holds, for `/metrics`.
    pub fn stats(&self) -> [(&'static str, CacheStats); 5] {
        [
            ("users", self.users.stats()),
            ("counts", self.counts.stats()),
            ("divisions", self.divisions.stats()),
            ("groups_by_user", self.groups_by_user.stats()),
            ("groups", self.groups.stats()),
        ]
    }

    /// Changes (to an error) when these caches are dropped.
    pub fn gone(&self) -> tokio::sync::watch::Receiver<()> {
        self.gone.subscribe()
    }

    /// On PostgreSQL, after a mutation committed: sends a marker through
    /// the change channel and waits (at most a second) until this process's
    /// listener hears it back. Notices arrive in commit order, so by then
    /// the notices of the mutation's own changes have reached every
    /// listening process too, and a client told "done" who turns to another
    /// process finds it has been told (it still has to act on the notice,
    /// which takes it microseconds). Nothing to wait for when the caches
    /// are off (no listener, or caching turned off).
    pub async fn await_own_changes(&self, db: &impl sea_orm::ConnectionTrait) {
        use sea_orm::{DbBackend, Statement};
        if db.get_database_backend() != DbBackend::Postgres || !self.users.is_enabled() {
            return;
        }
        // The whole of it within the bound: a pool that is slow to give a
        // connection for the marker holds the answer no longer either.
        let _ = tokio::time::timeout(OWN_CHANGES_WAIT, async {
            let mut heard = self.markers.subscribe();
            let marker = self.next_marker.fetch_add(1, Ordering::SeqCst);
            let sent = db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_notify('roster_changes_' || md5(current_schema()), $1)",
                    [format!("{MARKER_PREFIX}{}:{marker}", self.process).into()],
                ))
                .await;
            if sent.is_err() {
                return;
            }
            loop {
                match heard.recv().await {
                    Ok(seen) if seen == marker => return,
                    Ok(_) => {}
                    // Missed notices (ours may be among them), or no
                    // listener: waiting longer would wait for nothing.
                    Err(_) => return,
                }
            }
        })
        .await;
    }

    /// A notice of the change channel that is a marker: this process's are
    /// passed to whoever awaits them, other processes' are ignored. False
    /// when the notice is no marker.
    pub fn marker_heard(&self, payload: &str) -> bool {
        let Some(marker) = payload.strip_prefix(MARKER_PREFIX) else {
            return false;
        };
        if let Some((process, number)) = marker.split_once(':')
            && process.parse() == Ok(self.process)
            && let Ok(number) = number.parse()
        {
            let _ = self.markers.send(number);
        }
        true
    }

    pub fn forget_all(&self) {
        // Users last: a user's permissions may be read from the groups
        // cache, and a user loaded after the users were forgotten must not
        // find the groups as they were before.
        self.counts.forget_all();
        self.divisions.forget_all();
        self.groups_by_user.forget_all();
        self.groups.forget_all();
        self.users.forget_all();
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
        ForgetAllOnDrop(Some(self))
    }

    pub fn set_enabled(&self, enabled: bool) {
        // Users last, as in `forget_all`.
        self.counts.set_enabled(enabled);
        self.divisions.set_enabled(enabled);
        self.groups_by_user.set_enabled(enabled);
        self.groups.set_enabled(enabled);
        self.users.set_enabled(enabled);
    }
}

pub struct ForgetAllOnDrop<'a>(Option<&'a ReadCaches>);

impl ForgetAllOnDrop<'_> {
    /// Nothing was written after all: forget nothing.
    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for ForgetAllOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(caches) = self.0 {
            caches.forget_all();
        }
    }
}

pub struct ReadCache<K, V> {
    ttl: Duration,
    max_bytes: usize,
    enabled: AtomicBool,
    entries: Mutex<Entries<K, V>>,
    /// How many times anything was forgotten: [`ReadCache::fill`] keeps a
    /// value only if nothing was since it began to read it.
    forgets: AtomicU64,
    /// Reads it answered, and reads it had to load (for `/metrics`).
    hits: AtomicU64,
    misses: AtomicU64,
}

/// What a cache did and holds, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub entries: usize,
    pub bytes: usize,
}

/// The entries, with what they weigh and when expired ones were last swept.
struct Entries<K, V> {
    map: HashMap<K, Arc<Entry<V>>>,
    bytes: usize,
    swept: Instant,
}

/// A value, loaded once by whichever request asked first.
struct Entry<V> {
    value: OnceCell<V>,
    created: Instant,
    /// What the entry weighs once loaded (0 until then).
    weight: AtomicUsize,
}

impl<K: Eq + Hash, V> Entries<K, V> {
    fn remove(&mut self, key: &K) {
        if let Some(entry) = self.map.remove(key) {
            self.bytes = self
                .bytes
                .saturating_sub(entry.weight.load(Ordering::Relaxed));
        }
    }

    fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
    }

    /// Drops every entry older than `ttl`.
    fn sweep(&mut self, ttl: Duration) {
        let mut freed = 0;
        self.map.retain(|_, entry| {
            let fresh = entry.created.elapsed() < ttl;
            if !fresh {
                freed += entry.weight.load(Ordering::Relaxed);
            }
            fresh
        });
        self.bytes = self.bytes.saturating_sub(freed);
        self.swept = Instant::now();
    }
}

impl<K: Eq + Hash + Clone + Weigh, V: Clone + Weigh> ReadCache<K, V> {
    pub fn new(ttl: Duration, max_bytes: usize, enabled: bool) -> Self {
        let cache = Self {
            ttl,
            max_bytes,
            enabled: AtomicBool::new(false),
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                bytes: 0,
                swept: Instant::now(),
            }),
            forgets: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        };
        cache.set_enabled(enabled);
        cache
    }

    /// What the entries hold, as weighed.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// How many entries it holds, loaded or loading.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn stats(&self) -> CacheStats {
        let entries = self.lock();
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: entries.map.len(),
            bytes: entries.bytes,
        }
    }

    fn count(&self, hits: usize, misses: usize) {
        self.hits.fetch_add(hits as u64, Ordering::Relaxed);
        self.misses.fetch_add(misses as u64, Ordering::Relaxed);
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts `value`, just loaded into `entry` for `key`, in the cache's
    /// weight, if the entry is still there and nobody counted it yet.
    fn weigh(&self, entries: &mut Entries<K, V>, key: &K, entry: &Arc<Entry<V>>, value: &V) {
        let kept = entries
            .map
            .get(key)
            .is_some_and(|kept| Arc::ptr_eq(kept, entry));
        if !kept {
            return;
        }
        let weight = size_of::<K>()
            + key.heap_bytes()
            + size_of::<Entry<V>>()
            + value.heap_bytes()
            // the map's slot and the Arc's counts
            + 2 * size_of::<usize>()
            + size_of::<Arc<Entry<V>>>();
        if entry.weight.swap(weight, Ordering::Relaxed) == 0 {
            entries.bytes += weight;
        }
        if entries.bytes > self.max_bytes {
            entries.sweep(self.ttl);
            if entries.bytes > self.max_bytes {
                entries.clear();
            }
        }
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
        let entry = self.entry(&mut self.lock(), key.clone());
        if let Some(value) = entry.value.get() {
            self.count(1, 0);
            return Ok(value.clone());
        }
        self.count(0, 1);
        let value = entry.value.get_or_try_init(|| load).await?.clone();
        self.weigh(&mut self.lock(), &key, &entry, &value);
        Ok(value)
    }

    /// The value of `key` if it is cached, fresh and loaded; loads nothing.
    pub fn peek(&self, key: &K) -> Option<V> {
        if !self.is_enabled() {
            return None;
        }
        let entries = self.lock();
        let fresh = entries
            .map
            .get(key)
            .filter(|entry| entry.created.elapsed() < self.ttl)
            .and_then(|entry| entry.value.get().cloned());
        // A miss is counted by the load that follows it.
        if fresh.is_some() {
            self.count(1, 0);
        }
        fresh
    }

    /// The entry of `key` if it is fresh (loaded or loading), else a new,
    /// empty one in its place.
    fn entry(&self, entries: &mut Entries<K, V>, key: K) -> Arc<Entry<V>> {
        if let Some(entry) = entries.map.get(&key)
            && entry.created.elapsed() < self.ttl
        {
            return Arc::clone(entry);
        }
        entries.remove(&key);
        if entries.swept.elapsed() >= self.ttl {
            entries.sweep(self.ttl);
        }
        if entries.map.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let entry = Arc::new(Entry {
            value: OnceCell::new(),
            created: Instant::now(),
            weight: AtomicUsize::new(0),
        });
        entries.map.insert(key, Arc::clone(&entry));
        entry
    }

    fn lock(&self) -> MutexGuard<'_, Entries<K, V>> {
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
        self.count(found.len(), missing.len());
        if missing.is_empty() {
            return Ok(found);
        }
        let mut loaded = load(missing.iter().map(|(key, _)| key.clone()).collect()).await?;
        let mut entries = self.lock();
        for (key, entry) in missing {
            let value = loaded.remove(&key).unwrap_or_default();
            // Kept only if this very entry is still there: a forget since the
            // load began removed it.
            if entries
                .map
                .get(&key)
                .is_some_and(|kept| Arc::ptr_eq(kept, &entry))
            {
                // A single load of the same entry may have been first; its
                // value is as fresh as this one.
                let _ = entry.value.set(value.clone());
                self.weigh(&mut entries, &key, &entry, &value);
            }
            found.insert(key, value);
        }
        Ok(found)
    }

    /// Forgets `key`, loaded or loading.
    pub fn forget(&self, key: &K) {
        // Counted before the entries are touched: a fill that saw the old
        // count under the lock came first, and is forgotten here.
        self.forgets.fetch_add(1, Ordering::AcqRel);
        self.lock().remove(key);
    }

    /// Forgets everything.
    pub fn forget_all(&self) {
        self.forgets.fetch_add(1, Ordering::AcqRel);
        self.lock().clear();
    }

    /// Where [`ReadCache::fill`] starts from: taken before reading a value
    /// elsewhere than through this cache.
    pub fn epoch(&self) -> u64 {
        self.forgets.load(Ordering::Acquire)
    }

    /// Keeps `value` for `key`, read by a statement that began at `epoch`,
    /// unless something was forgotten since (it may be stale) or `key` has
    /// a value already.
    pub fn fill(&self, key: K, value: V, epoch: u64) {
        if !self.is_enabled() {
            return;
        }
        let mut entries = self.lock();
        if self.forgets.load(Ordering::Acquire) != epoch {
            return;
        }
        let entry = self.entry(&mut entries, key.clone());
        if entry.value.set(value.clone()).is_ok() {
            self.weigh(&mut entries, &key, &entry, &value);
        }
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
                cache: ReadCache::new(ttl, usize::MAX, enabled),
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
        let cache = ReadCache::new(MINUTE, usize::MAX, true);
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
        let cache = ReadCache::new(MINUTE, usize::MAX, true);
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

        let off = ReadCache::new(MINUTE, usize::MAX, false);
        batch(&off, &[1], &asked).await;
        batch(&off, &[1], &asked).await;
        assert_eq!(asked.lock().unwrap().len(), 4);
    }

    async fn put(cache: &ReadCache<i64, String>, key: i64, value: &str) {
        let load = async { Ok::<_, Infallible>(value.to_owned()) };
        let _ = cache.get_or_load(key, load).await;
    }

    #[tokio::test]
    async fn a_cache_over_its_bytes_drops_the_expired_then_empties() {
        let cache = ReadCache::new(Duration::from_millis(20), 2_000, true);
        put(&cache, 1, &"x".repeat(600)).await;
        let one = cache.bytes();
        assert!((600..800).contains(&one), "{one}");
        put(&cache, 2, &"y".repeat(600)).await;
        assert_eq!((cache.len(), cache.bytes()), (2, 2 * one));
        tokio::time::sleep(Duration::from_millis(30)).await;
        // Over the bound: the two expired entries go, the new one stays.
        put(&cache, 3, &"z".repeat(1_200)).await;
        assert_eq!(cache.len(), 1);
        // A value bigger than the bound alone empties the cache.
        put(&cache, 4, &"w".repeat(5_000)).await;
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }

    #[tokio::test]
    async fn expired_entries_are_swept_as_new_ones_come() {
        let cache = ReadCache::new(Duration::from_millis(20), usize::MAX, true);
        for key in 0..100 {
            put(&cache, key, "value").await;
        }
        assert_eq!(cache.len(), 100);
        tokio::time::sleep(Duration::from_millis(30)).await;
        put(&cache, 1_000, "value").await;
        assert_eq!(cache.len(), 1);
        cache.forget(&1_000);
        assert_eq!((cache.len(), cache.bytes()), (0, 0));
    }

    #[test]
    fn count_keys_are_digests_of_sql_and_values() {
        let long = "s".repeat(300_000);
        let key = count_key("SELECT COUNT(*) WHERE a LIKE $1", &vec![long.clone()]);
        assert_eq!(key.len(), 32);
        assert_ne!(
            key,
            count_key("SELECT COUNT(*) WHERE a LIKE $1", &vec![long + "t"])
        );
    }

    #[tokio::test]
    async fn a_user_change_forgets_that_user_and_every_count() {
        let caches = ReadCaches::new(MINUTE, usize::MAX, true);
        let count = |n| async move { Ok::<_, Infallible>(n) };
        let key = || count_key("count", &());
        assert_eq!(caches.counts.get_or_load(key(), count(5)).await, Ok(5));
        assert_eq!(caches.counts.get_or_load(key(), count(6)).await, Ok(5));
        caches.user_changed(3);
        assert_eq!(caches.counts.get_or_load(key(), count(7)).await, Ok(7));
    }
}
