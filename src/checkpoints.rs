//! Named points in the services where a test can hold a request, to drive
//! a race (a login straddling a password change) deterministically instead
//! of by sleeping. Nothing is ever armed outside tests; passing an unarmed
//! point costs one atomic load.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::sync::Semaphore;

/// A login that checked the password and is about to issue its tokens.
pub const LOGIN_VERIFIED: &str = "login:verified";
/// A refresh that retired its token and is about to issue the next one.
pub const REFRESH_ROTATING: &str = "refresh:rotating";

/// The points armed by a test.
#[derive(Default)]
pub struct Checkpoints {
    any: AtomicBool,
    armed: Mutex<HashMap<&'static str, Arc<Checkpoint>>>,
}

/// One armed point: a request that passes it waits until it is released.
pub struct Checkpoint {
    reached: Semaphore,
    released: Semaphore,
}

impl Default for Checkpoint {
    fn default() -> Self {
        Self {
            reached: Semaphore::new(0),
            released: Semaphore::new(0),
        }
    }
}

impl Checkpoint {
    /// Waits until a request reaches the point.
    pub async fn reached(&self) {
        if let Ok(permit) = self.reached.acquire().await {
            permit.forget();
        }
    }

    /// Lets one request that reached the point go on.
    pub fn release(&self) {
        self.released.add_permits(1);
    }
}

impl Checkpoints {
    /// Makes requests that pass `name` wait for [`Checkpoint::release`].
    pub fn arm(&self, name: &'static str) -> Arc<Checkpoint> {
        let point = Arc::new(Checkpoint::default());
        self.armed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name, Arc::clone(&point));
        self.any.store(true, Ordering::SeqCst);
        point
    }

    /// Requests pass `name` freely again.
    pub fn disarm(&self, name: &'static str) {
        self.armed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Called by a service at the point `name`.
    pub async fn pass(&self, name: &'static str) {
        if !self.any.load(Ordering::SeqCst) {
            return;
        }
        let point = self
            .armed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned();
        if let Some(point) = point {
            point.reached.add_permits(1);
            if let Ok(permit) = point.released.acquire().await {
                permit.forget();
            }
        }
    }
}
