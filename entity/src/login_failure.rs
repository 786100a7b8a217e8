//! One failed login, kept for the length of the login window so that the
//! limit holds across every process sharing the database.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "login_failures")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// What the failure counts against: `user:<id>` for the account a
    /// typed name or email resolved to, `name:<case fold of the text>` for
    /// one that resolved to nobody, `refresh` for unknown refresh tokens.
    /// (The column keeps the name it had when it held only the text.)
    pub identifier_folded: String,
    /// The client's network: its IPv4 address or IPv6 /64.
    pub client: String,
    pub failed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
