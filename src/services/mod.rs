//! The business rules. Services take a database connection (or transaction)
//! and return `roster::Error`; they know nothing of HTTP or GraphQL.
pub mod accounts;
pub mod catalog;
pub mod client_budget;
pub mod demo_data;
pub mod login_limit;
pub mod password_hash;
pub mod read_cache;
pub mod refresh_tokens;
pub mod settings;
pub mod tokens;
pub mod user_admin;
pub mod users;

/// Lower-case hex of `bytes` (token ids and digests).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
