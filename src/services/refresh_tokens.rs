//! Refresh tokens: 256 random bits, stored only as SHA-256, single use.
//! Each rotation retires the presented token and issues the next one of the
//! same family (one family per login), in one transaction. A retired token
//! presented again after the grace period means it was stolen: the whole
//! family is revoked. A token carries its user's `token_version` from when
//! it was issued and is refused once that moved (a password change, a
//! deactivation), even if a revocation missed it.
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::TimeDelta;
use entity::refresh_token;
use entity::user;
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QuerySelect, Set, sea_query::Expr,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{
    begin_write,
    events::{self, Actor, Target},
};
use crate::{
    checkpoints::{self, Checkpoints},
    clock,
    domain::EventType,
    error::Result,
};

pub const INVALID: &str = "The refresh token is invalid, expired or revoked.";

fn random_string(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    URL_SAFE_NO_PAD.encode(buffer)
}

fn digest(token: &str) -> String {
    super::hex(&Sha256::digest(token.as_bytes()))
}

fn after(ttl: Duration) -> chrono::DateTime<chrono::Utc> {
    let ttl = TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
    clock::now()
        .checked_add_signed(ttl)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

/// Issues a token for `user`, in `family` or in a new one (a login), under
/// the user's current `token_version`.
pub async fn issue(
    db: &impl ConnectionTrait,
    user: &user::Model,
    family: Option<String>,
    ttl: Duration,
) -> Result<String> {
    let token = random_string(32);
    refresh_token::ActiveModel {
        user_id: Set(user.id),
        token_version: Set(user.token_version),
        family: Set(family.unwrap_or_else(|| random_string(16))),
        token_hash: Set(digest(&token)),
        created_at: Set(clock::now()),
        expires_at: Set(after(ttl)),
        retired_at: Set(None),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// What a rotation yields: the user it belongs to and the next token.
pub struct Rotated {
    pub user: user::Model,
    pub token: String,
}

/// The outcome of presenting a refresh token.
pub enum Rotation {
    Done(Box<Rotated>),
    /// No such token was ever issued: a guess, or garbage.
    Unknown,
    /// A real token that is expired, revoked or already used, or whose user
    /// is gone, inactive or has changed password since.
    Refused,
}

/// Exchanges `token` for the next one of its family, in one transaction:
/// the retirement of the old token and the insert of the new one commit
/// together or not at all. Only one of several concurrent rotations of the
/// same token wins: the retirement is a conditional update. The user's row
/// is read under a share lock on PostgreSQL (SQLite's write lock is held
/// already), so a password change or deactivation either commits before
/// and is seen here, or waits for this commit and then revokes the new
/// token too.
pub async fn rotate(
    db: &DatabaseConnection,
    checkpoints: &Checkpoints,
    token: &str,
    ttl: Duration,
    reuse_grace: Duration,
) -> Result<Rotation> {
    let now = clock::now();
    let txn = begin_write(db).await?;
    let Some(row) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(digest(token)))
        .one(&txn)
        .await?
    else {
        return Ok(Rotation::Unknown);
    };
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Ok(Rotation::Refused);
    }
    // A family's rotations and its revocation on reuse take turns: a
    // revocation that ran beside a rotation would not see the token that
    // rotation inserts.
    super::lock_on_postgres(&txn, format!("refresh-family:{}", row.family)).await?;
    if let Some(retired_at) = row.retired_at {
        let grace = TimeDelta::from_std(reuse_grace).unwrap_or(TimeDelta::MAX);
        if reuse_grace.is_zero() || now - retired_at > grace {
            tracing::warn!(
                user_id = row.user_id,
                "refresh token reused: revoking its family"
            );
            revoke_family(&txn, &row.family).await?;
            let payload = json!({ "userId": row.user_id.to_string() });
            let (actor, target) = (Actor::default(), Target::user(row.user_id));
            events::record(&txn, &actor, EventType::RefreshTokenReused, target, payload).await?;
            txn.commit().await?;
        }
        return Ok(Rotation::Refused);
    }
    // The user's row first, then the token's: the order in which a password
    // change or deactivation takes them, so that the two cannot deadlock.
    let mut owner = user::Entity::find_by_id(row.user_id);
    if txn.get_database_backend() == DbBackend::Postgres {
        owner = owner.lock_shared();
    }
    let user = match owner.one(&txn).await? {
        Some(user) if user.is_active && user.token_version == row.token_version => user,
        _ => return Ok(Rotation::Refused),
    };
    let retired = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RetiredAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(row.id))
        .filter(refresh_token::Column::RetiredAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(&txn)
        .await?;
    if retired.rows_affected != 1 {
        // Another request rotated it a moment ago: refused, within the grace.
        return Ok(Rotation::Refused);
    }
    checkpoints.pass(checkpoints::REFRESH_ROTATING).await;
    let next = issue(&txn, &user, Some(row.family), ttl).await?;
    txn.commit().await?;
    Ok(Rotation::Done(Box::new(Rotated { user, token: next })))
}

/// Revokes every token of `family`.
pub async fn revoke_family(db: &impl ConnectionTrait, family: &str) -> Result<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(clock::now()))
        .filter(refresh_token::Column::Family.eq(family))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes `token` itself, if it exists.
pub async fn revoke(db: &impl ConnectionTrait, token: &str) -> Result<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(clock::now()))
        .filter(refresh_token::Column::TokenHash.eq(digest(token)))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes every token of the user (deactivation, password change).
pub async fn revoke_all_of_user(db: &impl ConnectionTrait, user_id: i64) -> Result<()> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(clock::now()))
        .filter(refresh_token::Column::UserId.eq(user_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
