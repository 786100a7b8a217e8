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

/// Changes the user `id` as `input` says, as the superuser `token`.
async fn update_user(app: &TestApp, token: &str, id: i64, input: Value) {
    let update = "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id } }";
    let reply = app
        .gql_as(
            Some(token),
            update,
            json!({ "id": id.to_string(), "input": input }),
        )
        .await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
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
    let input =
        json!({ "username": "quixote", "firstName": "Dulcinea", "email": "rocinante@example.com" });
    update_user(&app, &token, user.id, input).await;
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
    let input = json!({ "firstName": "Straße \"OR\" 50%_off", "lastName": "NEAR(a b) O'Ne\\il" });
    update_user(&app, &token, user.id, input).await;
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

/// `n` users whose emails all hold `example` and `user`, and whose ids are
/// in their usernames, straight into the table.
async fn many_users(app: &TestApp, n: usize) {
    let rows = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < @N) \
        INSERT INTO users (username, username_folded, email, email_folded, first_name, \
        first_name_folded, last_name, last_name_folded, is_active, is_staff, is_superuser, \
        date_joined, token_version) \
        SELECT 'user' || i, 'user' || i, 'user' || i || '@example.com', \
        'user' || i || '@example.com', '', '', '', '', true, false, false, \
        '2026-01-01T00:00:00+00:00', 0 FROM n";
    let rows = rows.replace("@N", &n.to_string());
    let rows = match app.db().get_database_backend() {
        DbBackend::Postgres => rows.replace("'2026-01-01T00:00:00+00:00'", "now()"),
        _ => rows,
    };
    app.db().execute_unprepared(&rows).await.unwrap();
}

/// PostgreSQL's plan for counting the users whose email holds `pattern`.
async fn explain_count(app: &TestApp, pattern: &str) -> String {
    let sql = format!("EXPLAIN SELECT count(*) FROM users WHERE email_folded LIKE '%{pattern}%'");
    let rows = app
        .db()
        .query_all_raw(sea_orm::Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap();
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A pattern most users hold is cheaper to scan for than to read from the
/// index: each database scans for it, and asks the index for a rare one.
#[tokio::test]
async fn a_pattern_most_users_hold_scans_and_a_rare_one_asks_the_index() {
    let (app, token) = app().await;
    // PostgreSQL scans a table of a few thousand rows whatever the pattern.
    let n = match app.db().get_database_backend() {
        DbBackend::Postgres => 40_000,
        _ => 5_000,
    };
    many_users(&app, n).await;
    match app.db().get_database_backend() {
        DbBackend::Sqlite => {
            use roster::services::reads::trigrams;
            let patterns = ["example".to_owned(), "user1234@".to_owned()];
            let plan = trigrams::plan(app.db(), &patterns).await.unwrap();
            assert_eq!(plan.get("example"), None, "{plan:?}");
            // Its two rarest trigrams: "123" and "234" are in 15 rows each
            // (123, 1230-1239, 1123...), "34@" in 50, "use" in all.
            let mut chosen = plan.get("user1234@").cloned().unwrap_or_default();
            chosen.sort();
            assert_eq!(chosen, vec!["123".to_owned(), "234".to_owned()]);
        }
        _ => {
            app.db().execute_unprepared("ANALYZE users").await.unwrap();
            let common = explain_count(&app, "example").await;
            assert!(common.contains("Seq Scan"), "{common}");
            let rare = explain_count(&app, "user1234@").await;
            assert!(rare.contains("users_email_folded_trgm_idx"), "{rare}");
        }
    }
    // Either way, the answers are the scan's.
    let email = |text: &str| json!({ "email": { "icontains": text } });
    let reply = app
        .gql_as(
            Some(&token),
            "query($f: UserFilter) { users(filter: $f) { totalCount } }",
            json!({ "f": email("EXAMPLE.com") }),
        )
        .await;
    assert_eq!(
        reply.body["data"]["users"]["totalCount"],
        n + 1,
        "{}",
        reply.body
    );
    assert_eq!(
        found(&app, &token, email("user1234@"), Value::Null).await,
        names(&["user1234"])
    );
}

/// Under a `not`, a lookup on a column that may be NULL keeps SQL's answer
/// on both databases: a user without a phone number is in neither
/// `phoneNumber: {contains: …}` nor its negation.
#[tokio::test]
async fn a_negated_lookup_leaves_out_users_without_the_value() {
    let (app, token) = app().await;
    for (name, phone) in [
        ("fivefive", Some("+1 555 0100")),
        ("sevens", Some("+1 777 0100")),
        ("nophone", None),
    ] {
        let user = app.create_user(name, false, false).await;
        if let Some(phone) = phone {
            update_user(&app, &token, user.id, json!({ "phoneNumber": phone })).await;
        }
    }
    for needle in ["555 01", "55"] {
        let lookup = json!({ "phoneNumber": { "contains": needle } });
        assert_eq!(
            found(&app, &token, lookup.clone(), Value::Null).await,
            names(&["fivefive"]),
            "{needle}"
        );
        assert_eq!(
            found(&app, &token, json!({ "not": lookup }), Value::Null).await,
            names(&["sevens"]),
            "{needle}"
        );
    }
}
