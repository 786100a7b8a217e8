//! Argon2id password hashing as a bounded resource.
//!
//! A hash takes 19 MiB and tens of milliseconds of one core, and `register`
//! and `login` are anonymous: unbounded, a few hundred concurrent requests
//! take gigabytes. So every hash runs on one of a fixed set of threads
//! ([`HashLimits::concurrency`], the number of cores by default), each of
//! which keeps reusing the memory of its last hash. Requests wait for a
//! thread in a short queue: at most [`HashLimits::queue`] of them, each for
//! at most [`HashLimits::wait`]; beyond either the request fails at once
//! with `SERVICE_UNAVAILABLE` and `retryAfter`, and nothing is queued for
//! it. A request that goes away while it waits leaves the queue; one that
//! goes away after its thread was chosen but before the hash began is
//! skipped; a hash that has begun runs to its end (Argon2 cannot be
//! stopped) and keeps its thread until then, so the bound always holds.
//!
//! A thread keeps Argon2's 19 MiB from one hash to the next while hashes
//! keep coming, and gives it back once it has waited half a second for
//! one: memory held for hashing is at most `concurrency` × 19 MiB,
//! whatever the load, and none while nobody signs in.
use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc::{self, RecvTimeoutError},
    },
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, ParamsString, PasswordHash, Salt},
};
use rand::Rng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::error::{Error, Result};

/// OWASP's minimum for Argon2id: 19 MiB of memory, 2 passes, 1 lane.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;

fn params() -> Result<Params> {
    Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_BYTES)).map_err(failed)
}

fn failed(error: impl std::fmt::Display) -> Error {
    Error::internal(anyhow::anyhow!("password hashing: {error}"))
}

/// A hashing thread's memory: Argon2's blocks, kept while hashes follow one
/// another, given back when the thread has waited `KEEP_IDLE` for work.
type Memory = Vec<Block>;

/// How long a hashing thread keeps its memory with no hash to compute.
const KEEP_IDLE: Duration = Duration::from_millis(500);

/// Blocks (of 1 KiB) reserved for a hash's memory, of which it touches 19
/// MiB. glibc's allocator maps a request this large (over 32 MiB) on its
/// own and unmaps it when freed. Freeing a 19 MiB block instead would have
/// raised its threshold for mapping to 19 MiB, letting every per-thread
/// arena keep twice that free: 390 MiB after 300 concurrent registrations,
/// with two hashing at a time.
const RESERVED_BLOCKS: usize = 33 * 1024;

/// Argon2 of `password` and `salt` into `out`, in `memory`: parameters
/// that cost more than today's are refused before they get here.
fn compute(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
    memory: &mut Memory,
) -> Result<()> {
    let needed = params.block_count();
    if memory.capacity() < needed {
        // The old memory goes before the new comes.
        *memory = Memory::new();
        memory.reserve_exact(needed.max(RESERVED_BLOCKS));
    }
    if memory.len() < needed {
        memory.resize(needed, Block::default());
    }
    let blocks = memory
        .get_mut(..needed)
        .ok_or_else(|| failed("no memory"))?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, out, blocks)
        .map_err(failed)
}

fn hash_now(password: &str, memory: &mut Memory) -> Result<String> {
    let params = params()?;
    let mut salt = [0u8; SALT_BYTES];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; OUTPUT_BYTES];
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    compute(
        algorithm,
        version,
        params.clone(),
        password.as_bytes(),
        &salt,
        &mut out,
        memory,
    )?;
    let phc = PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(Salt::new(&salt).map_err(failed)?),
        hash: Some(Output::new(&out).map_err(failed)?),
    };
    Ok(phc.to_string())
}

/// A hash of a password nobody has, verified when there is no real hash to
/// check, so that failures take as long as a wrong password does.
static DUMMY_HASH: OnceLock<String> = OnceLock::new();

fn dummy_hash(memory: &mut Memory) -> Result<&'static str> {
    if let Some(hash) = DUMMY_HASH.get() {
        return Ok(hash);
    }
    let hash = hash_now("roster-dummy-password", memory)?;
    Ok(DUMMY_HASH.get_or_init(|| hash))
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Right, but hashed with other parameters than today's: rehash it.
    YesButOutdated,
}

/// Whether `password` hashes to `phc` (what the argon2 crate's verifier
/// does, in this thread's memory); the outputs are compared in constant
/// time.
fn matches(password: &str, phc: &PasswordHash, memory: &mut Memory) -> bool {
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(phc.algorithm.as_str()) else {
        return false;
    };
    let Ok(version) = phc
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let Ok(params) = Params::try_from(phc) else {
        return false;
    };
    // roster never made a hash that costs more than today's: one that
    // claims to (written into the database by hand) would take a hashing
    // thread for as long, and as much memory, as it says.
    if params.m_cost() > M_COST_KIB || params.t_cost() > T_COST || params.p_cost() > P_COST {
        return false;
    }
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let Some(out) = buffer.get_mut(..expected.len()) else {
        return false;
    };
    let computed = compute(
        algorithm,
        version,
        params,
        password.as_bytes(),
        salt.as_ref(),
        out,
        memory,
    );
    computed.is_ok() && Output::new(out).is_ok_and(|output| output == *expected)
}

fn verify_now(password: &str, stored: Option<&str>, memory: &mut Memory) -> Result<Verified> {
    let (phc, real) = match stored {
        Some(phc) => (phc, true),
        None => (dummy_hash(memory)?, false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Ok(Verified::No);
    };
    if !matches(password, &parsed, memory) || !real {
        return Ok(Verified::No);
    }
    Ok(if is_current(&parsed) {
        Verified::Yes
    } else {
        Verified::YesButOutdated
    })
}

fn is_current(hash: &PasswordHash) -> bool {
    let param = |name: &str| hash.params.get_decimal(name);
    hash.algorithm.as_str() == "argon2id"
        && hash.version == Some(Version::V0x13.into())
        && param("m") == Some(M_COST_KIB)
        && param("t") == Some(T_COST)
        && param("p") == Some(P_COST)
}

/// How much hashing may happen at once, and how long a request may wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashLimits {
    /// Hashes computed at once: the number of hashing threads.
    pub concurrency: usize,
    /// Requests waiting for a thread; beyond that, refused at once.
    pub queue: usize,
    /// Longest a request waits for a thread before it is refused.
    pub wait: Duration,
    /// Requests of one client network waiting for or holding a thread;
    /// beyond that, refused at once, so that one network cannot take the
    /// whole queue.
    pub per_client: usize,
}

impl HashLimits {
    /// One thread, for the commands that hash once (`create-superuser`,
    /// `demo-data`).
    pub fn one_at_a_time() -> Self {
        Self {
            concurrency: 1,
            queue: 1,
            wait: Duration::from_secs(60),
            per_client: 1,
        }
    }
}

type Job = Box<dyn FnOnce(&mut Memory) + Send>;

/// The hashing threads and their queue; shared by every request.
pub struct Hasher {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    computed: Arc<AtomicU64>,
    /// Requests of each client network waiting for or holding a thread.
    clients: Mutex<HashMap<String, usize>>,
    limits: HashLimits,
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// Counts a request in the queue until it leaves it.
struct InQueue<'a>(&'a AtomicUsize);

impl Drop for InQueue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One request's place in its client network's share of the hashing
/// threads and queue; given back when dropped.
pub struct ClientShare<'a> {
    hasher: &'a Hasher,
    client: String,
}

impl Drop for ClientShare<'_> {
    fn drop(&mut self) {
        let mut clients = self
            .hasher
            .clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = clients.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                clients.remove(&self.client);
            }
        }
    }
}

/// Set when the request that wanted a hash is gone, so that a hash not yet
/// begun is skipped.
struct Abandoned(Arc<AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Hasher {
    /// Starts `limits.concurrency` hashing threads; they end when the
    /// hasher is dropped.
    pub fn new(limits: HashLimits) -> Self {
        let concurrency = limits.concurrency.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..concurrency {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("roster-hash-{index}"))
                .spawn(move || {
                    let mut memory = Memory::new();
                    loop {
                        // The queue is held for at most `KEEP_IDLE` at a
                        // time, so every idle thread in turn finds no work
                        // and gives its memory back.
                        let job = receiver
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .recv_timeout(KEEP_IDLE);
                        match job {
                            // A panic (none is known) costs its request,
                            // not the thread.
                            Ok(job) => {
                                let _ =
                                    std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut memory)));
                            }
                            Err(RecvTimeoutError::Timeout) => memory = Memory::new(),
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password hashing thread");
            }
        }
        Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            computed: Arc::default(),
            clients: Mutex::default(),
            limits: HashLimits {
                concurrency,
                ..limits
            },
            jobs: Mutex::new(sender),
        }
    }

    /// Hashes being computed or about to be, and requests waiting for a
    /// thread.
    pub fn load(&self) -> (usize, usize) {
        let busy = self.limits.concurrency - self.slots.available_permits();
        (busy, self.waiting.load(Ordering::SeqCst))
    }

    /// Counts one request of `client` among those that wait for or hold a
    /// hashing thread until the result is dropped, or refuses it with
    /// `RATE_LIMITED` when that network has `per_client` of them already.
    pub fn share(&self, client: &str) -> Result<ClientShare<'_>> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let count = clients.entry(client.to_owned()).or_insert(0);
        if *count >= self.limits.per_client.max(1) {
            return Err(Error::TooManyRequests {
                retry_after_secs: 1,
            });
        }
        *count += 1;
        Ok(ClientShare {
            hasher: self,
            client: client.to_owned(),
        })
    }

    /// Hashes computed (or verified) so far.
    pub fn computed(&self) -> u64 {
        self.computed.load(Ordering::SeqCst)
    }

    /// Takes a hashing thread and keeps it until the result is dropped, as
    /// a hash would: tests use it to fill the threads.
    #[doc(hidden)]
    pub async fn occupy(&self) -> Result<impl Drop> {
        self.slot().await
    }

    fn busy() -> Error {
        Error::Busy {
            retry_after_secs: 1,
        }
    }

    /// A hashing thread for this request, or `Busy` when the queue is full
    /// or the wait too long.
    async fn slot(&self) -> Result<OwnedSemaphorePermit> {
        if let Ok(permit) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.limits.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Self::busy());
        }
        let _in_queue = InQueue(&self.waiting);
        match tokio::time::timeout(self.limits.wait, Arc::clone(&self.slots).acquire_owned()).await
        {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Self::busy()),
        }
    }

    /// Runs `work` on a hashing thread, once one is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = self.slot().await?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let _guard = Abandoned(Arc::clone(&abandoned));
        let (answer, answered) = oneshot::channel();
        let computed = Arc::clone(&self.computed);
        let job: Job = Box::new(move |memory| {
            // The slot is held until the hash is done, even when nobody
            // waits for it any more.
            let result = (!abandoned.load(Ordering::SeqCst)).then(|| {
                computed.fetch_add(1, Ordering::SeqCst);
                work(memory)
            });
            drop(permit);
            if let Some(result) = result {
                let _ = answer.send(result);
            }
        });
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| Error::internal(anyhow::anyhow!("no password hashing thread")))?;
        answered
            .await
            .map_err(|_| Error::internal(anyhow::anyhow!("a password hashing thread failed")))?
    }

    /// Hashes `password` to an Argon2id PHC string.
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move |memory| hash_now(&password, memory)).await
    }

    /// Checks `password` against `stored`. With no stored hash, a dummy hash
    /// is checked instead, so that the answer (always `No`) takes the same
    /// time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verified> {
        self.run(move |memory| verify_now(&password, stored.as_deref(), memory))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher(concurrency: usize, queue: usize, wait_ms: u64) -> Hasher {
        Hasher::new(HashLimits {
            concurrency,
            queue,
            wait: Duration::from_millis(wait_ms),
            per_client: 2,
        })
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify() -> Result<()> {
        let hasher = hasher(1, 1, 10_000);
        let phc = hasher.hash("s3cret-Passw0rd".into()).await?;
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            hasher
                .verify("s3cret-Passw0rd".into(), Some(phc.clone()))
                .await?,
            Verified::Yes
        );
        assert_eq!(
            hasher.verify("wrong".into(), Some(phc)).await?,
            Verified::No
        );
        assert_eq!(hasher.verify("anything".into(), None).await?, Verified::No);
        assert_eq!(hasher.load(), (0, 0));
        Ok(())
    }

    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crates_own_hasher_and_verifier() -> Result<()> {
        use argon2::{PasswordHasher, PasswordVerifier};
        let hasher = hasher(1, 1, 10_000);
        let crate_own = |m, t| {
            Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(m, t, 1, None).unwrap_or_default(),
            )
        };
        let theirs = crate_own(M_COST_KIB, T_COST)
            .hash_password(b"made-elsewhere-1")
            .map_err(failed)?
            .to_string();
        assert_eq!(
            hasher
                .verify("made-elsewhere-1".into(), Some(theirs.clone()))
                .await?,
            Verified::Yes
        );
        assert_eq!(
            hasher
                .verify("made-elsewhere-2".into(), Some(theirs))
                .await?,
            Verified::No
        );
        let older = crate_own(8 * 1024, 1)
            .hash_password(b"made-long-ago")
            .map_err(failed)?
            .to_string();
        assert_eq!(
            hasher.verify("made-long-ago".into(), Some(older)).await?,
            Verified::YesButOutdated
        );
        let ours = hasher.hash("made-here".into()).await?;
        let parsed = PasswordHash::new(&ours).map_err(failed)?;
        assert!(
            crate_own(M_COST_KIB, T_COST)
                .verify_password(b"made-here", &parsed)
                .is_ok()
        );
        assert!(
            crate_own(M_COST_KIB, T_COST)
                .verify_password(b"made-there", &parsed)
                .is_err()
        );
        let costlier = crate_own(M_COST_KIB * 2, T_COST)
            .hash_password(b"made-costlier")
            .map_err(failed)?
            .to_string();
        assert_eq!(
            hasher
                .verify("made-costlier".into(), Some(costlier))
                .await?,
            Verified::No
        );
        for garbage in [
            "",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$scrypt$ln=1,r=8,p=1$c2FsdA$aGFzaA",
            "$argon2id$v=99$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
        ] {
            assert_eq!(
                hasher
                    .verify("made-here".into(), Some(garbage.into()))
                    .await?,
                Verified::No,
                "{garbage}"
            );
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_long_wait_gives_up() {
        // One thread, one place in the queue: of three at once, the third
        // is refused without waiting.
        let hasher = Arc::new(hasher(1, 1, 10_000));
        let started = std::time::Instant::now();
        let results = futures_util::future::join_all(
            (0..3).map(|_| hasher.hash("a password of some length".into())),
        )
        .await;
        let codes: Vec<&str> = results
            .iter()
            .map(|r| r.as_ref().map_or_else(Error::code, |_| "OK"))
            .collect();
        assert_eq!(codes, ["OK", "OK", "SERVICE_UNAVAILABLE"]);
        assert_eq!(hasher.load(), (0, 0));

        // A wait shorter than one hash gives up.
        let hasher = Arc::new(hasher_with_wait(1));
        let (first, second) = tokio::join!(
            hasher.hash("first password here".into()),
            hasher.hash("second password here".into())
        );
        assert!(first.is_ok());
        assert!(matches!(second, Err(Error::Busy { .. })));
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    fn hasher_with_wait(wait_ms: u64) -> Hasher {
        hasher(1, 8, wait_ms)
    }

    #[test]
    fn one_network_gets_its_share_and_no_more() {
        let hasher = hasher(1, 8, 10);
        let first = hasher.share("192.0.2.1");
        let second = hasher.share("192.0.2.1");
        assert!(first.is_ok() && second.is_ok());
        assert!(matches!(
            hasher.share("192.0.2.1"),
            Err(Error::TooManyRequests { .. })
        ));
        assert!(hasher.share("192.0.2.2").is_ok());
        drop(first);
        assert!(hasher.share("192.0.2.1").is_ok());
        drop(second);
        let clients = hasher.clients.lock().map(|c| c.len()).unwrap_or(usize::MAX);
        assert_eq!(clients, 0);
    }

    #[tokio::test]
    async fn a_request_that_goes_away_leaves_the_queue_and_its_slot() {
        let hasher = Arc::new(hasher(1, 4, 10_000));
        let running = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.hash("the one that runs".into()).await }
        });
        while hasher.load().0 == 0 {
            tokio::task::yield_now().await;
        }
        let waiting = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.hash("the one that leaves".into()).await }
        });
        while hasher.load().1 == 0 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        assert!(waiting.await.is_err());
        assert_eq!(hasher.load().1, 0);
        assert!(matches!(running.await, Ok(Ok(_))));
        assert_eq!(hasher.load(), (0, 0));
    }
}
