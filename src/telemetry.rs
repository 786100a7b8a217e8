//! Logs to standard error, filtered by `ROSTER_LOG`, as text or as one JSON
//! object per line (`ROSTER_LOG_FORMAT`).
use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::{
    EnvFilter, Layer as _, filter::Targets, layer::SubscriberExt as _, util::SubscriberInitExt as _,
};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// For people: `2026-12-02T10:00:00Z  INFO request{request_id=…}: …`.
    #[default]
    Text,
    /// For log stores: `{"timestamp", "level", "message", fields…,
    /// "target", "span": {"request_id", "method", "path", "operation"}}`.
    Json,
}

/// Installs the subscriber; a bad filter is a configuration error.
pub fn init(filter: &str, format: LogFormat) -> Result<(), String> {
    let mut filter = EnvFilter::try_new(filter)
        .map_err(|e| format!("ROSTER_LOG (--log) is not a valid tracing filter: {e}"))?;
    // PostgreSQL's notices ("relation ... already exists, skipping", from
    // each start's migration check) are noise at `info`; a filter that
    // names sqlx decides for itself.
    if !filter.to_string().contains("sqlx")
        && let Ok(quiet) = "sqlx::postgres::notice=warn".parse()
    {
        filter = filter.add_directive(quiet);
    }
    let lines = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .boxed(),
        // The request's span only (no list of every span around it): the
        // request id is then always at `span.request_id`.
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // sqlx's pool events feed `/metrics` whatever ROSTER_LOG says; they are
    // only sent when metrics are on.
    let pool_events = Targets::new().with_target("sqlx::pool::acquire", Level::TRACE);
    let installed = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(crate::measures::PoolAcquireLayer.with_filter(pool_events))
        .try_init();
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}
