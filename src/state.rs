//! What every request and service shares.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    checkpoints::Checkpoints,
    config::Config,
    domain::PasswordPolicy,
    services::{
        delivery::Deliverer, login_limit::LoginLimit, password_hash::Hasher,
        read_cache::ReadCaches, tokens::TokenKeys,
    },
};

/// The database, the configuration, the token keys, the password hashing
/// threads and what was lately read; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
    pub caches: Arc<ReadCaches>,
    pub hasher: Arc<Hasher>,
    /// The webhook delivery worker's state (its clock, for `redeliver`).
    pub deliverer: Arc<Deliverer>,
    /// Points where tests hold requests; never armed otherwise.
    pub checkpoints: Arc<Checkpoints>,
}

impl AppState {
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy::new(self.config.password_min_length)
    }

    /// The limit on failed logins.
    pub fn login_limit(&self) -> LoginLimit {
        LoginLimit {
            max_failures: self.config.login_max_failures,
            account_max_failures: Some(self.config.login_account_max_failures),
            window: self.config.login_window,
            known_client_for: self.config.login_known_client,
        }
    }
}
