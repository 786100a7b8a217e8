//! Argon2id password hashing, always on a blocking thread so the async
//! workers keep serving while a hash is computed.
use std::sync::LazyLock;

use argon2::{
    Algorithm, Argon2, Params, Version,
    password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash},
};

use crate::error::{Error, Result};

/// OWASP's minimum for Argon2id: 19 MiB of memory, 2 passes, 1 lane.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

fn hasher() -> Result<Argon2<'static>> {
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(Error::internal)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A hash of a password nobody has, verified when there is no real hash to
/// check, so that failures take as long as a wrong password does.
static DUMMY_HASH: LazyLock<Option<String>> =
    LazyLock::new(|| hash_blocking("roster-dummy-password").ok());

fn hash_blocking(password: &str) -> Result<String> {
    Ok(hasher()?
        .hash_password(password.as_bytes())
        .map_err(Error::internal)?
        .to_string())
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(Error::internal)?
}

/// Hashes `password` to an Argon2id PHC string.
pub async fn hash(password: String) -> Result<String> {
    blocking(move || hash_blocking(&password)).await
}

/// The outcome of checking a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Right, but hashed with other parameters than today's: rehash it.
    YesButOutdated,
}

/// Checks `password` against `stored`. With no stored hash, a dummy hash is
/// checked instead, so that the answer (always `No`) takes the same time.
pub async fn verify(password: String, stored: Option<String>) -> Result<Verified> {
    blocking(move || {
        let (phc, real) = match stored {
            Some(phc) => (phc, true),
            None => (
                DUMMY_HASH
                    .clone()
                    .ok_or_else(|| Error::internal(anyhow::anyhow!("no dummy hash")))?,
                false,
            ),
        };
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return Ok(Verified::No);
        };
        if hasher()?
            .verify_password(password.as_bytes(), &parsed)
            .is_err()
            || !real
        {
            return Ok(Verified::No);
        }
        Ok(if is_current(&parsed) {
            Verified::Yes
        } else {
            Verified::YesButOutdated
        })
    })
    .await
}

fn is_current(hash: &PasswordHash) -> bool {
    let param = |name: &str| hash.params.get_decimal(name);
    hash.algorithm.as_str() == "argon2id"
        && hash.version == Some(Version::V0x13.into())
        && param("m") == Some(M_COST_KIB)
        && param("t") == Some(T_COST)
        && param("p") == Some(P_COST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify() -> Result<()> {
        let phc = hash("s3cret-Passw0rd".into()).await?;
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(
            verify("s3cret-Passw0rd".into(), Some(phc.clone())).await?,
            Verified::Yes
        );
        assert_eq!(verify("wrong".into(), Some(phc)).await?, Verified::No);
        assert_eq!(verify("anything".into(), None).await?, Verified::No);
        Ok(())
    }
}
