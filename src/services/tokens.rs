//! Access tokens: HS256 JWTs whose algorithm is pinned, and the check that
//! turns a bearer token into the user it speaks for.
use std::{sync::Arc, time::Duration};

use entity::user;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use sea_orm::{ConnectionTrait, EntityTrait};
use serde::{Deserialize, Serialize};

use super::read_cache::ReadCache;
use crate::{
    config::Secret,
    error::{Error, Result},
};

pub const INVALID_TOKEN: &str = "The access token is invalid or expired.";

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    /// Unique id of this token.
    pub jti: String,
    /// The user's `token_version` when the token was issued; a token of an
    /// older version is refused.
    pub ver: i64,
}

/// The keys that sign and check access tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
        }
    }

    /// Signs a token for `user`, valid for `ttl`.
    pub fn issue(&self, user: &user::Model, ttl: Duration) -> Result<String> {
        let iat = chrono::Utc::now().timestamp();
        let mut jti = [0u8; 16];
        rand::rng().fill_bytes(&mut jti);
        let claims = Claims {
            sub: user.id.to_string(),
            iat,
            exp: iat.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
            jti: super::hex(&jti),
            ver: user.token_version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::internal)
    }

    /// The claims of a well-signed, unexpired HS256 token.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|_| Error::Unauthenticated(INVALID_TOKEN))
    }
}

/// The active user a token speaks for: one query by primary key, unless
/// `cache` holds the user. Refused when the user is gone, inactive, or has
/// had its tokens revoked since.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    cache: &ReadCache<i64, Option<Arc<user::Model>>>,
    token: &str,
) -> Result<Arc<user::Model>> {
    let claims = keys.verify(token)?;
    let id: i64 = claims
        .sub
        .parse()
        .map_err(|_| Error::Unauthenticated(INVALID_TOKEN))?;
    let user = cache.get_or_load(id, user_by_id(db, id)).await?;
    match user {
        Some(user) if user.is_active && user.token_version == claims.ver => Ok(user),
        _ => Err(Error::Unauthenticated(INVALID_TOKEN)),
    }
}

/// The user `id`, as the users cache keeps it.
pub async fn user_by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<Arc<user::Model>>> {
    Ok(user::Entity::find_by_id(id).one(db).await?.map(Arc::new))
}
