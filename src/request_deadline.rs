//! Every SQL statement ends with the request it serves. The HTTP layer runs
//! each request inside [`RequestDeadline::scope`]; the database pool reads
//! the deadline of the request that acquires a connection:
//! - on SQLite, a progress handler interrupts the statement once the
//!   deadline passes or the request is dropped (its future cancelled by the
//!   deadline or by the client going away), so the connection comes back
//!   at once instead of when the statement would have ended;
//! - on PostgreSQL, every connection has `statement_timeout` equal to the
//!   request timeout, so no statement outlives its request by more than
//!   that (sqlx cannot send a cancel request; a dropped request's
//!   connection returns to the pool when its statement ends or times out).
//!
//! An interrupted or timed-out statement is `SERVICE_UNAVAILABLE`.
use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::sqlx::sqlite::LockedSqliteHandle;

tokio::task_local! {
    static CURRENT: RequestDeadline;
}

/// SQLite checks for an interrupt every this many virtual machine steps
/// (well under a millisecond of work).
const SQLITE_STEPS_PER_CHECK: i32 = 1_000;

/// When the request must be done, and whether it was dropped before.
#[derive(Clone, Debug)]
pub struct RequestDeadline {
    at: Instant,
    dropped: Arc<AtomicBool>,
}

/// Marks its request dropped when it goes, whether the request ended or
/// was cancelled.
pub struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl RequestDeadline {
    /// A deadline `limit` from now, and the guard that ends it when dropped.
    pub fn new(limit: Duration) -> (Self, DropGuard) {
        let dropped = Arc::new(AtomicBool::new(false));
        let deadline = Self {
            at: Instant::now() + limit,
            dropped: Arc::clone(&dropped),
        };
        (deadline, DropGuard(dropped))
    }

    /// Runs `future` with this deadline for its statements.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// The deadline of the request the caller runs in, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    fn is_over(&self) -> bool {
        self.dropped.load(Ordering::Relaxed) || Instant::now() >= self.at
    }
}

/// Spawns `future` (a DataLoader's batch) with the caller's deadline, so the
/// statements it runs end with the request too.
pub fn spawn_within_deadline(future: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
    match RequestDeadline::current() {
        Some(deadline) => {
            tokio::spawn(deadline.scope(future));
        }
        None => {
            tokio::spawn(future);
        }
    }
}

/// Arms a SQLite connection for the request that is taking it: interrupted
/// once that request's deadline passes or the request is dropped. Outside a
/// request (migrations, commands, background work) nothing interrupts it.
pub fn arm_sqlite(handle: &mut LockedSqliteHandle<'_>) {
    match RequestDeadline::current() {
        Some(deadline) => {
            handle.set_progress_handler(SQLITE_STEPS_PER_CHECK, move || !deadline.is_over())
        }
        None => handle.remove_progress_handler(),
    }
}
