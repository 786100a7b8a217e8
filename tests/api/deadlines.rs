//! Every statement ends with its request: past the deadline it stops with
//! `SERVICE_UNAVAILABLE`, and a dropped request gives its pool connection
//! back (SQLite: interrupted at once; PostgreSQL: at `statement_timeout`,
//! the request timeout).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use roster::{
    config::DEFAULT_SQLITE_PAGE_CACHE_KIB, error::Error, request_deadline::RequestDeadline,
    startup::Pool,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::helpers::fresh_database;

/// A statement that runs for far longer than any test waits.
fn slow_statement(db: &DatabaseConnection) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT pg_sleep(60)",
        _ => {
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000000000) SELECT count(*) FROM c"
        }
    };
    Statement::from_string(backend, sql)
}

/// A pool of one connection whose statements time out after a second.
async fn one_connection() -> (DatabaseConnection, Option<tempfile::TempDir>) {
    let (url, dir) = fresh_database().await;
    let pool = Pool {
        size: 1,
        statement_timeout: Duration::from_secs(1),
        sqlite_page_cache_kib: DEFAULT_SQLITE_PAGE_CACHE_KIB,
    };
    let db = roster::startup::connect_pool(&url, pool).await.unwrap();
    (db, dir)
}

/// On SQLite each connection keeps at most `ROSTER_SQLITE_PAGE_CACHE_KIB`
/// of pages (SQLite reads a negative size as KiB).
#[tokio::test]
async fn each_sqlite_connection_keeps_the_page_cache_it_is_given() {
    let (url, _dir) = fresh_database().await;
    if !url.starts_with("sqlite:") {
        eprintln!("skipped: SQLite only");
        return;
    }
    let cache_size = |db: DatabaseConnection| async move {
        let statement = Statement::from_string(DbBackend::Sqlite, "PRAGMA cache_size");
        let row = db.query_one_raw(statement).await.unwrap().unwrap();
        row.try_get_by_index::<i64>(0).unwrap()
    };
    let default = roster::startup::connect(&url).await.unwrap();
    assert_eq!(cache_size(default).await, -512);
    let pool = Pool {
        size: 1,
        statement_timeout: Duration::from_secs(1),
        sqlite_page_cache_kib: 64,
    };
    let small = roster::startup::connect_pool(&url, pool).await.unwrap();
    assert_eq!(cache_size(small).await, -64);
}

#[tokio::test]
async fn a_statement_past_its_request_deadline_is_service_unavailable() {
    let (db, _dir) = one_connection().await;
    let (deadline, _guard) = RequestDeadline::new(Duration::from_millis(300));
    let started = Instant::now();
    let result = deadline.scope(db.query_one_raw(slow_statement(&db))).await;
    let error = Error::from(result.expect_err("the statement ran to its end"));
    assert!(matches!(error, Error::ServiceUnavailable(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dropped_request_frees_its_pool_connection() {
    let (db, _dir) = one_connection().await;
    let (deadline, guard) = RequestDeadline::new(Duration::from_secs(60));
    let request = async {
        let _ends_with_the_request = guard;
        deadline.scope(db.query_one_raw(slow_statement(&db))).await
    };
    // The client goes away 200 ms into the statement.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), request)
            .await
            .is_err()
    );
    let started = Instant::now();
    let one = Statement::from_string(db.get_database_backend(), "SELECT 1");
    db.query_one_raw(one).await.unwrap();
    // Far less than the minute the statement would have run.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}
