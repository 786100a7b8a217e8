//! An endpoint that events are delivered to.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url: String,
    pub description: String,
    /// The event types delivered, as `,user.created,user.updated,`; `,*,`
    /// for every type.
    #[sea_orm(column_type = "Text")]
    pub event_types: String,
    pub is_active: bool,
    /// Why roster turned the endpoint off (it answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// `whsec_` and the base64 of the signing key. Signs; never readable
    /// over the API.
    pub secret: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
