//! Logs to standard error, filtered by `ROSTER_LOG`.
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the subscriber; a bad filter is a configuration error.
pub fn init(filter: &str) -> Result<(), String> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|e| format!("ROSTER_LOG (--log) is not a valid tracing filter: {e}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| format!("cannot install the logger: {e}"))
}
