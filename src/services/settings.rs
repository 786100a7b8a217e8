//! Server-wide values kept in the database.
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::setting;
use rand::Rng;
use sea_orm::{ConnectionTrait, EntityTrait};

use crate::{config::Secret, error::Result};

const JWT_SECRET_KEY: &str = "jwt_secret";

/// The JWT secret: the configured one, else the one kept in the database,
/// generated (48 random bytes) by whichever process starts first. Processes
/// racing here all end up with the same stored value.
pub async fn jwt_secret(db: &impl ConnectionTrait, configured: Option<&Secret>) -> Result<Secret> {
    if let Some(secret) = configured {
        return Ok(secret.clone());
    }
    if let Some(stored) = setting::Entity::find_by_id(JWT_SECRET_KEY).one(db).await? {
        return Ok(Secret::new(stored.value));
    }
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    let row = setting::ActiveModel {
        key: sea_orm::Set(JWT_SECRET_KEY.to_owned()),
        value: sea_orm::Set(URL_SAFE_NO_PAD.encode(bytes)),
    };
    setting::Entity::insert(row)
        .on_conflict_do_nothing_on([setting::Column::Key])
        .exec(db)
        .await?;
    let stored = setting::Entity::find_by_id(JWT_SECRET_KEY)
        .one(db)
        .await?
        .ok_or_else(|| crate::Error::internal(anyhow::anyhow!("the JWT secret was not stored")))?;
    Ok(Secret::new(stored.value))
}
