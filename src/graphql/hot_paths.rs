//! The pure work every list request does before and after the database —
//! filter compilation, cursor encoding and decoding — reachable from outside
//! the crate for the micro-benchmarks (`benches/hot_paths.rs`).
use async_graphql::InputType;
use entity::user;
use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};

use super::inputs::UserFilter;
use crate::services::reads::{
    self, Order, UserOrderField, filters,
    pagination::{KeyValue, SortKey, decode_cursor, encode_cursor},
    user_keys,
};

/// A user filter as a client sends it (GraphQL input, as JSON), converted
/// as a request's is.
pub struct ParsedUserFilter(reads::UserFilter);

/// `json` as a `UserFilter`, or `None` when it is not one.
pub fn parse_user_filter(json: serde_json::Value) -> Option<ParsedUserFilter> {
    let value = async_graphql::Value::from_json(json).ok()?;
    UserFilter::parse(Some(value))
        .ok()
        .map(|filter| ParsedUserFilter(filter.into()))
}

/// The SQL of the users query `filter` compiles to.
pub fn user_filter_sql(filter: &ParsedUserFilter, backend: DbBackend) -> Option<String> {
    let condition = filters::user_condition(
        &filter.0,
        Default::default(),
        Default::default(),
        &Default::default(),
    )
    .ok()?;
    Some(
        user::Entity::find()
            .filter(condition)
            .build(backend)
            .to_string(),
    )
}

/// The keys of the user list ordered by email (then id).
pub struct EmailOrder(Vec<SortKey>);

pub fn email_order() -> EmailOrder {
    EmailOrder(user_keys(&[Order {
        field: UserOrderField::Email,
        descending: false,
    }]))
}

/// The cursor of the row (`email`, `id`) in that ordering.
pub fn email_cursor(order: &EmailOrder, email: &str, id: i64) -> String {
    encode_cursor(
        &order.0,
        &[KeyValue::Text(email.to_owned()), KeyValue::Int(id)],
    )
}

/// Whether `cursor` is a valid cursor of that ordering.
pub fn decodes(order: &EmailOrder, cursor: &str) -> bool {
    decode_cursor(&order.0, cursor, "after").is_ok()
}
