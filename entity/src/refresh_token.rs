//! A refresh token, stored only as a hash. Tokens rotated from one login
//! share a `family`, so that reuse of a retired token can revoke them all.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    pub family: String,
    /// SHA-256 of the token, hex; unique.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Set when the token was exchanged for a new pair.
    pub retired_at: Option<DateTimeUtc>,
    /// Set when the token was revoked (logout, reuse, deactivation, ...).
    pub revoked_at: Option<DateTimeUtc>,
    /// The user's `token_version` when the token was issued; refused once
    /// the user's version moved on.
    pub token_version: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
