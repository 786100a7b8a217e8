//! The per-process caches of token checks and counts: what they save, and
//! that a change is seen at once all the same.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, fresh_database, spawn_app_with, spawn_counted_app};

/// Long enough that only forgetting, never expiry, explains a fresh read.
const LONG: Duration = Duration::from_secs(600);

// A page smaller than the list: a page that holds every match counts
// them itself, and the count would not be asked for.
const USERS: &str = "{ users(first: 1) { totalCount nodes { username } } }";

/// A server with long-lived caches and a counter of its SQL statements.
async fn counted_app() -> (TestApp, Arc<AtomicUsize>) {
    spawn_counted_app(|config| config.cache = LONG).await
}

/// The error codes of `query`, sent with `token`.
async fn codes(app: &TestApp, token: &str, query: &str, variables: Value) -> Vec<String> {
    app.gql_as(Some(token), query, variables).await.codes()
}

/// Sends a mutation that must succeed.
async fn mutate(app: &TestApp, token: &str, mutation: &str, variables: Value) {
    let reply = app.gql_as(Some(token), mutation, variables).await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
}

async fn statements(counter: &AtomicUsize, app: &TestApp, token: &str, query: &str) -> Value {
    counter.store(0, Ordering::SeqCst);
    let reply = app.gql_as(Some(token), query, Value::Null).await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    json!({ "statements": counter.load(Ordering::SeqCst), "data": reply.body["data"] })
}

#[tokio::test]
async fn a_repeated_read_skips_the_token_check_and_the_count_until_a_mutation() {
    let (app, counter) = counted_app().await;
    let staff = app.create_user("staff", true, false).await;
    let token = app.token_for(&staff);
    app.create_user("yves", false, false).await;
    app.settle().await;

    let first = json!({ "totalCount": 2, "nodes": [{ "username": "staff" }] });
    // token check, count, page
    assert_eq!(
        statements(&counter, &app, &token, USERS).await,
        json!({ "statements": 3, "data": { "users": first } })
    );
    // the page only
    assert_eq!(
        statements(&counter, &app, &token, USERS).await,
        json!({ "statements": 1, "data": { "users": first } })
    );
    // { __typename } asks the database nothing at all
    assert_eq!(
        statements(&counter, &app, &token, "{ __typename }").await,
        json!({ "statements": 0, "data": { "__typename": "Query" } })
    );

    let create = "mutation { createUser(input: {username: \"zed\", email: \"zed@example.com\"}) { username } }";
    assert_eq!(
        app.gql_as(Some(&token), create, Value::Null).await.body,
        json!({ "data": { "createUser": { "username": "zed" } } })
    );
    // Everything is read again, and the count has the new user.
    assert_eq!(
        statements(&counter, &app, &token, USERS).await,
        json!({ "statements": 3, "data": { "users": {
            "totalCount": 3,
            "nodes": [{ "username": "staff" }]
        } } })
    );
}

const ONE_USER: &str =
    "query($id: ID!) { user(id: $id) { username division { name } groups { name } } }";

async fn one_user(counter: &AtomicUsize, app: &TestApp, token: &str, id: i64) -> Value {
    counter.store(0, Ordering::SeqCst);
    let reply = app
        .gql_as(Some(token), ONE_USER, json!({ "id": id.to_string() }))
        .await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    json!({ "statements": counter.load(Ordering::SeqCst), "user": reply.body["data"]["user"] })
}

#[tokio::test]
async fn a_repeated_user_by_id_reads_nothing_and_a_mutation_returns_what_it_changed() {
    let (app, counter) = counted_app().await;
    let staff = app.create_user("staff", true, false).await;
    let token = app.token_for(&staff);
    let alice = app.create_user("alice", false, false).await;
    let sales = app.create_division("Sales", None, true).await;
    let (admins, ops) = (
        app.create_group("Admins").await,
        app.create_group("Ops").await,
    );
    app.add_member(alice.id, ops.id).await;
    let update =
        "mutation($id: ID!, $d: ID!) { updateUser(id: $id, input: {divisionId: $d}) { username } }";
    mutate(
        &app,
        &token,
        update,
        json!({ "id": alice.id.to_string(), "d": sales.id.to_string() }),
    )
    .await;
    app.settle().await;

    let before = json!({ "username": "alice", "division": { "name": "Sales" }, "groups": [{ "name": "Ops" }] });
    // token check, then the user with their division and groups
    assert_eq!(
        one_user(&counter, &app, &token, alice.id).await,
        json!({ "statements": 2, "user": before })
    );
    assert_eq!(
        one_user(&counter, &app, &token, alice.id).await,
        json!({ "statements": 0, "user": before })
    );

    // The mutation's own answer reads past the caches...
    let assign = "mutation($u: ID!, $g: ID!) { assignUserToGroup(userId: $u, groupId: $g) { groups { name } } }";
    let reply = app
        .gql_as(
            Some(&token),
            assign,
            json!({ "u": alice.id.to_string(), "g": admins.id.to_string() }),
        )
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "assignUserToGroup": { "groups": [{ "name": "Admins" }, { "name": "Ops" }] } } })
    );
    // ...and the next read sees the change.
    let both = json!({ "username": "alice", "division": { "name": "Sales" }, "groups": [{ "name": "Admins" }, { "name": "Ops" }] });
    assert_eq!(
        one_user(&counter, &app, &token, alice.id).await,
        json!({ "statements": 2, "user": both })
    );

    // A renamed division and group, and a missing user.
    for rename in [
        format!(
            "mutation {{ updateDivision(id: \"{}\", input: {{name: \"Field sales\"}}) {{ name }} }}",
            sales.id
        ),
        format!(
            "mutation {{ updateGroup(id: \"{}\", input: {{name: \"Staff\"}}) {{ name }} }}",
            admins.id
        ),
    ] {
        mutate(&app, &token, &rename, Value::Null).await;
    }
    assert_eq!(
        one_user(&counter, &app, &token, alice.id).await,
        json!({ "statements": 2, "user": {
            "username": "alice",
            "division": { "name": "Field sales" },
            "groups": [{ "name": "Ops" }, { "name": "Staff" }]
        } })
    );
    let missing = json!({ "id": "999999" });
    for _ in 0..2 {
        assert_eq!(
            codes(&app, &token, ONE_USER, missing.clone()).await,
            vec!["NOT_FOUND"]
        );
    }
}

#[tokio::test]
async fn a_cached_token_is_refused_as_soon_as_its_user_changes() {
    let app = spawn_app_with(|config| config.cache = LONG).await;
    let root = app.create_user("root", true, true).await;
    let alice = app.create_user("alice", false, false).await;
    let bob = app.create_user("bob", false, false).await;
    let carol = app.create_user("carol", true, false).await;
    let (root_token, alice_token, bob_token, carol_token) = (
        app.token_for(&root),
        app.token_for(&alice),
        app.token_for(&bob),
        app.token_for(&carol),
    );
    app.settle().await;
    // Another user's email is for staff only.
    let staff_only = format!("{{ user(id: \"{}\") {{ email }} }}", alice.id);
    for token in [&alice_token, &bob_token] {
        assert_eq!(
            codes(&app, token, "{ __typename }", Value::Null).await,
            Vec::<String>::new()
        );
    }
    assert_eq!(
        app.gql_as(Some(&carol_token), &staff_only, Value::Null)
            .await
            .body,
        json!({ "data": { "user": { "email": "alice@example.com" } } })
    );

    // Deactivated by staff: refused on the very next request.
    let deactivate = "mutation($id: ID!) { deactivateUser(id: $id) { isActive } }";
    mutate(
        &app,
        &root_token,
        deactivate,
        json!({ "id": alice.id.to_string() }),
    )
    .await;
    assert_eq!(
        codes(&app, &alice_token, "{ __typename }", Value::Null).await,
        vec!["UNAUTHENTICATED"]
    );

    // A new password: the old token is refused at once.
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    mutate(
        &app,
        &bob_token,
        change,
        json!({ "c": PASSWORD, "n": "Kw9$vT4n!qR-another" }),
    )
    .await;
    assert_eq!(
        codes(&app, &bob_token, "{ __typename }", Value::Null).await,
        vec!["UNAUTHENTICATED"]
    );

    // No longer staff: the email is forbidden at once.
    let demote = "mutation($id: ID!) { updateUser(id: $id, input: {isStaff: false}) { isStaff } }";
    mutate(
        &app,
        &root_token,
        demote,
        json!({ "id": carol.id.to_string() }),
    )
    .await;
    assert_eq!(
        codes(&app, &carol_token, &staff_only, Value::Null).await,
        vec!["FORBIDDEN"]
    );
}

/// A change made behind the server's back (another process, plain SQL):
/// on PostgreSQL its notice reaches the caches, however long they keep
/// entries; on SQLite, where one process serves a file, it is seen once the
/// entries expire (a second by default).
#[tokio::test]
async fn a_change_made_elsewhere_reaches_the_caches() {
    let (database_url, dir) = fresh_database().await;
    let postgres = database_url.starts_with("postgres");
    let app = crate::helpers::spawn_app_on(database_url, dir, |config| {
        if postgres {
            config.cache = LONG;
        }
    })
    .await;
    let root = app.create_user("root", true, true).await;
    let alice = app.create_user("alice", false, false).await;
    let (root_token, alice_token) = (app.token_for(&root), app.token_for(&alice));
    let ops = app.create_group("Ops").await;
    app.add_member(root.id, ops.id).await;
    app.settle().await;
    let active = format!(
        "{{ users(filter: {{isActive: true}}) {{ totalCount }} user(id: \"{}\") {{ groups {{ name }} }} }}",
        root.id
    );
    let seen = |total, group| {
        json!({ "data": {
        "users": { "totalCount": total },
        "user": { "groups": [{ "name": group }] }
    } })
    };
    assert_eq!(
        app.gql_as(Some(&root_token), &active, Value::Null)
            .await
            .body,
        seen(2, "Ops")
    );
    assert_eq!(
        codes(&app, &alice_token, "{ __typename }", Value::Null).await,
        Vec::<String>::new()
    );
    // A user asked for before it exists.
    let newcomer_id = alice.id + 100;
    let newcomer = format!("{{ user(id: \"{newcomer_id}\") {{ username }} }}");
    assert_eq!(
        codes(&app, &root_token, &newcomer, Value::Null).await,
        vec!["NOT_FOUND"]
    );

    let elsewhere = roster::startup::connect(&app.database_url).await.unwrap();
    elsewhere
        .execute_unprepared(&format!(
            "UPDATE users SET is_active = false WHERE id = {}",
            alice.id
        ))
        .await
        .unwrap();
    elsewhere
        .execute_unprepared(&format!(
            "UPDATE groups SET name = 'Staff', name_folded = 'staff' WHERE id = {}",
            ops.id
        ))
        .await
        .unwrap();
    elsewhere
        .execute_unprepared(&format!(
            "INSERT INTO users (id, username, username_folded, email, email_folded, \
             first_name, first_name_folded, last_name, last_name_folded, is_active, \
             is_staff, is_superuser, date_joined, token_version) \
             VALUES ({newcomer_id}, 'newcomer', 'newcomer', 'new@example.com', \
             'new@example.com', '', '', '', '', false, false, false, \
             '2026-01-01 00:00:00+00:00', 0)"
        ))
        .await
        .unwrap();
    let changed = Instant::now();
    let bound = if postgres {
        Duration::from_millis(500)
    } else {
        Duration::from_millis(1500)
    };
    loop {
        let refused = app
            .gql_as(Some(&alice_token), "{ __typename }", Value::Null)
            .await
            .codes()
            == vec!["UNAUTHENTICATED"];
        let count = app
            .gql_as(Some(&root_token), &active, Value::Null)
            .await
            .body;
        let arrived = app
            .gql_as(Some(&root_token), &newcomer, Value::Null)
            .await
            .body
            == json!({ "data": { "user": { "username": "newcomer" } } });
        if refused && arrived && count == seen(1, "Staff") {
            break;
        }
        assert!(
            changed.elapsed() < bound,
            "still stale after {:?}: {count}",
            changed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
