//! Refresh tokens: 256 random bits, stored only as SHA-256, single use.
//! Each rotation retires the presented token and issues the next one of the
//! same family (one family per login). A retired token presented again after
//! the grace period means it was stolen: the whole family is revoked.
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::TimeDelta;
use entity::refresh_token;
use rand::Rng;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use sha2::{Digest, Sha256};

use crate::{clock, error::Result};

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

/// Issues a token for `user_id`, in `family` or in a new one (a login).
pub async fn issue(
    db: &impl ConnectionTrait,
    user_id: i64,
    family: Option<String>,
    ttl: Duration,
) -> Result<String> {
    let token = random_string(32);
    refresh_token::ActiveModel {
        user_id: Set(user_id),
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
    pub user_id: i64,
    pub token: String,
}

/// The outcome of presenting a refresh token.
pub enum Rotation {
    Done(Rotated),
    /// No such token was ever issued: a guess, or garbage.
    Unknown,
    /// A real token that is expired, revoked or already used.
    Refused,
}

/// Exchanges `token` for the next one of its family. Only one of several
/// concurrent rotations of the same token wins: the retirement is a
/// conditional update.
pub async fn rotate(
    db: &impl ConnectionTrait,
    token: &str,
    ttl: Duration,
    reuse_grace: Duration,
) -> Result<Rotation> {
    let now = clock::now();
    let Some(row) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(digest(token)))
        .one(db)
        .await?
    else {
        return Ok(Rotation::Unknown);
    };
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Ok(Rotation::Refused);
    }
    if let Some(retired_at) = row.retired_at {
        let grace = TimeDelta::from_std(reuse_grace).unwrap_or(TimeDelta::MAX);
        if reuse_grace.is_zero() || now - retired_at > grace {
            tracing::warn!(user_id = row.user_id, family = %row.family, "refresh token reused: revoking its family");
            revoke_family(db, &row.family).await?;
        }
        return Ok(Rotation::Refused);
    }
    let retired = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RetiredAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(row.id))
        .filter(refresh_token::Column::RetiredAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if retired.rows_affected != 1 {
        // Another request rotated it a moment ago: refused, within the grace.
        return Ok(Rotation::Refused);
    }
    let next = issue(db, row.user_id, Some(row.family), ttl).await?;
    Ok(Rotation::Done(Rotated {
        user_id: row.user_id,
        token: next,
    }))
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
