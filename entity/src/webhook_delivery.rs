//! One event to send to one endpoint: the outbox.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts since it was (re)queued: its place in the retry schedule.
    pub attempt_count: i32,
    /// When it is next due, in milliseconds since the epoch.
    pub next_attempt_at: i64,
    /// A worker holds it until then (milliseconds since the epoch); a
    /// crashed worker's hold lapses and another sends it.
    pub locked_until: i64,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
