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
//! Memory held for hashing is therefore at most `concurrency` × 19 MiB
//! (plus what the allocator keeps of it per thread), whatever the load.
use std::{
    sync::{
        Arc, LazyLock, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::error::{Error, Result};

/// OWASP's minimum for Argon2id: 19 MiB of memory, 2 passes, 1 lane.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(Error::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A hash of a password nobody has, verified when there is no real hash to
/// check, so that failures take as long as a wrong password does.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_now("roster-dummy-password").ok());

fn hash_now(password: &str) -> Result<String> {
    Ok(argon2()?
        .hash_password(password.as_bytes())
        .map_err(Error::internal)?
        .to_string())
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Right, but hashed with other parameters than today's: rehash it.
    YesButOutdated,
}

fn verify_now(password: &str, stored: Option<&str>) -> Result<Verified> {
    let (phc, real) = match stored {
        Some(phc) => (phc, true),
        None => (
            DUMMY_HASH
                .as_deref()
                .ok_or_else(|| Error::internal(anyhow::anyhow!("no dummy hash")))?,
            false,
        ),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Ok(Verified::No);
    };
    if argon2()?
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
        || !real
    {
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
}

impl HashLimits {
    /// One thread, for the commands that hash once (`create-superuser`,
    /// `demo-data`).
    pub fn one_at_a_time() -> Self {
        Self {
            concurrency: 1,
            queue: 1,
            wait: Duration::from_secs(60),
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads and their queue; shared by every request.
pub struct Hasher {
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    computed: Arc<AtomicU64>,
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
                    loop {
                        let job = receiver
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
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
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let permit = self.slot().await?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let _guard = Abandoned(Arc::clone(&abandoned));
        let (answer, answered) = oneshot::channel();
        let computed = Arc::clone(&self.computed);
        let job: Job = Box::new(move || {
            // The slot is held until the hash is done, even when nobody
            // waits for it any more.
            let result = (!abandoned.load(Ordering::SeqCst)).then(|| {
                computed.fetch_add(1, Ordering::SeqCst);
                work()
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
        self.run(move || hash_now(&password)).await
    }

    /// Checks `password` against `stored`. With no stored hash, a dummy hash
    /// is checked instead, so that the answer (always `No`) takes the same
    /// time.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<Verified> {
        self.run(move || verify_now(&password, stored.as_deref()))
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
