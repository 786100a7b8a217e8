//! One change roster made, recorded in the transaction that made it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// Orders events: a later commit may hold a lower id, never a later
    /// write of one transaction.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub occurred_at: DateTimeUtc,
    /// e.g. `user.created`.
    pub event_type: String,
    /// The user who acted; none for the command line or an anonymous
    /// caller (a registration, a failed login).
    pub actor_id: Option<i64>,
    /// The actor's username at the time, or `command line`.
    pub actor_name: Option<String>,
    /// The client's address, when the change came over HTTP.
    pub client: Option<String>,
    pub target_user_id: Option<i64>,
    pub target_group_id: Option<i64>,
    pub target_division_id: Option<i64>,
    /// JSON: what changed. Never a password, hash or token.
    #[sea_orm(column_type = "Text")]
    pub payload: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
