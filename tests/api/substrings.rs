//! Substring lookups and `search` through the trigram indexes of migration
//! 19 (`pg_trgm` on PostgreSQL, FTS5 on SQLite): the index is asked for
//! patterns of 3 characters or more, follows every change, and never
//! changes an answer (the property tests compare every lookup with a
//! reference on both databases).
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use sea_orm::{ConnectionTrait, DbBackend, TransactionTrait};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const LOOKUP: &str = "query($f: UserFilter, $s: String) {
  users(filter: $f, search: $s, orderBy: [{field: ID}]) { totalCount nodes { username } } }";

/// A server without caches (every read goes to the database), with a
/// superuser; the superuser's token.
async fn app() -> (TestApp, String) {
    let app = spawn_app_with(|config| config.cache = Duration::ZERO).await;
    let root = app.create_user("root", true, true).await;
    let token = app.token_for(&root);
    (app, token)
}

/// The usernames the lookup finds, after checking `totalCount` agrees.
async fn found(app: &TestApp, token: &str, filter: Value, search: Value) -> Vec<String> {
    let reply = app
        .gql_as(Some(token), LOOKUP, json!({ "f": filter, "s": search }))
        .await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    let users = &reply.body["data"]["users"];
    let names: Vec<String> = users["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["username"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(users["totalCount"], json!(names.len()));
    names
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn patterns_of_three_characters_or_more_are_found_through_the_index() {
    let (app, token) = app().await;
    for name in ["alice1234", "bob5678", "carol1299"] {
        app.create_user(name, false, false).await;
    }
    let icontains = |text: &str| json!({ "username": { "icontains": text } });
    assert_eq!(
        found(&app, &token, icontains("1234"), Value::Null).await,
        names(&["alice1234"])
    );
    assert_eq!(
        found(&app, &token, icontains("12"), Value::Null).await,
        names(&["alice1234", "carol1299"])
    );
    match app.db().get_database_backend() {
        DbBackend::Sqlite => {
            // Emptied behind roster's back, the index finds nothing: the
            // lookups of 3 characters or more ask it, shorter ones do not.
            app.db()
                .execute_unprepared(
                    "INSERT INTO users_trigrams (users_trigrams) VALUES ('delete-all')",
                )
                .await
                .unwrap();
            assert_eq!(
                found(&app, &token, icontains("1234"), Value::Null).await,
                names(&[])
            );
            assert_eq!(
                found(&app, &token, Value::Null, json!("ALICE")).await,
                names(&[])
            );
            assert_eq!(
                found(&app, &token, icontains("12"), Value::Null).await,
                names(&["alice1234", "carol1299"])
            );
            app.db()
                .execute_unprepared(
                    "INSERT INTO users_trigrams (users_trigrams) VALUES ('rebuild')",
                )
                .await
                .unwrap();
            assert_eq!(
                found(&app, &token, icontains("1234"), Value::Null).await,
                names(&["alice1234"])
            );
        }
        _ => {
            // Each column has its index, and PostgreSQL can answer a
            // lookup with it (on these few rows, once the other ways are
            // gone, for the length of a transaction).
            let txn = app.db().begin().await.unwrap();
            txn.execute_unprepared(
                "SET LOCAL enable_seqscan = off; \
                 DROP INDEX users_first_name_folded_id_idx, users_last_name_folded_id_idx, \
                 users_remote_id_folded_id_idx",
            )
            .await
            .unwrap();
            for column in migration::SUBSTRING_INDEXED_COLUMNS {
                let plan = txn
                    .query_all_raw(sea_orm::Statement::from_string(
                        DbBackend::Postgres,
                        format!("EXPLAIN SELECT id FROM users WHERE {column} LIKE '%1234%'"),
                    ))
                    .await
                    .unwrap();
                let plan: Vec<String> = plan
                    .iter()
                    .map(|row| row.try_get_by_index::<String>(0).unwrap())
                    .collect();
                let index = format!("users_{column}_trgm_idx");
                assert!(plan.iter().any(|line| line.contains(&index)), "{plan:?}");
            }
            txn.rollback().await.unwrap();
        }
    }
}

#[tokio::test]
async fn the_index_follows_every_change_of_a_user() {
    let (app, token) = app().await;
    let user = app.create_user("zebedee", false, false).await;
    let search = |text: &str| json!(text);
    assert_eq!(
        found(&app, &token, Value::Null, search("ZEBED")).await,
        names(&["zebedee"])
    );
    let update = "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }";
    let input =
        json!({ "username": "quixote", "firstName": "Dulcinea", "email": "rocinante@example.com" });
    let reply = app
        .gql_as(
            Some(&token),
            update,
            json!({ "id": user.id.to_string(), "input": input }),
        )
        .await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    assert_eq!(
        found(&app, &token, Value::Null, search("zebed")).await,
        names(&[])
    );
    for term in ["QUIXO", "dulci", "rocinante@"] {
        assert_eq!(
            found(&app, &token, Value::Null, search(term)).await,
            names(&["quixote"]),
            "{term}"
        );
    }
    assert_eq!(
        found(
            &app,
            &token,
            json!({ "email": { "contains": "cinante@ex" } }),
            Value::Null
        )
        .await,
        names(&["quixote"])
    );
    let reply = app
        .gql_as(
            Some(&token),
            "mutation($id: ID!) { deleteUser(id: $id) }",
            json!({ "id": user.id.to_string() }),
        )
        .await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    assert_eq!(
        found(&app, &token, Value::Null, search("quixo")).await,
        names(&[])
    );
}

/// Folds that change a pattern's length, quotes, backslashes and wildcards
/// reach the index and the statement as text, never as syntax.
#[tokio::test]
async fn patterns_are_text_to_the_index() {
    let (app, token) = app().await;
    let user = app.create_user("strasse", false, false).await;
    let update = "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }";
    let input = json!({ "firstName": "Straße \"OR\" 50%_off", "lastName": "NEAR(a b) O'Ne\\il" });
    let reply = app
        .gql_as(
            Some(&token),
            update,
            json!({ "id": user.id.to_string(), "input": input }),
        )
        .await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    let first = |op: &str, text: &str| json!({ "firstName": { op: text } });
    for (filter, expected) in [
        (first("icontains", "STRASSE"), vec!["strasse"]),
        (first("icontains", "aße"), vec!["strasse"]),
        (first("contains", "aße"), vec!["strasse"]),
        (first("contains", "ASSE"), vec![]),
        (first("icontains", "\"or\""), vec!["strasse"]),
        (first("icontains", "\"or"), vec!["strasse"]),
        (first("icontains", "%_o"), vec!["strasse"]),
        (first("icontains", "x%_o"), vec![]),
        (first("iendswith", "_OFF"), vec!["strasse"]),
        (first("startswith", "Straß"), vec!["strasse"]),
        (
            json!({ "lastName": { "icontains": "near(a" } }),
            vec!["strasse"],
        ),
        (json!({ "lastName": { "icontains": "a AND b" } }), vec![]),
        (json!({ "lastName": { "icontains": "*" } }), vec![]),
        (
            json!({ "lastName": { "icontains": "o'ne\\i" } }),
            vec!["strasse"],
        ),
        (
            json!({ "lastName": { "endswith": "\\il" } }),
            vec!["strasse"],
        ),
        (json!({ "lastName": { "contains": "e\\\\i" } }), vec![]),
        (
            json!({ "lastName": { "icontains": "'; DROP TABLE users; --" } }),
            vec![],
        ),
        (json!({ "lastName": { "icontains": "\\'" } }), vec![]),
    ] {
        assert_eq!(
            found(&app, &token, filter.clone(), Value::Null).await,
            names(&expected),
            "{filter}"
        );
    }
}

/// A NUL is in no stored text, and PostgreSQL refuses it in any: a filter
/// or search holding one is `BAD_USER_INPUT` on both databases.
#[tokio::test]
async fn a_nul_in_filter_text_is_refused() {
    let (app, token) = app().await;
    for (filter, search) in [
        (json!({ "email": { "icontains": "a\u{0}b" } }), Value::Null),
        (json!({ "username": { "iexact": "a\u{0}" } }), Value::Null),
        (json!({ "username": { "in": ["x", "\u{0}"] } }), Value::Null),
        (Value::Null, json!("abc\u{0}")),
    ] {
        let reply = app
            .gql_as(Some(&token), LOOKUP, json!({ "f": filter, "s": search }))
            .await;
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"], "{}", reply.body);
    }
}
