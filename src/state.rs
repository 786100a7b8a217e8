//! What every request and service shares.
use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{config::Config, domain::PasswordPolicy, services::tokens::TokenKeys};

/// The database, the configuration and the token keys; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
}

impl AppState {
    pub fn password_policy(&self) -> PasswordPolicy {
        PasswordPolicy::new(self.config.password_min_length)
    }
}
