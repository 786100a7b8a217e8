//! Brute-force protection for `login`: at most `max` failures per typed
//! identifier and client address within the window, counted in the
//! database so that every process sharing it agrees.
//!
//! An attempt is recorded *before* the password is checked, in a transaction
//! that serializes the attempts of one identifier and client (an advisory
//! lock on PostgreSQL, the write lock on SQLite): the k-th attempt counts
//! exactly k rows, so exactly `max` attempts reach the password check however
//! many arrive at once (a batch, aliases, several processes). A refused
//! attempt is rolled back; a successful one clears the failures.
use std::time::Duration;

use chrono::TimeDelta;
use entity::login_failure;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set, Statement, TransactionSession, TransactionTrait,
};

use crate::{
    clock,
    error::{Error, Result},
};

/// The limit's settings.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimit {
    pub max_failures: u32,
    pub window: Duration,
}

/// A recorded attempt, to be kept as a failure or cleared on success.
#[derive(Debug)]
pub struct Attempt {
    id: i64,
    identifier_folded: String,
    client: String,
}

fn window_start(limit: LoginLimit) -> chrono::DateTime<chrono::Utc> {
    let window = TimeDelta::from_std(limit.window).unwrap_or(TimeDelta::MAX);
    clock::now()
        .checked_sub_signed(window)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// Records an attempt, or refuses it with `RATE_LIMITED` when the limit is
/// reached. Also prunes failures older than the window.
pub async fn begin(
    db: &(impl ConnectionTrait + TransactionTrait),
    limit: LoginLimit,
    identifier_folded: &str,
    client: &str,
) -> Result<Attempt> {
    let since = window_start(limit);
    login_failure::Entity::delete_many()
        .filter(login_failure::Column::FailedAt.lt(since))
        .exec(db)
        .await?;
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("login:{client}:{identifier_folded}").into()],
        ))
        .await?;
    }
    let db = &txn;
    let attempt = login_failure::ActiveModel {
        identifier_folded: Set(identifier_folded.to_owned()),
        client: Set(client.to_owned()),
        failed_at: Set(clock::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let recent = || {
        login_failure::Entity::find()
            .filter(login_failure::Column::IdentifierFolded.eq(identifier_folded))
            .filter(login_failure::Column::Client.eq(client))
            .filter(login_failure::Column::FailedAt.gte(since))
    };
    let count = recent().count(db).await?;
    if count > u64::from(limit.max_failures) {
        let oldest = recent()
            .order_by_asc(login_failure::Column::FailedAt)
            .one(db)
            .await?
            .map_or(attempt.failed_at, |failure| failure.failed_at);
        let window = i64::try_from(limit.window.as_secs()).unwrap_or(i64::MAX);
        let elapsed = (clock::now() - oldest).num_seconds();
        let retry_after_secs = u64::try_from(window.saturating_sub(elapsed).max(1)).unwrap_or(1);
        txn.rollback().await?;
        return Err(Error::RateLimited { retry_after_secs });
    }
    txn.commit().await?;
    Ok(Attempt {
        id: attempt.id,
        identifier_folded: identifier_folded.to_owned(),
        client: client.to_owned(),
    })
}

impl Attempt {
    /// The attempt failed: it stays recorded and counts against the limit.
    pub fn failed(self) {}

    /// The attempt was no failure: it is forgotten, earlier failures stay.
    pub async fn discard(self, db: &impl ConnectionTrait) -> Result<()> {
        login_failure::Entity::delete_by_id(self.id)
            .exec(db)
            .await?;
        Ok(())
    }

    /// The attempt succeeded: earlier failures of this identifier and client
    /// are forgotten.
    pub async fn succeeded(self, db: &impl ConnectionTrait) -> Result<()> {
        login_failure::Entity::delete_many()
            .filter(login_failure::Column::IdentifierFolded.eq(self.identifier_folded))
            .filter(login_failure::Column::Client.eq(self.client))
            .exec(db)
            .await?;
        Ok(())
    }
}
