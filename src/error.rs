//! The one error type of roster, and how it answers a GraphQL client.
//!
//! Every error a service returns is an [`Error`]. A resolver passes it on
//! with `?` (async-graphql keeps it as the error's source) and the schema's
//! edge (`graphql::error_codes`) gives it the contract's `extensions.code`
//! (and `extensions.fields` or `extensions.retryAfter`); `extend()` does the
//! same at once where an `async_graphql::Error` is built by hand. Internal
//! errors are logged with their cause chain here and reach the client as a
//! bare message.
use std::collections::BTreeMap;

use async_graphql::{ErrorExtensions, Value};
use sea_orm::{DbErr, RuntimeErr};

/// Messages per input field, keyed by the field's schema name (camelCase).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one message for `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }

    /// Adds every message of `messages` for `field`.
    pub fn extend(&mut self, field: &str, messages: impl IntoIterator<Item = String>) {
        for message in messages {
            self.add(field, message);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when no message was added, else a `BAD_USER_INPUT` error.
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::BadUserInput(self))
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Vec<String>)> {
        self.0.iter()
    }

    /// A single field with a single message.
    pub fn one(field: &str, message: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.add(field, message);
        errors
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid credentials where they are needed.
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("Invalid input.")]
    BadUserInput(FieldErrors),
    #[error("A unique value is already taken.")]
    Conflict(FieldErrors),
    #[error("The user's division is inactive.")]
    DivisionInactive,
    #[error("Too many failed attempts; try again later.")]
    RateLimited { retry_after_secs: u64 },
    /// The client spent its budget of work that hashes passwords.
    #[error("Too many requests from your network; try again later.")]
    TooManyRequests { retry_after_secs: u64 },
    /// Every password hashing thread is taken and the queue is full.
    #[error("The server is busy; try again in a moment.")]
    Busy { retry_after_secs: u64 },
    #[error("The database cannot be reached; try again shortly.")]
    ServiceUnavailable(#[source] DbErr),
    #[error("Internal error.")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    /// The contract's `extensions.code` for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::Forbidden(_) => "FORBIDDEN",
            Error::NotFound(_) => "NOT_FOUND",
            Error::BadUserInput(_) => "BAD_USER_INPUT",
            Error::Conflict(_) => "CONFLICT",
            Error::DivisionInactive => "DIVISION_INACTIVE",
            Error::RateLimited { .. } | Error::TooManyRequests { .. } => "RATE_LIMITED",
            Error::Busy { .. } => "SERVICE_UNAVAILABLE",
            Error::ServiceUnavailable(_) => "SERVICE_UNAVAILABLE",
            Error::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Error::Internal(error.into())
    }

    pub fn bad_input(field: &str, message: impl Into<String>) -> Self {
        Error::BadUserInput(FieldErrors::one(field, message))
    }

    /// Logs what the client will not see.
    fn log(&self) {
        match self {
            Error::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error")
            }
            Error::ServiceUnavailable(cause) => {
                tracing::warn!(error = %cause, "database unavailable")
            }
            _ => {}
        }
    }
}

/// Database errors that mean "the database is not reachable right now"
/// become `SERVICE_UNAVAILABLE`; anything else is internal.
impl From<DbErr> for Error {
    fn from(error: DbErr) -> Self {
        if is_unavailable(&error) {
            Error::ServiceUnavailable(error)
        } else {
            Error::Internal(error.into())
        }
    }
}

fn is_unavailable(error: &DbErr) -> bool {
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::WorkerCrashed => true,
                // A statement stopped at its request's deadline: PostgreSQL's
                // query_canceled (statement_timeout), SQLite's SQLITE_INTERRUPT;
                // or a transaction PostgreSQL chose to abort so that another
                // could go on (deadlock_detected, serialization_failure):
                // the same request sent again succeeds.
                sea_orm::sqlx::Error::Database(db) => {
                    matches!(
                        db.code().as_deref(),
                        Some("57014" | "9" | "40P01" | "40001")
                    )
                }
                _ => false,
            }
        }
        _ => false,
    }
}

fn fields_value(fields: &FieldErrors) -> Value {
    Value::Object(
        fields
            .iter()
            .map(|(name, messages)| {
                (
                    async_graphql::Name::new(name),
                    Value::List(messages.iter().map(|m| Value::from(m.as_str())).collect()),
                )
            })
            .collect(),
    )
}

impl Error {
    /// Logs the error and sets its `code` (and `fields` or `retryAfter`) in
    /// `ext`: what `extend()` does, and what the schema's edge does to an
    /// error a resolver returned with `?`.
    pub fn extend_values(&self, ext: &mut async_graphql::ErrorExtensionValues) {
        self.log();
        ext.set("code", self.code());
        match self {
            Error::BadUserInput(fields) | Error::Conflict(fields) => {
                ext.set("fields", fields_value(fields))
            }
            Error::RateLimited { retry_after_secs }
            | Error::TooManyRequests { retry_after_secs }
            | Error::Busy { retry_after_secs } => ext.set("retryAfter", *retry_after_secs),
            _ => {}
        }
    }
}

impl ErrorExtensions for Error {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| self.extend_values(ext))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
