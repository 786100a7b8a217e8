//! The external system's id of a user (issue 15, `remoteId`): set and
//! cleared by holders of MANAGE_USERS, read and filtered like `email`,
//! recorded in the audit log.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn remote_ids_are_set_read_filtered_and_recorded_like_guarded_fields() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let token = app.token_for(&root);
    let create = "mutation($r: String) { createUser(input: {username: \"ann\", email: \"ann@example.com\", remoteId: $r}) { id remoteId } }";
    let reply = app
        .gql_as(Some(&token), create, json!({ "r": "  CX-0042 " }))
        .await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    assert_eq!(reply.body["data"]["createUser"]["remoteId"], "CX-0042");
    let ann = reply.body["data"]["createUser"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.create_user("bob", false, false).await;
    // Read: staff yes, another user no, the user themself yes.
    let read = "query($id: ID!) { user(id: $id) { remoteId } }";
    let bob = app.create_user("carl", false, false).await;
    let reply = app
        .gql_as(Some(&app.token_for(&bob)), read, json!({ "id": ann }))
        .await;
    assert_eq!(reply.codes(), ["FORBIDDEN"]);
    assert_eq!(reply.body["data"]["user"]["remoteId"], Value::Null);
    // Filter: the synced users, a case-insensitive lookup; others may not.
    let synced = "query($f: UserFilter) { users(filter: $f) { nodes { username } } }";
    for (filter, expected) in [
        (
            json!({ "remoteId": { "isNull": false } }),
            json!([{ "username": "ann" }]),
        ),
        (
            json!({ "remoteId": { "iexact": "cx-0042" } }),
            json!([{ "username": "ann" }]),
        ),
        (
            json!({ "remoteId": { "isNull": true }, "username": { "exact": "bob" } }),
            json!([{ "username": "bob" }]),
        ),
    ] {
        let reply = app
            .gql_as(Some(&token), synced, json!({ "f": filter }))
            .await;
        assert_eq!(reply.body["data"]["users"]["nodes"], expected, "{filter}");
    }
    let reply = app
        .gql_as(
            Some(&app.token_for(&bob)),
            synced,
            json!({ "f": { "remoteId": { "isNull": false } } }),
        )
        .await;
    assert_eq!(reply.codes(), ["FORBIDDEN"]);
    // Update: set, clear; a user may not set their own; bad values refused.
    let update = "mutation($id: ID!, $r: String) { updateUser(id: $id, input: {remoteId: $r}) { remoteId } }";
    let reply = app
        .gql_as(Some(&token), update, json!({ "id": ann, "r": "CX-0043" }))
        .await;
    assert_eq!(reply.body["data"]["updateUser"]["remoteId"], "CX-0043");
    let reply = app
        .gql_as(Some(&token), update, json!({ "id": ann, "r": null }))
        .await;
    assert_eq!(reply.body["data"]["updateUser"]["remoteId"], Value::Null);
    let reply = app
        .gql_as(
            Some(&app.token_for(&bob)),
            update,
            json!({ "id": bob.id.to_string(), "r": "CX-9" }),
        )
        .await;
    assert_eq!(reply.codes(), ["FORBIDDEN"]);
    for bad in ["x".repeat(256), "CX\u{7}1".to_owned()] {
        let reply = app
            .gql_as(Some(&token), update, json!({ "id": ann, "r": bad }))
            .await;
        assert_eq!(reply.codes(), ["BAD_USER_INPUT"]);
        assert!(reply.body["errors"][0]["extensions"]["fields"]["remoteId"].is_array());
    }
    // upsertUser sets it too; every change is in the audit log.
    let upsert = "mutation { upsertUser(input: {username: \"ann\", email: \"ann@example.com\", remoteId: \"CX-0044\"}) { remoteId } }";
    let reply = app.gql_as(Some(&token), upsert, Value::Null).await;
    assert_eq!(reply.body["data"]["upsertUser"]["remoteId"], "CX-0044");
    let log = "query($id: ID!) { user(id: $id) { auditEvents { nodes { type payload } } } }";
    let reply = app.gql_as(Some(&token), log, json!({ "id": ann })).await;
    let nodes = reply.body["data"]["user"]["auditEvents"]["nodes"].clone();
    assert_eq!(
        nodes,
        json!([
            { "type": "USER_UPDATED", "payload": { "changes": { "remoteId": { "before": null, "after": "CX-0044" } } } },
            { "type": "USER_UPDATED", "payload": { "changes": { "remoteId": { "before": "CX-0043", "after": null } } } },
            { "type": "USER_UPDATED", "payload": { "changes": { "remoteId": { "before": "CX-0042", "after": "CX-0043" } } } },
            nodes[3].clone(),
        ])
    );
    assert_eq!(nodes[3]["type"], "USER_CREATED");
    assert_eq!(nodes[3]["payload"]["user"]["remoteId"], "CX-0042");
}
