//! Logs to standard error, filtered by `ROSTER_LOG`, as text or as one JSON
//! object per line (`ROSTER_LOG_FORMAT`).
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        // The request's span only (no list of every span around it): the
        // request id is then always at `span.request_id`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}
