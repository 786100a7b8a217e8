//! Each client network's budget of requests that hash passwords or guess
//! tokens (`register`, `login`, `refreshToken`, `changePassword`): a token
//! bucket of `burst` requests that refills at `per_minute`, kept in the
//! database so that every process sharing it, and every alias and batch,
//! spends from the same budget.
//!
//! It is stored as a generic cell rate (what the `governor` crate does in
//! memory): one number per client, the moment its budget will be full
//! again. A request is allowed when, after adding its own cost, that moment
//! is at most `burst` costs away; one conditional upsert decides and
//! records it, so concurrent requests cannot overspend.
use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{
    clock,
    error::{Error, Result},
};

/// The budget's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientBudget {
    /// Requests a client may make at once, with a full budget.
    pub burst: u32,
    /// Requests per minute the budget refills by.
    pub per_minute: u32,
}

impl ClientBudget {
    /// Milliseconds one request costs: the time the budget takes to refill
    /// it.
    fn cost_ms(self) -> i64 {
        (60_000 / i64::from(self.per_minute.max(1))).max(1)
    }
}

fn now_ms() -> i64 {
    clock::now().timestamp_millis()
}

/// Spends one request of `client`'s budget, or refuses with
/// `RATE_LIMITED` and the seconds until one is available again.
pub async fn spend(db: &impl ConnectionTrait, budget: ClientBudget, client: &str) -> Result<()> {
    let backend = db.get_database_backend();
    let greatest = match backend {
        DbBackend::Sqlite => "MAX",
        _ => "GREATEST",
    };
    let (now, cost) = (now_ms(), budget.cost_ms());
    let ceiling = cost.saturating_mul(i64::from(budget.burst));
    let sql = format!(
        "INSERT INTO client_budgets (client, full_at_ms) VALUES ($1, $2 + $3) \
         ON CONFLICT (client) DO UPDATE \
         SET full_at_ms = {greatest}(client_budgets.full_at_ms, $2) + $3 \
         WHERE {greatest}(client_budgets.full_at_ms, $2) + $3 - $2 <= $4 \
         RETURNING full_at_ms"
    );
    let spent = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [client.into(), now.into(), cost.into(), ceiling.into()],
        ))
        .await?;
    if spent.is_some() {
        return Ok(());
    }
    let full_at: Option<i64> = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT full_at_ms FROM client_budgets WHERE client = $1",
            [client.into()],
        ))
        .await?
        .and_then(|row| row.try_get_by_index(0).ok());
    // Allowed again once the moment the budget is full is within `burst`
    // costs after adding one more.
    let wait_ms = full_at
        .unwrap_or(now)
        .max(now)
        .saturating_add(cost)
        .saturating_sub(ceiling)
        .saturating_sub(now);
    let retry_after_secs = u64::try_from(wait_ms.max(0)).map_or(1, |ms| ms.div_ceil(1000).max(1));
    Err(Error::TooManyRequests { retry_after_secs })
}

/// Forgets the budgets that are full again: such a row means the same as
/// none.
pub async fn prune(db: &impl ConnectionTrait) -> Result<()> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "DELETE FROM client_budgets WHERE full_at_ms < $1",
        [now_ms().into()],
    ))
    .await?;
    Ok(())
}

/// How often [`prune`] runs in the background.
pub const PRUNE_EVERY: Duration = Duration::from_secs(60);
