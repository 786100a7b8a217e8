//! Connect, migrate, build the app, serve, shut down.
use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use tokio::net::TcpListener;

use crate::{config::Config, services, state::AppState};

/// The pool's size: SQLite has one writer anyway; PostgreSQL serves more.
pub fn max_connections(url: &str) -> u32 {
    if url.starts_with("sqlite:") { 8 } else { 16 }
}

/// Opens a pool on `url`. SQLite gets WAL, a busy timeout and foreign keys,
/// so that concurrent writers wait instead of failing.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(max_connections(url))
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // LIKE matches case-sensitively, as on PostgreSQL; the
                // case-insensitive lookups use the folded columns.
                .pragma("case_sensitive_like", "ON")
        });
    Database::connect(options).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to the database (ROSTER_DATABASE_URL): {}",
            one_line(&e)
        )
    })
}

fn one_line(error: &dyn std::fmt::Display) -> String {
    error.to_string().replace('\n', " ")
}

/// Applies every pending migration; a no-op when there is none.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None)
        .await
        .map_err(|e| anyhow::anyhow!("cannot migrate the database: {}", one_line(&e)))
}

/// Connects, migrates and loads the JWT secret.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let db = connect(&config.database_url).await?;
    state_on(db, config).await
}

/// Migrates `db` and loads the JWT secret: the state over a connection
/// made elsewhere (tests hook a statement counter into theirs).
pub async fn state_on(db: DatabaseConnection, config: Config) -> anyhow::Result<AppState> {
    migrate(&db).await?;
    let secret = services::settings::jwt_secret(&db, config.jwt_secret.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("cannot load the JWT secret: {e}"))?;
    Ok(AppState {
        db,
        config: Arc::new(config),
        tokens: Arc::new(services::tokens::TokenKeys::new(&secret)),
    })
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish.
pub async fn serve_on(
    listener: TcpListener,
    app: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = crate::http::router(app);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("the server stopped")
}

/// `roster serve`.
pub async fn serve(config: Config, bind: SocketAddr) -> anyhow::Result<()> {
    let app = build_state(config).await?;
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind} (ROSTER_BIND): {e}"))?;
    let address = listener.local_addr().unwrap_or(bind);
    tracing::info!("roster listening on http://{address}/ (GraphQL at /graphql)");
    serve_on(listener, app, shutdown_signal()).await?;
    tracing::info!("roster stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
