//! The fuzz entry point for the code that reads untrusted structured input
//! without the schema's help: the cursor decoder and the filter compiler.
//! `fuzz/` drives it with cargo-fuzz; a unit test drives it over seeds.
use async_graphql::InputType;
use sea_orm::DbBackend;

use super::{
    hot_paths::{parse_user_filter, user_filter_sql},
    inputs::UserOrder,
};
use crate::services::reads::{Order, UserOrderField, pagination::decode_cursor, user_keys};

/// Feeds `data` to the cursor decoder (as text) and, when it is JSON, to the
/// filter compiler and the SQL builder of both databases. It must never panic.
pub fn cursor_and_filter(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let keys = user_keys(&[]);
    let _ = decode_cursor(&keys, &text, "after");
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(value) = async_graphql::Value::from_json(json.clone())
        && let Ok(orders) = <Vec<UserOrder>>::parse(Some(value))
    {
        let orders: Vec<Order<UserOrderField>> = orders.into_iter().map(Into::into).collect();
        let keys = user_keys(&orders);
        let _ = decode_cursor(&keys, &text, "after");
    }
    if let Some(filter) = parse_user_filter(json) {
        for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
            let _ = user_filter_sql(&filter, backend);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cursor_and_filter;

    #[test]
    fn seeds_go_through_without_panicking() {
        let seeds: &[&str] = &[
            "",
            "not json",
            "eyJvIjoiSUQ6QSIsImsiOlsxXX0",
            "eyJvIjoiSUQ6QSIsImsiOlsiYSJdfQ",
            r#"{"username": {"icontains": "%_\\"}, "or": [], "not": {"id": {"in": ["1", "x"]}}}"#,
            r#"{"and": [{"and": [{"and": [{"dateJoined": {"gt": "2026-01-01T00:00:00.5Z"}}]}]}]}"#,
            r#"{"groupId": {"isNull": true, "gte": "3"}, "divisionType": "SUB", "lastLogin": {"isNull": true}}"#,
            r#"[{"field": "LAST_LOGIN", "direction": "DESC"}, {"field": "EMAIL"}]"#,
            r#"{"id": {"exact": "99999999999999999999"}}"#,
            "[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]",
        ];
        for seed in seeds {
            cursor_and_filter(seed.as_bytes());
        }
    }
}
