//! Connect, migrate, build the app, serve, shut down.
use std::{
    net::SocketAddr,
    sync::{Arc, Weak},
    time::Duration,
};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend,
    sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions},
};
use tokio::net::TcpListener;

use crate::{
    config::Config,
    request_deadline, services,
    services::{
        client_budget,
        delivery::Deliverer,
        login_limit::{self, LoginLimit},
        password_hash::Hasher,
        read_cache::ReadCaches,
    },
    state::AppState,
};

/// The pool's default size. SQLite has one writer anyway, and each of its
/// connections is a thread of its own: on two cores, 4 served reads fastest
/// (bench/README.md). PostgreSQL serves more.
pub fn max_connections(url: &str) -> u32 {
    if url.starts_with("sqlite:") { 4 } else { 16 }
}

/// Opens a pool on `url`. SQLite gets WAL, a busy timeout and foreign keys,
/// so that concurrent writers wait instead of failing. Statements end with
/// their request, at the default request timeout.
pub async fn connect(url: &str) -> anyhow::Result<DatabaseConnection> {
    let pool = Pool {
        size: max_connections(url),
        statement_timeout: Duration::from_secs(crate::config::DEFAULT_REQUEST_TIMEOUT_SECS),
        sqlite_page_cache_kib: crate::config::DEFAULT_SQLITE_PAGE_CACHE_KIB,
    };
    connect_pool(url, pool).await
}

/// How [`connect_pool`] sizes its pool and bounds its connections.
pub struct Pool {
    /// Most connections open at once.
    pub size: u32,
    /// Longest a statement runs: the request timeout (see
    /// [`crate::request_deadline`]).
    pub statement_timeout: Duration,
    /// SQLite: the page cache of each connection, in KiB. With SQLite's
    /// default (2,000 KiB) the bench's peak RSS was 13 MiB higher than with
    /// 512 (the caches and the allocator's arenas around them), and
    /// searches no faster (bench/README.md).
    pub sqlite_page_cache_kib: u32,
}

/// [`connect`], as `pool` says.
pub async fn connect_pool(url: &str, pool: Pool) -> anyhow::Result<DatabaseConnection> {
    let Pool {
        size,
        statement_timeout,
        sqlite_page_cache_kib,
    } = pool;
    let mut options = ConnectOptions::new(url);
    options
        // PostgreSQL only: sent when each connection starts, so it costs
        // no round trip.
        .statement_timeout(statement_timeout)
        // SQLite: each connection is armed for the request taking it. A
        // connection whose transaction an interrupt ended is replaced.
        .map_sqlx_sqlite_before_acquire(|connection, _| {
            Box::pin(async move {
                if sea_orm::sqlx::Connection::is_in_transaction(connection) {
                    return Ok(false);
                }
                request_deadline::arm_sqlite(&mut connection.lock_handle().await?);
                Ok(true)
            })
        })
        .map_sqlx_sqlite_pool_opts(|pool| {
            pool.after_connect(|connection, _| {
                Box::pin(async move {
                    request_deadline::arm_sqlite(&mut connection.lock_handle().await?);
                    Ok(())
                })
            })
        });
    options
        .max_connections(size)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5))
        // Pinging every connection before each statement doubled the round
        // trips; a connection idle for a while is still checked.
        .test_before_acquire_if_idle_for(Duration::from_secs(1))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |opts| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // LIKE matches case-sensitively, as on PostgreSQL; the
                // case-insensitive lookups use the folded columns.
                .pragma("case_sensitive_like", "ON")
                // Negative: a size in KiB rather than in pages.
                .pragma("cache_size", format!("-{sqlite_page_cache_kib}"))
        });
    if crate::measures::enabled() {
        // sqlx then reports how long each statement waited for a connection
        // (an event `measures::PoolAcquireLayer` reads).
        let level = log::LevelFilter::Trace;
        options
            .map_sqlx_postgres_pool_opts(move |pool| pool.acquire_time_level(level))
            .map_sqlx_sqlite_pool_opts(move |pool| pool.acquire_time_level(level));
    }
    let mut db = Database::connect(options).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot connect to the database (ROSTER_DATABASE_URL): {}",
            one_line(&e)
        )
    })?;
    // `ROSTER_LOG=warn,roster::sql=trace` logs every statement (bench/run.sh
    // counts them); otherwise nothing is hooked in.
    let log = tracing::enabled!(target: "roster::sql", tracing::Level::TRACE);
    if log || crate::measures::enabled() {
        db.set_metric_callback(move |info| {
            crate::measures::statement(info.elapsed, info.failed);
            if log {
                tracing::trace!(
                    target: "roster::sql",
                    elapsed = ?info.elapsed,
                    failed = info.failed,
                    "statement: {}",
                    info.statement.sql
                );
            }
        });
    }
    Ok(db)
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

/// On PostgreSQL, makes sure of the trigram indexes of migration 19: where
/// `pg_trgm` could not be created then, tries again (a superuser may have
/// created the extension since), and says so at start when they are still
/// missing: substring searches then scan the users table, correct but
/// slower.
async fn check_substring_indexes(db: &DatabaseConnection) {
    if db.get_database_backend() != DbBackend::Postgres {
        return;
    }
    let count = || async {
        let statement = sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) AS n FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename = 'users' AND indexname LIKE 'users\\_%\\_trgm\\_idx'",
        );
        match db.query_one_raw(statement).await {
            Ok(Some(row)) => row.try_get::<i64>("", "n").unwrap_or(0),
            _ => 0,
        }
    };
    let wanted = migration::SUBSTRING_INDEXED_COLUMNS.len() as i64;
    if count().await >= wanted {
        return;
    }
    if let Err(error) = db
        .execute_unprepared(&migration::postgres_substring_indexes())
        .await
    {
        tracing::warn!(error = %one_line(&error), "cannot create the trigram indexes");
    }
    if count().await < wanted {
        tracing::warn!(
            "the pg_trgm extension is missing, so substring searches scan the users \
             table; once a superuser runs CREATE EXTENSION pg_trgm in this database, \
             roster creates its indexes at its next start"
        );
    }
}

/// Connects, migrates and loads the JWT secret.
pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let url = &config.database_url;
    let pool = Pool {
        size: config.pool_size.unwrap_or(max_connections(url)),
        statement_timeout: config.request_timeout,
        sqlite_page_cache_kib: config.sqlite_page_cache_kib,
    };
    let db = connect_pool(url, pool).await?;
    state_on(db, config).await
}

/// Migrates `db` and loads the JWT secret: the state over a connection
/// made elsewhere (tests hook a statement counter into theirs).
pub async fn state_on(db: DatabaseConnection, config: Config) -> anyhow::Result<AppState> {
    migrate(&db).await?;
    check_substring_indexes(&db).await;
    let secret = services::settings::jwt_secret(&db, config.jwt_secret.as_ref())
        .await
        .map_err(|e| anyhow::anyhow!("cannot load the JWT secret: {e}"))?;
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    // On PostgreSQL the caches stay off until the listener hears changes.
    let caches = Arc::new(ReadCaches::new(
        config.cache,
        config.cache_max_bytes,
        !postgres,
    ));
    if postgres && !config.cache.is_zero() {
        let pool = db.get_postgres_connection_pool().connect_options();
        spawn_listener((*pool).clone(), &caches);
    }
    let deliverer = Arc::new(Deliverer::new(
        db.clone(),
        Arc::downgrade(&caches),
        config.webhooks.clone(),
    )?);
    if config.webhooks.concurrency > 0 {
        tokio::spawn(deliverer.clone().run(caches.gone()));
    }
    let state = AppState {
        deliverer,
        db,
        hasher: Arc::new(Hasher::new(config.hash_limits)),
        config: Arc::new(config),
        tokens: Arc::new(services::tokens::TokenKeys::new(&secret)),
        caches,
        checkpoints: Arc::default(),
    };
    tokio::spawn(prune_limits(
        state.db.clone(),
        state.login_limit(),
        state.config.audit_retention,
        state.caches.gone(),
    ));
    Ok(state)
}

/// Forgets, once a minute, the client budgets that are full again, the
/// failed logins past the window, the clients whose last login to an
/// account is past the known-client period, and the audit events past
/// their retention.
async fn prune_limits(
    db: DatabaseConnection,
    limit: LoginLimit,
    audit_retention: Option<Duration>,
    mut gone: tokio::sync::watch::Receiver<()>,
) {
    loop {
        // Ends with the app's state (its caches are dropped with it).
        tokio::select! {
            _ = gone.changed() => return,
            () = tokio::time::sleep(client_budget::PRUNE_EVERY) => {}
        }
        let pruned = [
            client_budget::prune(&db).await,
            login_limit::prune_failures(&db, limit).await,
            login_limit::prune_known_clients(&db, limit).await,
            services::events::prune(&db, audit_retention).await,
        ];
        for error in pruned.into_iter().filter_map(Result::err) {
            tracing::debug!(%error, "cannot prune the limits' records");
        }
    }
}

/// Runs [`listen_for_changes`] on a thread of its own, with a runtime of
/// its own: a notice is acted on as soon as it arrives, not when a worker
/// busy with requests (perhaps the very request the notice is about) gets
/// to it. The thread ends when the caches are dropped.
fn spawn_listener(options: PgConnectOptions, caches: &Arc<ReadCaches>) {
    let gone = caches.gone();
    let caches = Arc::downgrade(caches);
    let spawned = std::thread::Builder::new()
        .name("roster-listener".into())
        .spawn(move || {
            // However the thread ends (a panic included), caching ends too:
            // nothing would tell these caches of changes any more.
            let _off = CachesOffOnDrop(caches.clone());
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(listen_for_changes(options, caches, gone)),
                Err(error) => tracing::error!(%error, "cannot start the change listener"),
            }
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the change listener; caches stay off");
    }
}

/// Turns the caches off when dropped.
struct CachesOffOnDrop(Weak<ReadCaches>);

impl Drop for CachesOffOnDrop {
    fn drop(&mut self) {
        if let Some(caches) = self.0.upgrade() {
            caches.set_enabled(false);
        }
    }
}

/// Forgets cached reads as other processes (and this one) change what they
/// were read from. Caching is on only while this listens: a notice missed
/// while the connection was down could leave a revoked token accepted.
async fn listen_for_changes(
    options: PgConnectOptions,
    caches: Weak<ReadCaches>,
    mut gone: tokio::sync::watch::Receiver<()>,
) {
    // A pool of its own, so that listening takes no connection from queries.
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    loop {
        let error = tokio::select! {
            biased;
            _ = gone.changed() => return,
            error = listen(&pool, &caches) => error,
        };
        match caches.upgrade() {
            Some(caches) => caches.set_enabled(false),
            None => return,
        }
        tracing::warn!(%error, "not listening for changes; caches off, retrying in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Listens, with the caches on, until the connection fails for good.
/// (Dropped, between notices, once the caches are gone.)
async fn listen(pool: &PgPool, caches: &Weak<ReadCaches>) -> sea_orm::sqlx::Error {
    // PostgreSQL's channel for changes to users, memberships, groups and
    // divisions: the one of the schema roster's tables are in (see the
    // migration that names it). Asked first: the listener then keeps the
    // pool's one connection.
    let channel: String =
        match sea_orm::sqlx::query_scalar("SELECT 'roster_changes_' || md5(current_schema())")
            .fetch_one(pool)
            .await
        {
            Ok(channel) => channel,
            Err(error) => return error,
        };
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(error) => return error,
    };
    if let Err(error) = listener.listen(&channel).await {
        return error;
    }
    if let Some(caches) = caches.upgrade() {
        caches.set_enabled(true);
    }
    loop {
        let received = listener.try_recv().await;
        let Some(caches) = caches.upgrade() else {
            return sea_orm::sqlx::Error::PoolClosed;
        };
        match received {
            Ok(Some(notice)) if caches.marker_heard(notice.payload()) => {}
            Ok(Some(notice)) => match notice.payload().parse::<i64>() {
                Ok(id) => caches.user_changed(id),
                // A user added (perhaps one asked for before it existed),
                // or a membership, group or division changed.
                Err(_) => caches.forget_all(),
            },
            // Reconnected: what was sent meanwhile is lost.
            Ok(None) => caches.forget_all(),
            Err(error) => return error,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish.
pub async fn serve_on(
    listener: TcpListener,
    app: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = Arc::clone(&app.config);
    let router = crate::http::router(app).await;
    crate::http::listener::serve(listener, router, &config, shutdown)
        .await
        .context("the server stopped")
}

/// `roster serve`.
pub async fn serve(config: Config, bind: SocketAddr) -> anyhow::Result<()> {
    // Before the pool, whose statements it times.
    if config.metrics.enabled() {
        crate::measures::install().map_err(anyhow::Error::msg)?;
        tokio::spawn(async {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                crate::measures::upkeep();
            }
        });
    }
    let metrics_bind = config.metrics.bind;
    let app = build_state(config).await?;
    if let Some(metrics_bind) = metrics_bind {
        let listener = TcpListener::bind(metrics_bind).await.map_err(|e| {
            anyhow::anyhow!("cannot listen on {metrics_bind} (ROSTER_METRICS_BIND): {e}")
        })?;
        let address = listener.local_addr().unwrap_or(metrics_bind);
        tracing::info!("metrics at http://{address}/metrics");
        let router = crate::http::metrics_router(app.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!("the metrics listener stopped: {e}");
            }
        });
    }
    let listener = TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind} (ROSTER_BIND): {e}"))?;
    let address = listener.local_addr().unwrap_or(bind);
    tracing::info!("roster listening on http://{address}/ (GraphQL at /graphql)");
    if services::users::none_yet(&app.db).await {
        tracing::info!(
            "no users yet: create the first superuser with `roster create-superuser --username admin \
             --email admin@example.com` (with this server's ROSTER_DATABASE_URL; it asks for the \
             password, or reads ROSTER_SUPERUSER_PASSWORD), then log in at http://{address}/"
        );
    }
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
