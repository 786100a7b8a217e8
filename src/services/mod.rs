//! The business rules. Services take a database connection (or transaction)
//! and return `roster::Error`; they know nothing of HTTP or GraphQL.
pub mod access;
pub mod accounts;
pub mod catalog;
pub mod client_budget;
pub mod delivery;
pub mod demo_data;
pub mod events;
pub mod login_limit;
pub mod outbox;
pub mod password_hash;
pub mod read_cache;
pub mod reads;
pub mod refresh_tokens;
pub mod settings;
pub mod tokens;
pub mod user_admin;
pub mod users;
pub mod webhooks;

/// Begins a transaction that will write after reading. On SQLite it takes
/// the write lock at once (a write that changes nothing), so that it waits
/// for other writers up front instead of failing to upgrade a read later.
pub(crate) async fn begin_write(
    db: &sea_orm::DatabaseConnection,
) -> crate::error::Result<sea_orm::DatabaseTransaction> {
    use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
    let txn = db.begin().await?;
    if txn.get_database_backend() == DbBackend::Sqlite {
        txn.execute_unprepared("UPDATE settings SET value = value WHERE key = ''")
            .await?;
    }
    Ok(txn)
}

/// On PostgreSQL, takes the transaction-scoped advisory lock named `key`:
/// transactions that take the same key run one after another. On SQLite,
/// nothing (its write lock serializes writers already).
pub(crate) async fn lock_on_postgres(
    txn: &impl sea_orm::ConnectionTrait,
    key: String,
) -> crate::error::Result<()> {
    use sea_orm::{DbBackend, Statement};
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [key.into()],
        ))
        .await?;
    }
    Ok(())
}

/// A database id given as text; malformed is `BAD_USER_INPUT` on `field`.
pub fn parse_id(id: &str, field: &str) -> crate::error::Result<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| crate::error::Error::bad_input(field, "Not a valid id."))
}

/// Lower-case hex of `bytes` (token ids and digests).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
