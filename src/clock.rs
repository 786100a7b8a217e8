//! The one clock of roster.
use chrono::{DateTime, SubsecRound, Utc};

/// Now, to the whole second. Stored timestamps have one-second precision so
/// that SQLite's text form has a fixed width and sorts like the instants.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}
