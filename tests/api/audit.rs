//! The audit log (issue 15, first part): every change writes its event in
//! its own transaction, with exact payloads and no secret; a refused or
//! failed change writes none; the log filters and pages, for holders of
//! VIEW_AUDIT_LOG only; retention prunes.
#![allow(clippy::unwrap_used)]

use entity::event;
use roster::{
    clock,
    domain::{Permission, Permissions},
    services::{access, events},
};
use sea_orm::{ActiveModelTrait, EntityTrait, PaginatorTrait, QueryOrder, Set};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app};

async fn all_events(app: &TestApp) -> Vec<event::Model> {
    event::Entity::find()
        .order_by_asc(event::Column::Id)
        .all(app.db())
        .await
        .unwrap()
}

async fn count(app: &TestApp) -> u64 {
    event::Entity::find().count(app.db()).await.unwrap()
}

fn payload(e: &event::Model) -> Value {
    serde_json::from_str(&e.payload).unwrap()
}

/// Runs `query` as `token` and asserts it succeeded.
async fn ok(app: &TestApp, token: &str, query: &str, variables: Value) -> Value {
    let reply = app.gql_as(Some(token), query, variables).await;
    assert_eq!(
        reply.codes(),
        Vec::<String>::new(),
        "{query}: {}",
        reply.body
    );
    reply.body["data"].clone()
}

#[tokio::test]
async fn every_change_writes_its_event_with_exact_payloads_and_no_secret() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let token = app.token_for(&root);
    let id_of = |data: &Value, field: &str| data[field]["id"].as_str().unwrap().to_owned();
    let hq = ok(
        &app,
        &token,
        "mutation { createDivision(input: {name: \"HQ\", divisionType: MAIN}) { id } }",
        Value::Null,
    )
    .await;
    let hq = id_of(&hq, "createDivision");
    let group = ok(
        &app,
        &token,
        "mutation { createGroup(input: {name: \"Desk\"}) { id } }",
        Value::Null,
    )
    .await;
    let group = id_of(&group, "createGroup");
    let created = ok(
        &app,
        &token,
        "mutation($g: ID!, $p: String!) { createUser(input: {username: \"ann\", email: \"ann@example.com\", password: $p, groupIds: [$g]}) { id } }",
        json!({ "g": group, "p": PASSWORD }),
    )
    .await;
    let ann = id_of(&created, "createUser");
    let vars = json!({ "u": ann, "g": group, "d": hq });
    for query in [
        "mutation($u: ID!, $d: ID!) { updateUser(id: $u, input: {firstName: \"Ann\", divisionId: $d}) { id } }",
        "mutation($u: ID!) { updateUser(id: $u, input: {firstName: \"Ann\"}) { id } }",
        "mutation($u: ID!, $g: ID!) { removeUserFromGroup(userId: $u, groupId: $g) { id } }",
        "mutation($u: ID!, $g: ID!) { removeUserFromGroup(userId: $u, groupId: $g) { id } }",
        "mutation($u: ID!, $g: ID!) { assignUserToGroup(userId: $u, groupId: $g) { id } }",
        "mutation($g: ID!) { setGroupPermissions(groupId: $g, permissions: [MANAGE_USERS]) { id } }",
        "mutation($g: ID!) { updateGroup(id: $g, input: {name: \"Help desk\"}) { id } }",
        "mutation($u: ID!) { setUserPassword(id: $u, password: \"a long fresh passphrase\") }",
        "mutation($u: ID!) { deactivateUser(id: $u) { id } }",
        "mutation($u: ID!) { activateUser(id: $u) { id } }",
        "mutation($d: ID!) { updateDivision(id: $d, input: {name: \"Head office\"}) { id } }",
        "mutation($d: ID!) { deactivateDivision(id: $d) { id } }",
        "mutation($u: ID!) { deleteUser(id: $u) }",
        "mutation($g: ID!) { deleteGroup(id: $g) }",
    ] {
        ok(&app, &token, query, vars.clone()).await;
    }
    let events = all_events(&app).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "division.created",
            "group.created",
            "user.created",
            "user.updated",
            // The same first name again changes nothing: no event.
            "user.removed_from_group",
            // Removing again is idempotent: no event.
            "user.added_to_group",
            "group.permissions_set",
            "group.renamed",
            "user.password_set",
            "user.deactivated",
            "user.activated",
            "division.updated",
            "division.deactivated",
            "user.deleted",
            "group.deleted",
        ]
    );
    for e in &events {
        assert_eq!(e.actor_id, Some(root.id), "{}", e.event_type);
        assert_eq!(e.actor_name.as_deref(), Some("root"));
        assert_eq!(e.client.as_deref(), Some("127.0.0.1"));
        // No password, hash or token anywhere.
        for secret in [
            PASSWORD,
            "a long fresh passphrase",
            "$argon2",
            "passwordHash",
            "tokenVersion",
        ] {
            assert!(
                !e.payload.contains(secret),
                "{}: {}",
                e.event_type,
                e.payload
            );
        }
    }
    let user_created = payload(&events[2]);
    assert_eq!(user_created["groupIds"], json!([group]));
    assert_eq!(user_created["user"]["username"], "ann");
    assert_eq!(user_created["user"]["email"], "ann@example.com");
    assert_eq!(user_created["user"]["isActive"], true);
    assert_eq!(
        events[2].target_user_id.map(|i| i.to_string()),
        Some(ann.clone())
    );
    assert_eq!(
        payload(&events[3]),
        json!({ "changes": {
            "firstName": { "before": "", "after": "Ann" },
            "divisionId": { "before": null, "after": hq },
        } })
    );
    assert_eq!(
        payload(&events[4]),
        json!({ "userId": ann, "groupId": group })
    );
    assert_eq!(
        events[4].target_group_id.map(|i| i.to_string()),
        Some(group.clone())
    );
    assert_eq!(
        payload(&events[6]),
        json!({ "permissions": { "before": [], "after": ["MANAGE_USERS"] } })
    );
    assert_eq!(
        payload(&events[7]),
        json!({ "name": { "before": "Desk", "after": "Help desk" } })
    );
    assert_eq!(payload(&events[8]), json!({ "userId": ann }));
    assert_eq!(payload(&events[9])["user"]["isActive"], false);
    assert_eq!(
        payload(&events[11]),
        json!({ "changes": { "name": { "before": "HQ", "after": "Head office" } } })
    );
    assert_eq!(payload(&events[12])["division"]["isActive"], false);
    assert_eq!(
        events[12].target_division_id.map(|i| i.to_string()),
        Some(hq)
    );
    assert_eq!(payload(&events[13])["user"]["username"], "ann");
    assert_eq!(
        payload(&events[14]),
        json!({ "group": { "id": group, "name": "Help desk", "permissions": ["MANAGE_USERS"] } })
    );
}

#[tokio::test]
async fn a_user_acting_for_themself_and_the_command_line_are_actors_too() {
    let app = spawn_app().await;
    let register = "mutation($p: String!) { register(input: {username: \"bea\", email: \"bea@example.com\", password: $p}) { id } }";
    let reply = app.gql(register, json!({ "p": PASSWORD })).await;
    let bea: i64 = reply.body["data"]["register"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let login =
        "mutation($p: String!) { login(input: {username: \"bea\", password: $p}) { accessToken } }";
    let reply = app.gql(login, json!({ "p": PASSWORD })).await;
    let token = reply.body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let change = "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"another long passphrase\") }";
    ok(&app, &token, change, json!({ "c": PASSWORD })).await;
    let events = all_events(&app).await;
    let seen: Vec<(&str, Option<i64>, Option<&str>)> = events
        .iter()
        .map(|e| (e.event_type.as_str(), e.actor_id, e.actor_name.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            ("user.created", Some(bea), Some("bea")),
            ("user.password_changed", Some(bea), Some("bea")),
        ]
    );
    assert!(events.iter().all(|e| e.target_user_id == Some(bea)));
    // The command line.
    let new = roster::services::users::NewUser {
        username: roster::domain::Username::parse("cli").unwrap(),
        email: roster::domain::Email::parse("cli@example.com").unwrap(),
        first_name: String::new(),
        last_name: String::new(),
        phone_number: None,
        password_hash: None,
        is_active: true,
        is_staff: true,
        is_superuser: true,
        division_id: None,
    };
    events::create_user(app.db(), new, |_| events::Actor::command_line())
        .await
        .unwrap();
    let last = all_events(&app).await.pop().unwrap();
    assert_eq!(
        (last.actor_id, last.actor_name.as_deref()),
        (None, Some("command line"))
    );
}

/// An event exists if and only if its change committed.
#[tokio::test]
async fn a_refused_or_failed_change_writes_no_event() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let plain = app.create_user("plain", false, false).await;
    let token = app.token_for(&root);
    let before = count(&app).await;
    for (query, code) in [
        // Taken username: refused after validation, inside no transaction.
        (
            "mutation { createUser(input: {username: \"plain\", email: \"x@example.com\"}) { id } }",
            "CONFLICT",
        ),
        // The last superuser: refused at the end of its transaction.
        (
            "mutation($r: ID!) { deactivateUser(id: $r) { id } }",
            "FORBIDDEN",
        ),
        // An inactive division: refused inside the transaction.
        (
            "mutation($p: ID!, $d: ID!) { updateUser(id: $p, input: {divisionId: $d}) { id } }",
            "BAD_USER_INPUT",
        ),
    ] {
        let inactive = app.create_division("Closed", None, false).await;
        let vars = json!({ "r": root.id.to_string(), "p": plain.id.to_string(), "d": inactive.id.to_string() });
        let reply = app.gql_as(Some(&token), query, vars).await;
        assert_eq!(reply.codes(), [code], "{query}: {}", reply.body);
        assert_eq!(count(&app).await, before, "{query}");
        entity::division::Entity::delete_by_id(inactive.id)
            .exec(app.db())
            .await
            .unwrap();
    }
    // Another root deactivated by the first: then the second refusal
    // above would have committed; its event comes with it.
    let other = app.create_user("root2", true, true).await;
    let vars = json!({ "r": other.id.to_string() });
    ok(
        &app,
        &token,
        "mutation($r: ID!) { deactivateUser(id: $r) { id } }",
        vars,
    )
    .await;
    assert_eq!(count(&app).await, before + 1);
}

async fn seed_log(app: &TestApp, token: &str) -> Vec<String> {
    let mut groups = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        let data = ok(
            app,
            token,
            "mutation($n: String!) { createGroup(input: {name: $n}) { id } }",
            json!({ "n": name }),
        )
        .await;
        groups.push(data["createGroup"]["id"].as_str().unwrap().to_owned());
    }
    groups
}

#[tokio::test]
async fn the_log_filters_and_pages_newest_first() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let token = app.token_for(&root);
    let groups = seed_log(&app, &token).await;
    ok(
        &app,
        &token,
        "mutation($g: ID!) { updateGroup(id: $g, input: {name: \"A2\"}) { id } }",
        json!({ "g": groups[0] }),
    )
    .await;
    let query = "query($f: AuditEventFilter, $n: Int, $a: String) { auditEvents(filter: $f, first: $n, after: $a) { totalCount edges { cursor node { type targetGroupId actorName payload } } pageInfo { hasNextPage } } }";
    let page = |f: Value, n: i64, a: Option<String>| {
        let token = token.clone();
        let app = &app;
        async move {
            ok(app, &token, query, json!({ "f": f, "n": n, "a": a })).await["auditEvents"].clone()
        }
    };
    let first = page(Value::Null, 2, None).await;
    assert_eq!(first["totalCount"], 6);
    let types: Vec<&str> = first["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["GROUP_RENAMED", "GROUP_CREATED"]);
    assert_eq!(first["edges"][1]["node"]["payload"]["group"]["name"], "E");
    assert_eq!(first["pageInfo"]["hasNextPage"], true);
    let cursor = first["edges"][1]["cursor"].as_str().map(str::to_owned);
    let second = page(Value::Null, 10, cursor).await;
    let names: Vec<&str> = second["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["payload"]["group"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["D", "C", "B", "A"]);
    assert_eq!(second["pageInfo"]["hasNextPage"], false);
    // By type, by target, by actor, by time, and combined.
    let by_type = page(json!({ "type": ["GROUP_RENAMED"] }), 10, None).await;
    assert_eq!(by_type["totalCount"], 1);
    let by_target = page(json!({ "targetGroupId": { "exact": groups[0] } }), 10, None).await;
    assert_eq!(by_target["totalCount"], 2);
    let by_actor = page(json!({ "actorId": { "isNull": true } }), 10, None).await;
    assert_eq!(by_actor["totalCount"], 0);
    let future = page(
        json!({ "occurredAt": { "gt": "2999-01-01T00:00:00Z" } }),
        10,
        None,
    )
    .await;
    assert_eq!(future["totalCount"], 0);
    let either = page(json!({ "or": [{ "type": ["GROUP_RENAMED"] }, { "targetGroupId": { "exact": groups[4] } }] }), 10, None).await;
    assert_eq!(either["totalCount"], 2);
    let bad = app
        .gql_as(
            Some(&token),
            query,
            json!({ "f": { "actorId": { "exact": "x" } } }),
        )
        .await;
    assert_eq!(bad.codes(), ["BAD_USER_INPUT"]);
}

#[tokio::test]
async fn only_holders_of_view_audit_log_read_the_log() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let token = app.token_for(&root);
    seed_log(&app, &token).await;
    let auditor = app.create_user("auditor", false, false).await;
    let group = app.create_group("Auditors").await;
    let views: Permissions = [Permission::ViewAuditLog].into_iter().collect();
    access::set_carried(app.db(), group.id, views)
        .await
        .unwrap();
    app.add_member(auditor.id, group.id).await;
    let plain = app.create_user("plain", false, false).await;
    let query =
        "query($u: ID!) { auditEvents { totalCount } user(id: $u) { auditEvents { totalCount } } }";
    let vars = json!({ "u": root.id.to_string() });
    let reply = app
        .gql_as(Some(&app.token_for(&auditor)), query, vars.clone())
        .await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    assert_eq!(reply.body["data"]["auditEvents"]["totalCount"], 5);
    assert_eq!(reply.body["data"]["user"]["auditEvents"]["totalCount"], 0);
    let reply = app.gql_as(Some(&app.token_for(&plain)), query, vars).await;
    assert_eq!(reply.codes(), ["FORBIDDEN", "FORBIDDEN"], "{}", reply.body);
    let reply = app.gql("{ auditEvents { totalCount } }", Value::Null).await;
    assert_eq!(reply.codes(), ["UNAUTHENTICATED"]);
    // Users in payloads are shown as the reader may see them: without
    // VIEW_USER_DETAILS, no email, phone, remote id, flags.
    let create = "mutation { createUser(input: {username: \"eve\", email: \"eve@example.com\", phoneNumber: \"+1 555 0100\", remoteId: \"CX-1\"}) { id } }";
    ok(&app, &token, create, Value::Null).await;
    let read = "{ auditEvents(first: 1, filter: {type: [USER_CREATED]}) { nodes { payload } } }";
    let payload_as = |token: String| {
        let app = &app;
        async move {
            ok(app, &token, read, Value::Null).await["auditEvents"]["nodes"][0]["payload"]["user"]
                .clone()
        }
    };
    let redacted = payload_as(app.token_for(&auditor)).await;
    assert_eq!(redacted["username"], "eve");
    for key in ["email", "phoneNumber", "remoteId", "isStaff", "isSuperuser"] {
        assert!(redacted.get(key).is_none(), "{key}: {redacted}");
    }
    let full = payload_as(token.clone()).await;
    assert_eq!(full["email"], "eve@example.com");
    assert_eq!(full["remoteId"], "CX-1");
}

/// Each change of one's own account is a row of the log: it spends a
/// budget of that account's, so nobody can grow the log at will.
#[tokio::test]
async fn self_service_updates_spend_a_budget() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.client_budget.burst = 3;
        config.client_budget.per_minute = 1;
    })
    .await;
    let user = app.create_user("self", false, false).await;
    let token = app.token_for(&user);
    let update = "mutation($id: ID!, $n: String!) { updateUser(id: $id, input: {firstName: $n}) { firstName } }";
    for (i, expected) in [(0, None), (1, None), (2, None), (3, Some("RATE_LIMITED"))] {
        let vars = json!({ "id": user.id.to_string(), "n": format!("name{i}") });
        let reply = app.gql_as(Some(&token), update, vars).await;
        let codes = reply.codes();
        assert_eq!(
            codes.first().map(String::as_str),
            expected,
            "{}",
            reply.body
        );
    }
    assert_eq!(count(&app).await, 3);
}

#[tokio::test]
async fn retention_prunes_what_is_older_and_zero_keeps_everything() {
    let app = spawn_app().await;
    let old = |days: i64| event::ActiveModel {
        occurred_at: Set(clock::now() - chrono::Duration::days(days)),
        event_type: Set("group.created".into()),
        payload: Set("{}".into()),
        ..Default::default()
    };
    for days in [400, 366, 10, 0] {
        old(days).insert(app.db()).await.unwrap();
    }
    events::prune(app.db(), None).await.unwrap();
    assert_eq!(count(&app).await, 4);
    let year = std::time::Duration::from_secs(365 * 86_400);
    events::prune(app.db(), Some(year)).await.unwrap();
    assert_eq!(count(&app).await, 2);
}

/// The failure that fills the login limit is in the log once; the refusals
/// that follow add nothing. A refresh token reused after its grace period
/// is in the log with the revocation of its family.
#[tokio::test]
async fn security_events_are_recorded_once() {
    let app = crate::helpers::spawn_app_with(|config| {
        config.login_max_failures = 3;
        config.refresh_reuse_grace = std::time::Duration::ZERO;
    })
    .await;
    let user = app.create_user("dana", false, false).await;
    let login = "mutation($p: String!) { login(input: {username: \"dana\", password: $p}) { refreshToken } }";
    for expected in [None, None, None, Some("RATE_LIMITED"), Some("RATE_LIMITED")] {
        let reply = app
            .gql(login, json!({ "p": "not the password at all" }))
            .await;
        let codes = reply.codes();
        let code = codes.first().map(String::as_str);
        assert_eq!(code, expected.or(Some("UNAUTHENTICATED")), "{}", reply.body);
    }
    let events = all_events(&app).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "security.login_locked");
    assert_eq!(events[0].target_user_id, Some(user.id));
    assert_eq!(events[0].actor_id, None);
    assert_eq!(
        payload(&events[0]),
        json!({ "counted": "user", "client": "127.0.0.1" })
    );
    // A refresh token reused.
    let other = app.create_user("erin", false, false).await;
    let login = "mutation($p: String!) { login(input: {username: \"erin\", password: $p}) { refreshToken } }";
    let reply = app.gql(login, json!({ "p": PASSWORD })).await;
    let first = reply.body["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = "mutation($t: String!) { refreshToken(refreshToken: $t) { refreshToken } }";
    let reply = app.gql(refresh, json!({ "t": first })).await;
    assert_eq!(reply.codes(), Vec::<String>::new());
    for _ in 0..2 {
        let reply = app.gql(refresh, json!({ "t": first })).await;
        assert_eq!(reply.codes(), ["UNAUTHENTICATED"]);
    }
    let events = all_events(&app).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].event_type, "security.refresh_token_reused");
    assert_eq!(events[1].target_user_id, Some(other.id));
    assert_eq!(
        payload(&events[1]),
        json!({ "userId": other.id.to_string() })
    );
}

/// The cheapest way to make the log's filter expensive, a long list of
/// types, is held to the filter limits like every `in` list.
#[tokio::test]
async fn a_huge_type_list_is_refused_before_any_sql() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let types = vec!["USER_CREATED"; 1_001];
    let query = "query($f: AuditEventFilter) { auditEvents(filter: $f) { totalCount } }";
    let reply = app
        .gql_as(
            Some(&app.token_for(&root)),
            query,
            json!({ "f": { "type": types } }),
        )
        .await;
    assert_eq!(reply.codes(), ["BAD_USER_INPUT"], "{}", reply.body);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"]["filter"][0],
        "The in lists of a filter may hold at most 1000 values in all."
    );
}
