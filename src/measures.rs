//! Prometheus metrics (`ROSTER_METRICS`, `ROSTER_METRICS_BIND`): the
//! recorder, what roster counts where it happens, and what it reads when
//! scraped. Until [`install`] runs (it does only when metrics are asked
//! for), every function here returns after checking one flag.
use std::{
    collections::HashMap,
    sync::{
        Mutex, OnceLock, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use entity::webhook_delivery;
use metrics::{
    Counter, Histogram, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
};

use crate::{services::outbox::DeliveryStatus, state::AppState};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static START: OnceLock<Instant> = OnceLock::new();
/// When the webhook queue was last counted, in ms since `START` (0: never).
static QUEUE_COUNTED_AT: AtomicU64 = AtomicU64::new(0);

/// Seconds, from 0.5 ms to 10 s: the buckets of every latency histogram.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the process's recorder (once; later calls do nothing).
pub fn install() -> Result<(), String> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
    let _ = HANDLE.set(handle);
    describe();
    Ok(())
}

/// Whether metrics are recorded in this process.
pub fn enabled() -> bool {
    HANDLE.get().is_some()
}

/// Folds recent histogram samples into their buckets; `serve` calls it
/// every few seconds so that samples do not pile up between scrapes.
pub fn upkeep() {
    if let Some(handle) = HANDLE.get() {
        handle.run_upkeep();
    }
}

fn describe() {
    describe_counter!(
        "roster_http_requests_total",
        "HTTP requests answered, by route and status."
    );
    describe_counter!(
        "roster_graphql_operations_total",
        "GraphQL operations run, by type and operation name (names past ROSTER_METRICS_MAX_OPERATION_NAMES are \"(other)\")."
    );
    describe_histogram!(
        "roster_graphql_operation_duration_seconds",
        "Time to run one GraphQL operation, by type and operation name."
    );
    describe_counter!(
        "roster_graphql_errors_total",
        "GraphQL errors answered, by extensions.code."
    );
    describe_gauge!(
        "roster_db_pool_connections",
        "Database connections, by state (open, idle, in_use, max)."
    );
    describe_histogram!(
        "roster_db_statement_duration_seconds",
        "Time of one SQL statement."
    );
    describe_histogram!(
        "roster_db_pool_acquire_seconds",
        "How long a statement waited for a pooled connection."
    );
    describe_counter!(
        "roster_db_statement_failures_total",
        "SQL statements that failed."
    );
    describe_counter!(
        "roster_cache_hits_total",
        "Reads answered by a read cache, by cache."
    );
    describe_counter!(
        "roster_cache_misses_total",
        "Reads a read cache had to load, by cache."
    );
    describe_gauge!("roster_cache_entries", "Entries in a read cache, by cache.");
    describe_gauge!(
        "roster_cache_bytes",
        "What a read cache's entries weigh, by cache."
    );
    describe_gauge!(
        "roster_password_hashes",
        "Password hashes in flight and queued, by state."
    );
    describe_counter!(
        "roster_login_failures_total",
        "Failed logins (wrong password or unknown account) and wrong current passwords."
    );
    describe_gauge!(
        "roster_webhook_queue_depth",
        "Webhook deliveries waiting for an attempt."
    );
    describe_counter!(
        "roster_webhook_attempts_total",
        "Webhook delivery attempts, by outcome."
    );
    describe_histogram!(
        "roster_webhook_attempt_duration_seconds",
        "Time of one webhook delivery attempt."
    );
    // Present from the start, so that a dashboard finds every family.
    counter!("roster_login_failures_total").absolute(0);
    for outcome in ["succeeded", "retried", "failed"] {
        counter!("roster_webhook_attempts_total", "outcome" => outcome).absolute(0);
    }
    counter!("roster_db_statement_failures_total").absolute(0);
}

/// The counters of HTTP answers, by route and status: a few dozen at most
/// (routes are a fixed set, statuses roster's own), kept so that counting
/// an answer builds no key.
static HTTP_COUNTERS: OnceLock<Mutex<HashMap<(&'static str, u16), Counter>>> = OnceLock::new();

/// One HTTP answer.
pub fn http_request(route: &'static str, status: u16) {
    if enabled() {
        let counters = HTTP_COUNTERS.get_or_init(Mutex::default);
        let mut counters = counters.lock().unwrap_or_else(PoisonError::into_inner);
        counters
            .entry((route, status))
            .or_insert_with(|| {
                counter!("roster_http_requests_total", "route" => route, "status" => status.to_string())
            })
            .increment(1);
    }
}

/// One error answered with `code`. Codes are roster's own; a code of any
/// other shape (which should not happen) is counted as `OTHER`.
pub fn error(code: &str) {
    if enabled() {
        let known = !code.is_empty()
            && code.len() <= 40
            && code.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
        let code = if known { code } else { "OTHER" };
        counter!("roster_graphql_errors_total", "code" => code.to_owned()).increment(1);
    }
}

static POOL_ACQUIRE: OnceLock<Histogram> = OnceLock::new();

/// Reads sqlx's event for each connection taken from the pool (turned on
/// with the metrics, at `trace`) into `roster_db_pool_acquire_seconds`.
pub struct PoolAcquireLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for PoolAcquireLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Waited(Option<f64>);
        impl tracing::field::Visit for Waited {
            fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
                if field.name() == "acquired_after_secs" {
                    self.0 = Some(value);
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        if !enabled() {
            return;
        }
        let mut waited = Waited(None);
        event.record(&mut waited);
        if let Some(seconds) = waited.0 {
            POOL_ACQUIRE
                .get_or_init(|| histogram!("roster_db_pool_acquire_seconds"))
                .record(seconds);
        }
    }
}

/// One SQL statement.
pub fn statement(took: Duration, failed: bool) {
    if enabled() {
        histogram!("roster_db_statement_duration_seconds").record(took);
        if failed {
            counter!("roster_db_statement_failures_total").increment(1);
        }
    }
}

pub fn login_failure() {
    if enabled() {
        counter!("roster_login_failures_total").increment(1);
    }
}

/// One webhook delivery attempt: `succeeded`, `retried` or `failed`.
pub fn webhook_attempt(outcome: &'static str, took: Duration) {
    if enabled() {
        counter!("roster_webhook_attempts_total", "outcome" => outcome).increment(1);
        histogram!("roster_webhook_attempt_duration_seconds").record(took);
    }
}

/// The text exposition of every metric, with the gauges read now; `None`
/// when metrics are off.
pub async fn scrape(app: &AppState) -> Option<String> {
    let handle = HANDLE.get()?;
    pool_gauges(&app.db);
    for (name, stats) in app.caches.stats() {
        counter!("roster_cache_hits_total", "cache" => name).absolute(stats.hits);
        counter!("roster_cache_misses_total", "cache" => name).absolute(stats.misses);
        gauge!("roster_cache_entries", "cache" => name).set(stats.entries as f64);
        gauge!("roster_cache_bytes", "cache" => name).set(stats.bytes as f64);
    }
    let (in_flight, queued) = app.hasher.load();
    gauge!("roster_password_hashes", "state" => "in_flight").set(in_flight as f64);
    gauge!("roster_password_hashes", "state" => "queued").set(queued as f64);
    // A statement at most once a second, however often `/metrics` is asked.
    let now = START.get_or_init(Instant::now).elapsed().as_millis() as u64;
    let last = QUEUE_COUNTED_AT.load(Ordering::Acquire);
    let due = last == 0 || now.saturating_sub(last) >= 1_000;
    if due
        && QUEUE_COUNTED_AT
            .compare_exchange(last, now.max(1), Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    {
        let pending = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .count(&app.db)
            .await;
        if let Ok(pending) = pending {
            gauge!("roster_webhook_queue_depth").set(pending as f64);
        }
    }
    Some(handle.render())
}

fn pool_gauges(db: &DatabaseConnection) {
    let (open, idle, max) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => return,
    };
    let idle = u32::try_from(idle).unwrap_or(u32::MAX);
    for (state, value) in [
        ("open", open),
        ("idle", idle),
        ("in_use", open.saturating_sub(idle)),
        ("max", max),
    ] {
        gauge!("roster_db_pool_connections", "state" => state).set(f64::from(value));
    }
}

/// The operation names counted under their own label: the first `max`
/// names of operations that ran (first come, first served; each a GraphQL
/// name of at most 64 characters); any other is `(other)`, so that clients
/// sending ever new names cannot grow the metrics without bound.
pub struct OperationNames {
    max: usize,
    seen: Mutex<Seen>,
}

/// The instruments of each label, kept so that counting an operation builds
/// no key.
#[derive(Default)]
struct Seen {
    names: HashMap<Box<str>, ByType>,
    other: ByType,
    anonymous: ByType,
}

#[derive(Default)]
struct ByType {
    query: Option<(Counter, Histogram)>,
    mutation: Option<(Counter, Histogram)>,
}

impl OperationNames {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            seen: Mutex::default(),
        }
    }

    /// Counts one operation of `kind` (`query` or `mutation`) named `name`
    /// (`(anonymous)` when unnamed, `(other)` past the bound) that ran in
    /// `took`.
    pub fn record(&self, kind: &'static str, name: Option<&str>, took: Duration) {
        if !enabled() {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = &mut *seen;
        let (label, by_type) = match name {
            None => ("(anonymous)", &mut seen.anonymous),
            Some(name) if seen.names.contains_key(name) || seen.names.len() < self.max => {
                (name, seen.names.entry(name.into()).or_default())
            }
            Some(_) => ("(other)", &mut seen.other),
        };
        let slot = match kind {
            "mutation" => &mut by_type.mutation,
            _ => &mut by_type.query,
        };
        let (counter, histogram) = slot.get_or_insert_with(|| {
            let labels = [("type", kind.to_owned()), ("operation", label.to_owned())];
            (
                counter!("roster_graphql_operations_total", &labels),
                histogram!("roster_graphql_operation_duration_seconds", &labels),
            )
        });
        counter.increment(1);
        histogram.record(took);
    }

    /// The labels given their own series so far.
    #[cfg(test)]
    fn labels(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut labels: Vec<String> = seen.names.keys().map(|k| k.to_string()).collect();
        labels.sort();
        labels
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_counted_or_kept_without_a_recorder() {
        let names = OperationNames::new(2);
        // Without a recorder nothing is counted, nor any name kept.
        names.record("query", Some("A"), Duration::ZERO);
        assert!(names.labels().is_empty());
    }
}
