//! Access tokens: HS256 JWTs whose algorithm is pinned, and the check that
//! turns a bearer token into the user it speaks for.
use std::{sync::Arc, time::Duration};

use entity::user;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use sea_orm::ConnectionTrait;
use serde::{Deserialize, Serialize};

use super::{
    access::{self, Account},
    read_cache::ReadCache,
};
use crate::{
    bounded_map::BoundedMap,
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

/// Seconds a token is still accepted after its `exp`, for clocks that
/// differ a little.
const LEEWAY_SECS: u64 = 5;
/// Checked tokens kept at most. Only tokens this server signed get in, so
/// a client cannot fill the map with text of its choosing.
const MAX_CHECKED: usize = 10_000;
/// Most memory the checked tokens take (a token is some 250 bytes).
const MAX_CHECKED_BYTES: usize = 4 * 1024 * 1024;

/// The keys that sign and check access tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// Tokens whose signature and claims were checked, by their whole text:
    /// decoding and the HMAC are most of what a token check costs when the
    /// user is cached, and a client sends the same token again and again.
    checked: BoundedMap<Box<str>, Checked>,
}

/// What a checked token says that a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    pub user_id: i64,
    pub version: i64,
    exp: i64,
}

impl TokenKeys {
    pub fn new(secret: &Secret) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iat", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            checked: BoundedMap::new(MAX_CHECKED, MAX_CHECKED_BYTES),
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

    /// What `verify` says of `token`, remembered: a token seen before is
    /// only checked for expiry again (the same text carries the same
    /// signature, so it verifies the same way).
    pub fn check(&self, token: &str) -> Result<Checked> {
        let now = chrono::Utc::now().timestamp();
        // As `verify` judges expiry: refused once `exp` is LEEWAY_SECS past.
        let unexpired = |checked: &Checked| checked.exp.saturating_add(LEEWAY_SECS as i64) >= now;
        if let Some(checked) = self.checked.get(token) {
            return match unexpired(&checked) {
                true => Ok(checked),
                false => Err(Error::Unauthenticated(INVALID_TOKEN)),
            };
        }
        let claims = self.verify(token)?;
        let checked = Checked {
            user_id: claims
                .sub
                .parse()
                .map_err(|_| Error::Unauthenticated(INVALID_TOKEN))?,
            version: claims.ver,
            exp: claims.exp,
        };
        let weight = token.len() + std::mem::size_of::<Checked>();
        self.checked.insert(token.into(), checked, weight);
        Ok(checked)
    }
}

/// The active user a token speaks for, with their permissions: one
/// statement ([`access::load_account`]), unless `cache` holds the account.
/// Refused when the user is gone, inactive, or has had its tokens revoked
/// since.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    keys: &TokenKeys,
    cache: &ReadCache<i64, Option<Arc<Account>>>,
    token: &str,
) -> Result<Arc<Account>> {
    let checked = keys.check(token)?;
    let id = checked.user_id;
    let account = cache.get_or_load(id, access::load_account(db, id)).await?;
    match account {
        Some(account)
            if account.user.is_active && account.user.token_version == checked.version =>
        {
            Ok(account)
        }
        _ => Err(Error::Unauthenticated(INVALID_TOKEN)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&Secret::new("a test secret of thirty-two bytes!!"))
    }

    fn token(keys: &TokenKeys, sub: &str, exp_from_now: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: sub.to_owned(),
            iat: now,
            exp: now + exp_from_now,
            jti: "j".to_owned(),
            ver: 3,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding)
            .unwrap_or_default()
    }

    fn refused(result: Result<Checked>) -> bool {
        matches!(result, Err(Error::Unauthenticated(INVALID_TOKEN)))
    }

    #[test]
    fn a_checked_token_is_remembered_until_it_expires() {
        let keys = keys();
        let good = token(&keys, "42", 60);
        let first = keys.check(&good);
        assert!(matches!(
            first,
            Ok(Checked {
                user_id: 42,
                version: 3,
                ..
            })
        ));
        assert_eq!(keys.check(&good).ok(), first.as_ref().ok().copied());
        assert_eq!(keys.checked.len(), 1);

        // The same remembered token, once past its expiry and the leeway.
        let now = chrono::Utc::now().timestamp();
        for (exp, accepted) in [(now - 3, true), (now - 10, false)] {
            if let Ok(checked) = &first {
                keys.checked
                    .insert(good.as_str().into(), Checked { exp, ..*checked }, 0);
            }
            assert_eq!(keys.check(&good).is_ok(), accepted, "exp {exp}");
        }
    }

    #[test]
    fn bad_tokens_are_refused_and_not_remembered() {
        let keys = keys();
        let good = token(&keys, "42", 60);
        assert!(keys.check(&good).is_ok());
        let mut tampered = good.clone();
        tampered.pop();
        tampered.push(if good.ends_with('A') { 'B' } else { 'A' });
        let other_key = token(
            &TokenKeys::new(&Secret::new("another secret, also long enough")),
            "42",
            60,
        );
        for bad in [
            tampered,
            other_key,
            token(&keys, "42", -60),
            token(&keys, "not a number", 60),
            "garbage".to_owned(),
        ] {
            assert!(refused(keys.check(&bad)), "{bad}");
        }
        assert_eq!(keys.checked.len(), 1);
    }
}
