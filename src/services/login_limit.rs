//! Brute-force protection for `login`: failures are counted per account
//! and client (at most `max_failures` within the window) and per account
//! across every client (at most `account_max_failures`, a higher ceiling
//! that stops a guess spread over many networks without letting one client
//! lock the others out). The account is the user the typed name or email
//! resolved to, whichever of them was typed and in whatever case; for a
//! name that resolves to nobody, the typed text (case-folded) stands in.
//! Counted in the database, so that every process sharing it agrees.
//!
//! An attempt is recorded *before* the password is checked, in a transaction
//! that serializes the attempts on one account (an advisory lock on
//! PostgreSQL, the write lock on SQLite): the k-th attempt counts exactly k
//! rows, so no more attempts reach the password check than the limits allow
//! however many arrive at once (a batch, aliases, several processes). A
//! refused attempt is rolled back; a successful one clears the failures of
//! its account and client.
use std::time::Duration;

use chrono::TimeDelta;
use entity::login_failure;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, Set, Statement, TransactionSession, TransactionTrait,
};

use serde_json::json;

use super::events;
use crate::{
    clock,
    domain::EventType,
    error::{Error, Result},
};

/// The limit's settings.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimit {
    /// Failures of one account from one client.
    pub max_failures: u32,
    /// Failures of one account from all clients; `None`: no such ceiling.
    pub account_max_failures: Option<u32>,
    pub window: Duration,
    /// How long a client that logged in to an account stays exempt from
    /// that account's ceiling; zero: never.
    pub known_client_for: Duration,
}

/// What failed logins are counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject<'a> {
    /// The user a name or email resolved to.
    User(i64),
    /// A typed name that resolved to nobody, case-folded.
    Unknown(&'a str),
    /// Wrong current passwords given to `changePassword` by the user's own
    /// sessions: counted apart from logins, so that a spray of failed
    /// logins cannot stop the owner from changing the password.
    PasswordChange(i64),
    /// Refresh tokens that were never issued: guesses, counted per client.
    RefreshGuesses,
}

impl Subject<'_> {
    /// The stored key. The prefixes keep the kinds apart: no typed text
    /// becomes `user:<id>`, since it is stored as `name:<text>`.
    fn key(&self) -> String {
        match self {
            Subject::User(id) => format!("user:{id}"),
            Subject::Unknown(folded) => format!("name:{folded}"),
            Subject::PasswordChange(id) => format!("password:{id}"),
            Subject::RefreshGuesses => "refresh".to_owned(),
        }
    }
}

/// A recorded attempt, to be kept as a failure or cleared on success.
#[derive(Debug)]
pub struct Attempt {
    id: i64,
    subject: String,
    client: String,
    /// The user the attempt is about, for the audit log.
    user: Option<i64>,
    /// Whether this attempt, should it fail, fills a limit: the next one
    /// will be refused, and the audit log says so once.
    fills: bool,
}

fn window_start(limit: LoginLimit) -> chrono::DateTime<chrono::Utc> {
    let window = TimeDelta::from_std(limit.window).unwrap_or(TimeDelta::MAX);
    clock::now()
        .checked_sub_signed(window)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// Seconds until the oldest of `failures` leaves the window.
fn retry_after(limit: LoginLimit, oldest: chrono::DateTime<chrono::Utc>) -> u64 {
    let window = i64::try_from(limit.window.as_secs()).unwrap_or(i64::MAX);
    let elapsed = (clock::now() - oldest).num_seconds();
    u64::try_from(window.saturating_sub(elapsed).max(1)).unwrap_or(1)
}

/// Records an attempt, or refuses it with `RATE_LIMITED` when a limit is
/// reached.
pub async fn begin(
    db: &(impl ConnectionTrait + TransactionTrait),
    limit: LoginLimit,
    subject: &Subject<'_>,
    client: &str,
) -> Result<Attempt> {
    let since = window_start(limit);
    let user = match subject {
        Subject::User(id) | Subject::PasswordChange(id) => Some(*id),
        Subject::Unknown(_) | Subject::RefreshGuesses => None,
    };
    let subject = subject.key();
    let txn = db.begin().await?;
    // What is counted together is serialized together: the account's
    // attempts from every client when it has a ceiling, else one client's.
    let lock = match limit.account_max_failures {
        Some(_) => format!("login:{subject}"),
        None => format!("login:{subject}:{client}"),
    };
    super::lock_on_postgres(&txn, lock).await?;
    let db = &txn;
    let attempt = login_failure::ActiveModel {
        identifier_folded: Set(subject.clone()),
        client: Set(client.to_owned()),
        failed_at: Set(clock::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let of_subject = || {
        login_failure::Entity::find()
            .filter(login_failure::Column::IdentifierFolded.eq(subject.as_str()))
            .filter(login_failure::Column::FailedAt.gte(since))
    };
    let of_client = || of_subject().filter(login_failure::Column::Client.eq(client));
    let mut over = None;
    let client_failures = of_client().count(db).await?;
    let mut fills = client_failures == u64::from(limit.max_failures);
    if client_failures > u64::from(limit.max_failures) {
        over = Some(of_client());
    } else if let Some(ceiling) = limit.account_max_failures {
        let failures = of_subject().count(db).await?;
        fills |= failures == u64::from(ceiling);
        if failures > u64::from(ceiling) && !known_client(db, limit, &subject, client).await? {
            over = Some(of_subject());
        }
    }
    if let Some(failures) = over {
        let oldest = failures
            .order_by_asc(login_failure::Column::FailedAt)
            .one(db)
            .await?
            .map_or(attempt.failed_at, |failure| failure.failed_at);
        txn.rollback().await?;
        return Err(Error::RateLimited {
            retry_after_secs: retry_after(limit, oldest),
        });
    }
    txn.commit().await?;
    Ok(Attempt {
        id: attempt.id,
        subject,
        client: client.to_owned(),
        user,
        fills,
    })
}

impl Attempt {
    /// The attempt failed: it stays recorded and counts against the limit.
    /// The failure that fills a limit is written to the audit log
    /// (`security.login_locked`), once per lock.
    pub async fn failed(self, db: &impl ConnectionTrait) -> Result<()> {
        crate::measures::login_failure();
        if !self.fills {
            return Ok(());
        }
        let kind = self.subject.split(':').next().unwrap_or_default();
        let actor = events::Actor {
            client: Some(self.client.clone()),
            ..events::Actor::default()
        };
        let target = events::Target {
            user: self.user,
            ..events::Target::default()
        };
        let payload = json!({ "counted": kind, "client": self.client });
        events::record(db, &actor, EventType::LoginLocked, target, payload).await
    }

    /// The attempt was no failure: it is forgotten, earlier failures stay.
    pub async fn discard(self, db: &impl ConnectionTrait) -> Result<()> {
        login_failure::Entity::delete_by_id(self.id)
            .exec(db)
            .await?;
        Ok(())
    }

    /// The attempt succeeded: earlier failures of this account and client
    /// are forgotten, and the client is known to the account from now on.
    pub async fn succeeded(self, db: &impl ConnectionTrait) -> Result<()> {
        login_failure::Entity::delete_many()
            .filter(login_failure::Column::IdentifierFolded.eq(self.subject.as_str()))
            .filter(login_failure::Column::Client.eq(self.client.as_str()))
            .exec(db)
            .await?;
        // The login has been issued already: a record that cannot be written
        // costs this network its exemption, not the user their login.
        let known = db
            .execute_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                "INSERT INTO login_successes (subject, client, succeeded_at_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (subject, client) DO UPDATE SET succeeded_at_ms = excluded.succeeded_at_ms",
                [
                    self.subject.into(),
                    self.client.into(),
                    clock::now().timestamp_millis().into(),
                ],
            ))
            .await;
        if let Err(error) = known {
            tracing::debug!(%error, "cannot record a known client");
        }
        Ok(())
    }
}

fn known_since(limit: LoginLimit) -> i64 {
    let period = i64::try_from(limit.known_client_for.as_millis()).unwrap_or(i64::MAX);
    clock::now().timestamp_millis().saturating_sub(period)
}

/// Whether `client` logged in to the account `subject` within the
/// known-client period.
async fn known_client(
    db: &impl ConnectionTrait,
    limit: LoginLimit,
    subject: &str,
    client: &str,
) -> Result<bool> {
    if limit.known_client_for.is_zero() {
        return Ok(false);
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT 1 FROM login_successes WHERE subject = $1 AND client = $2 AND succeeded_at_ms >= $3",
            [subject.into(), client.into(), known_since(limit).into()],
        ))
        .await?;
    Ok(row.is_some())
}

/// Forgets the failures older than the window (they count no more; this
/// only keeps the table small), in the background rather than on every
/// attempt.
pub async fn prune_failures(db: &impl ConnectionTrait, limit: LoginLimit) -> Result<()> {
    login_failure::Entity::delete_many()
        .filter(login_failure::Column::FailedAt.lt(window_start(limit)))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets every client known to the user `user_id`'s account: when its
/// sessions end (a password change or reset, deactivation, deletion), a
/// network that logged in with the old password is known no longer.
pub async fn forget_known_clients(db: &impl ConnectionTrait, user_id: i64) -> Result<()> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "DELETE FROM login_successes WHERE subject = $1",
        [Subject::User(user_id).key().into()],
    ))
    .await?;
    Ok(())
}

/// Forgets the clients whose last login to an account is older than the
/// known-client period.
pub async fn prune_known_clients(db: &impl ConnectionTrait, limit: LoginLimit) -> Result<()> {
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        "DELETE FROM login_successes WHERE succeeded_at_ms < $1",
        [known_since(limit).into()],
    ))
    .await?;
    Ok(())
}
