//! An account.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub username: String,
    /// Case fold of `username`; unique.
    #[sea_orm(unique)]
    pub username_folded: String,
    pub email: String,
    /// Case fold of `email`; unique.
    #[sea_orm(unique)]
    pub email_folded: String,
    pub first_name: String,
    pub first_name_folded: String,
    pub last_name: String,
    pub last_name_folded: String,
    pub phone_number: Option<String>,
    /// Argon2id PHC string; `None` means the account cannot log in.
    pub password_hash: Option<String>,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: DateTimeUtc,
    pub last_login: Option<DateTimeUtc>,
    pub division_id: Option<i64>,
    /// Bumped whenever every outstanding access token of the user must stop
    /// working (password change, deactivation).
    pub token_version: i64,
    /// The id an external system gave the user.
    pub remote_id: Option<String>,
    /// Case fold of `remote_id`.
    pub remote_id_folded: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::division::Entity",
        from = "Column::DivisionId",
        to = "super::division::Column::Id"
    )]
    Division,
    #[sea_orm(has_many = "super::membership::Entity")]
    Membership,
    #[sea_orm(has_many = "super::refresh_token::Entity")]
    RefreshToken,
}

impl Related<super::division::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Division.def()
    }
}

impl Related<super::membership::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Membership.def()
    }
}

impl Related<super::group::Entity> for Entity {
    fn to() -> RelationDef {
        super::membership::Relation::Group.def()
    }
    fn via() -> Option<RelationDef> {
        Some(super::membership::Relation::User.def().rev())
    }
}

impl ActiveModelBehavior for ActiveModel {}
