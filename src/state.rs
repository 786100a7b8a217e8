//! What every request and service shares.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    config::Config,
    domain::PasswordPolicy,
    services::{read_cache::ReadCaches, tokens::TokenKeys},
};

/// The database, the configuration, the token keys and what was lately
/// read; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
    pub caches: Arc<ReadCaches>,
}

impl AppState {
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy::new(self.config.password_min_length)
    }
}
