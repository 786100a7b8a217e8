//! Permissions carried by groups (issue 14): every permission against every
//! operation it governs, alone and in combination; the rules against
//! escalation; permissions gone at once; and the services asked without HTTP.
#![allow(clippy::unwrap_used)]

use entity::user;
use roster::{
    domain::{Permission, Permissions},
    services::access::{self, Access},
};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app};

/// A user of `app` whose one group carries `permissions`, with a token.
async fn holder(app: &TestApp, name: &str, permissions: Permissions) -> (user::Model, String) {
    let user = app.create_user(name, false, false).await;
    let group = app.create_group(&format!("{name}'s group")).await;
    carry(app, group.id, permissions).await;
    app.add_member(user.id, group.id).await;
    let token = app.token_for(&user);
    (user, token)
}

/// Makes group `id` carry `permissions`, behind the API's back.
async fn carry(app: &TestApp, id: i64, permissions: Permissions) {
    access::set_carried(app.db(), id, permissions)
        .await
        .unwrap();
    app.forget_reads();
}

fn set(permissions: &[Permission]) -> Permissions {
    permissions.iter().copied().collect()
}

fn forbidden_naming(reply: &Reply, missing: &str) {
    assert_eq!(reply.codes(), ["FORBIDDEN"], "{}", reply.body);
    let message = reply.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(missing), "{message} should name {missing}");
}

/// An operation some permission governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    ReadDetails,
    FilterOnDetails,
    ListGroupUsers,
    ListDivisionUsers,
    CreateUser,
    UpsertUser,
    UpdateUser,
    ActivateUser,
    DeactivateUser,
    DeleteUser,
    SetUserPassword,
    RequestUserSync,
    AssignToGroup,
    RemoveFromGroup,
    CreateGroup,
    RenameGroup,
    DeleteGroup,
    SetGroupPermissions,
    CreateDivision,
    UpdateDivision,
    ActivateDivision,
    DeactivateDivision,
    ReadAuditLog,
    ReadUserAuditEvents,
}

/// The one table: what each permission governs. The match has no
/// wildcard, so a new permission does not compile without its rows.
fn governed(permission: Permission) -> &'static [Op] {
    use Op::*;
    match permission {
        Permission::ViewUserDetails => &[
            ReadDetails,
            FilterOnDetails,
            ListGroupUsers,
            ListDivisionUsers,
        ],
        Permission::ManageUsers => &[
            CreateUser,
            UpsertUser,
            UpdateUser,
            ActivateUser,
            DeactivateUser,
            DeleteUser,
            SetUserPassword,
            RequestUserSync,
        ],
        Permission::ManageGroupMembers => &[AssignToGroup, RemoveFromGroup],
        Permission::ManageGroups => &[CreateGroup, RenameGroup, DeleteGroup, SetGroupPermissions],
        Permission::ManageDivisions => &[
            CreateDivision,
            UpdateDivision,
            ActivateDivision,
            DeactivateDivision,
        ],
        Permission::ViewAuditLog => &[ReadAuditLog, ReadUserAuditEvents],
    }
}

/// Runs `op` as the holder of `token`, on objects made for this run
/// (`tag` keeps names apart), and returns every reply with the data field
/// that must be non-null when the operation is allowed.
async fn run(app: &TestApp, token: &str, op: Op, tag: &str) -> Vec<(Reply, &'static str)> {
    let gql = |query: &'static str, variables: Value| async move {
        app.gql_as(Some(token), query, variables).await
    };
    let target = || async {
        app.create_user(&format!("target_{tag}"), false, false)
            .await
    };
    let group = || async { app.create_group(&format!("group {tag}")).await };
    let division = || async {
        app.create_division(&format!("division {tag}"), None, true)
            .await
    };
    match op {
        Op::ReadDetails => {
            let t = target().await;
            let query = "query($id: ID!) { user(id: $id) { email phoneNumber lastLogin remoteId isStaff isSuperuser permissions } }";
            let reply = gql(query, json!({ "id": t.id.to_string() })).await;
            // Allowed: the values themselves; refused: six FORBIDDENs.
            if reply.codes().is_empty() {
                assert_eq!(reply.body["data"]["user"]["email"], t.email);
                assert_eq!(reply.body["data"]["user"]["permissions"], json!([]));
                vec![(reply, "user")]
            } else {
                assert_eq!(reply.codes(), vec!["FORBIDDEN"; 7], "{}", reply.body);
                assert_eq!(reply.body["data"]["user"]["email"], Value::Null);
                let mut refusal = reply;
                // One reply per refusal is enough for the table's check.
                refusal.body["errors"] = json!([refusal.body["errors"][0].clone()]);
                vec![(refusal, "user")]
            }
        }
        Op::FilterOnDetails => {
            let mut replies = Vec::new();
            for filter in [
                json!({ "email": { "icontains": "target" } }),
                json!({ "phoneNumber": { "isNull": true } }),
                json!({ "lastLogin": { "isNull": true } }),
                json!({ "remoteId": { "isNull": false } }),
                json!({ "isStaff": false }),
                json!({ "isSuperuser": false }),
                json!({ "permission": "MANAGE_USERS" }),
                json!({ "or": [{ "username": { "exact": "x" } }, { "email": { "exact": "x" } }] }),
            ] {
                let query = "query($f: UserFilter) { users(filter: $f) { totalCount } }";
                replies.push((gql(query, json!({ "f": filter })).await, "users"));
            }
            for field in ["EMAIL", "LAST_LOGIN"] {
                let query = "query($o: [UserOrder!]) { users(orderBy: $o) { totalCount } }";
                let order = json!({ "o": [{ "field": field }] });
                replies.push((gql(query, order).await, "users"));
            }
            replies
        }
        Op::ListGroupUsers => {
            let g = group().await;
            let query = "query($id: ID!) { group(id: $id) { users { totalCount } } }";
            let reply = gql(query, json!({ "id": g.id.to_string() })).await;
            vec![(reply, "group")]
        }
        Op::ListDivisionUsers => {
            let d = division().await;
            let query = "query($id: ID!) { division(id: $id) { users { totalCount } } }";
            let reply = gql(query, json!({ "id": d.id.to_string() })).await;
            vec![(reply, "division")]
        }
        Op::CreateUser => {
            let query = "mutation($u: String!, $e: String!) { createUser(input: {username: $u, email: $e}) { id } }";
            let name = format!("new_{tag}");
            let vars = json!({ "u": name, "e": format!("{name}@example.com") });
            vec![(gql(query, vars).await, "createUser")]
        }
        Op::UpsertUser => {
            let query = "mutation($u: String!, $e: String!) { upsertUser(input: {username: $u, email: $e, firstName: \"Up\"}) { id } }";
            let t = target().await;
            let vars = json!({ "u": t.username, "e": t.email });
            vec![(gql(query, vars).await, "upsertUser")]
        }
        Op::UpdateUser => {
            let t = target().await;
            let query = "mutation($id: ID!) { updateUser(id: $id, input: {firstName: \"Renamed\"}) { firstName } }";
            vec![(
                gql(query, json!({ "id": t.id.to_string() })).await,
                "updateUser",
            )]
        }
        Op::ActivateUser | Op::DeactivateUser | Op::DeleteUser | Op::RequestUserSync => {
            let t = target().await;
            let query = match op {
                Op::ActivateUser => "mutation($id: ID!) { activateUser(id: $id) { id } }",
                Op::DeactivateUser => "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
                Op::RequestUserSync => "mutation($id: ID!) { requestUserSync(id: $id) { id } }",
                _ => "mutation($id: ID!) { deleteUser(id: $id) }",
            };
            let field = match op {
                Op::ActivateUser => "activateUser",
                Op::DeactivateUser => "deactivateUser",
                Op::RequestUserSync => "requestUserSync",
                _ => "deleteUser",
            };
            vec![(gql(query, json!({ "id": t.id.to_string() })).await, field)]
        }
        Op::SetUserPassword => {
            let t = target().await;
            let query = "mutation($id: ID!) { setUserPassword(id: $id, password: \"a long fresh passphrase\") }";
            vec![(
                gql(query, json!({ "id": t.id.to_string() })).await,
                "setUserPassword",
            )]
        }
        Op::AssignToGroup | Op::RemoveFromGroup => {
            let (t, g) = (target().await, group().await);
            let (query, field) = if op == Op::AssignToGroup {
                (
                    "mutation($u: ID!, $g: ID!) { assignUserToGroup(userId: $u, groupId: $g) { id } }",
                    "assignUserToGroup",
                )
            } else {
                app.add_member(t.id, g.id).await;
                (
                    "mutation($u: ID!, $g: ID!) { removeUserFromGroup(userId: $u, groupId: $g) { id } }",
                    "removeUserFromGroup",
                )
            };
            let vars = json!({ "u": t.id.to_string(), "g": g.id.to_string() });
            vec![(gql(query, vars).await, field)]
        }
        Op::CreateGroup => {
            let query = "mutation($n: String!) { createGroup(input: {name: $n}) { id } }";
            vec![(
                gql(query, json!({ "n": format!("new group {tag}") })).await,
                "createGroup",
            )]
        }
        Op::RenameGroup | Op::DeleteGroup | Op::SetGroupPermissions => {
            let g = group().await;
            let (query, field) = match op {
                Op::RenameGroup => (
                    "mutation($id: ID!) { updateGroup(id: $id, input: {name: \"renamed\"}) { id } }",
                    "updateGroup",
                ),
                Op::DeleteGroup => ("mutation($id: ID!) { deleteGroup(id: $id) }", "deleteGroup"),
                _ => (
                    "mutation($id: ID!) { setGroupPermissions(groupId: $id, permissions: [MANAGE_GROUPS]) { id } }",
                    "setGroupPermissions",
                ),
            };
            vec![(gql(query, json!({ "id": g.id.to_string() })).await, field)]
        }
        Op::ReadAuditLog => {
            let query = "{ auditEvents(first: 5) { totalCount edges { node { type } } } }";
            vec![(gql(query, Value::Null).await, "auditEvents")]
        }
        Op::ReadUserAuditEvents => {
            let t = target().await;
            let query = "query($id: ID!) { user(id: $id) { username auditEvents { totalCount } } }";
            let reply = gql(query, json!({ "id": t.id.to_string() })).await;
            if reply.codes().is_empty() {
                assert_eq!(reply.body["data"]["user"]["auditEvents"]["totalCount"], 0);
            }
            vec![(reply, "user")]
        }
        Op::CreateDivision => {
            let query = "mutation($n: String!) { createDivision(input: {name: $n, divisionType: MAIN}) { id } }";
            let vars = json!({ "n": format!("new division {tag}") });
            vec![(gql(query, vars).await, "createDivision")]
        }
        Op::UpdateDivision | Op::ActivateDivision | Op::DeactivateDivision => {
            let d = division().await;
            let (query, field) = match op {
                Op::UpdateDivision => (
                    "mutation($id: ID!) { updateDivision(id: $id, input: {name: \"moved\"}) { id } }",
                    "updateDivision",
                ),
                Op::ActivateDivision => (
                    "mutation($id: ID!) { activateDivision(id: $id) { id } }",
                    "activateDivision",
                ),
                _ => (
                    "mutation($id: ID!) { deactivateDivision(id: $id) { id } }",
                    "deactivateDivision",
                ),
            };
            vec![(gql(query, json!({ "id": d.id.to_string() })).await, field)]
        }
    }
}

/// Each permission alone allows every operation it governs; every other
/// permission together, and none at all, allow none of them.
#[tokio::test]
async fn every_permission_alone_and_in_combination_against_every_operation_it_governs() {
    for permission in Permission::ALL {
        let app = spawn_app().await;
        let only = set(&[permission]);
        let holders = [
            ("only", only, true),
            ("allbut", Permissions::all().without(only), false),
            ("none", Permissions::NONE, false),
        ];
        for (kind, permissions, allowed) in holders {
            let (_, token) = holder(&app, &format!("{kind}_holder"), permissions).await;
            for (i, &op) in governed(permission).iter().enumerate() {
                let tag = format!("{kind}{i}");
                for (reply, field) in run(&app, &token, op, &tag).await {
                    let context = format!("{permission} {kind} {op:?}: {}", reply.body);
                    if allowed {
                        assert_eq!(reply.codes(), Vec::<String>::new(), "{context}");
                        assert_ne!(reply.body["data"][field], Value::Null, "{context}");
                    } else {
                        assert_eq!(reply.codes(), ["FORBIDDEN"], "{context}");
                        let message = reply.body["errors"][0]["message"].as_str().unwrap();
                        assert!(message.contains(permission.name()), "{context}");
                    }
                }
            }
        }
    }
}

/// Every operation is governed by exactly one permission.
#[test]
fn the_table_names_each_operation_once() {
    let seen: Vec<Op> = Permission::ALL
        .into_iter()
        .flat_map(|p| governed(p).iter().copied())
        .collect();
    // Not only neighbours: an operation listed under two permissions
    // anywhere in the table is caught.
    for op in &seen {
        let times = seen.iter().filter(|other| *other == op).count();
        assert_eq!(times, 1, "{op:?}");
    }
    assert_eq!(seen.len(), 24);
}

#[tokio::test]
async fn permissions_read_as_the_groups_give_them_and_staff_hold_all() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let staff = app.create_user("staff", true, false).await;
    let (_, desk_token) = holder(
        &app,
        "desk",
        set(&[Permission::ManageUsers, Permission::ViewUserDetails]),
    )
    .await;
    let plain = app.create_user("plain", false, false).await;
    let me = "{ me { permissions groups { name permissions } } }";
    let reply = app.gql_as(Some(&desk_token), me, Value::Null).await;
    assert_eq!(
        reply.body["data"]["me"],
        json!({
            "permissions": ["VIEW_USER_DETAILS", "MANAGE_USERS"],
            "groups": [{ "name": "desk's group", "permissions": ["VIEW_USER_DETAILS", "MANAGE_USERS"] }]
        })
    );
    let all = json!([
        "VIEW_USER_DETAILS",
        "MANAGE_USERS",
        "MANAGE_GROUP_MEMBERS",
        "MANAGE_GROUPS",
        "MANAGE_DIVISIONS",
        "VIEW_AUDIT_LOG"
    ]);
    let reply = app
        .gql_as(Some(&app.token_for(&staff)), me, Value::Null)
        .await;
    assert_eq!(reply.body["data"]["me"]["permissions"], all);
    // As a list: staff hold all, others what their groups carry; a plain
    // user reads their own and no one else's.
    let list = "{ users(orderBy: [{field: ID}]) { nodes { username permissions } } }";
    let reply = app
        .gql_as(Some(&app.token_for(&root)), list, Value::Null)
        .await;
    assert_eq!(
        reply.body["data"]["users"]["nodes"],
        json!([
            { "username": "root", "permissions": all },
            { "username": "staff", "permissions": all },
            { "username": "desk", "permissions": ["VIEW_USER_DETAILS", "MANAGE_USERS"] },
            { "username": "plain", "permissions": [] },
        ])
    );
    let reply = app
        .gql_as(Some(&app.token_for(&plain)), list, Value::Null)
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"; 3], "{}", reply.body);
    assert_eq!(
        reply.body["data"]["users"]["nodes"][3],
        json!({ "username": "plain", "permissions": [] })
    );
    // Who holds MANAGE_USERS: active staff and the desk; not once inactive.
    let holders = "{ users(filter: {permission: MANAGE_USERS}, orderBy: [{field: ID}]) { nodes { username } } }";
    let reply = app.gql_as(Some(&desk_token), holders, Value::Null).await;
    assert_eq!(
        reply.body["data"]["users"]["nodes"],
        json!([{ "username": "root" }, { "username": "staff" }, { "username": "desk" }])
    );
    let deactivate = "mutation($id: ID!) { deactivateUser(id: $id) { id } }";
    let reply = app
        .gql_as(
            Some(&app.token_for(&root)),
            deactivate,
            json!({ "id": staff.id.to_string() }),
        )
        .await;
    assert_eq!(reply.codes(), Vec::<String>::new());
    let reply = app.gql_as(Some(&desk_token), holders, Value::Null).await;
    assert_eq!(
        reply.body["data"]["users"]["nodes"],
        json!([{ "username": "root" }, { "username": "desk" }])
    );
}

#[tokio::test]
async fn one_grants_only_permissions_one_holds() {
    let app = spawn_app().await;
    let (_, token) = holder(&app, "grouper", set(&[Permission::ManageGroups])).await;
    let plain = app.create_group("Plain").await;
    let query = "mutation($id: ID!, $p: [Permission!]!) { setGroupPermissions(groupId: $id, permissions: $p) { permissions } }";
    let vars = |p: Value| json!({ "id": plain.id.to_string(), "p": p });
    let reply = app
        .gql_as(Some(&token), query, vars(json!(["MANAGE_USERS"])))
        .await;
    forbidden_naming(&reply, "MANAGE_USERS");
    assert_eq!(
        access::carried_by_all(app.db(), &[plain.id]).await.unwrap(),
        Permissions::NONE
    );
    let reply = app
        .gql_as(Some(&token), query, vars(json!(["MANAGE_GROUPS"])))
        .await;
    assert_eq!(
        reply.body["data"]["setGroupPermissions"]["permissions"],
        json!(["MANAGE_GROUPS"])
    );
    // An unknown group, a malformed id.
    let reply = app
        .gql_as(Some(&token), query, json!({ "id": "999999", "p": [] }))
        .await;
    assert_eq!(reply.codes(), ["NOT_FOUND"]);
    let reply = app
        .gql_as(Some(&token), query, json!({ "id": "x", "p": [] }))
        .await;
    assert_eq!(reply.codes(), ["BAD_USER_INPUT"]);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({ "groupId": ["Not a valid id."] })
    );
}

#[tokio::test]
async fn one_edits_only_groups_whose_permissions_one_holds() {
    let app = spawn_app().await;
    let (_, token) = holder(&app, "grouper", set(&[Permission::ManageGroups])).await;
    let desk = app.create_group("Help desk").await;
    carry(&app, desk.id, set(&[Permission::ManageUsers])).await;
    let id = json!({ "id": desk.id.to_string() });
    for query in [
        "mutation($id: ID!) { updateGroup(id: $id, input: {name: \"Desk\"}) { id } }",
        "mutation($id: ID!) { deleteGroup(id: $id) }",
        "mutation($id: ID!) { setGroupPermissions(groupId: $id, permissions: []) { id } }",
    ] {
        let reply = app.gql_as(Some(&token), query, id.clone()).await;
        forbidden_naming(&reply, "MANAGE_USERS");
    }
    let read = "query($id: ID!) { group(id: $id) { name permissions } }";
    let reply = app.gql_as(Some(&token), read, id).await;
    assert_eq!(
        reply.body["data"]["group"],
        json!({ "name": "Help desk", "permissions": ["MANAGE_USERS"] })
    );
}

/// Adding a member grants the group's permissions: it needs them all, so
/// a member manager cannot climb into a stronger group, nor put anyone
/// there, nor create a user in it.
#[tokio::test]
async fn membership_is_no_route_around_the_rules() {
    let app = spawn_app().await;
    let (manager, token) = holder(
        &app,
        "manager",
        set(&[Permission::ManageGroupMembers, Permission::ManageUsers]),
    )
    .await;
    let admins = app.create_group("Admins").await;
    carry(&app, admins.id, set(&[Permission::ManageGroups])).await;
    let assign = "mutation($u: ID!, $g: ID!) { assignUserToGroup(userId: $u, groupId: $g) { id } }";
    let other = app.create_user("other", false, false).await;
    for user in [&manager, &other] {
        let vars = json!({ "u": user.id.to_string(), "g": admins.id.to_string() });
        let reply = app.gql_as(Some(&token), assign, vars).await;
        forbidden_naming(&reply, "MANAGE_GROUPS");
    }
    let create = "mutation($g: ID!) { createUser(input: {username: \"sneaky\", email: \"sneaky@example.com\", groupIds: [$g]}) { id } }";
    let reply = app
        .gql_as(Some(&token), create, json!({ "g": admins.id.to_string() }))
        .await;
    forbidden_naming(&reply, "MANAGE_GROUPS");
    // Nothing changed.
    let members = "query($id: ID!) { group(id: $id) { memberCount } }";
    let root = app.create_user("root", true, true).await;
    let reply = app
        .gql_as(
            Some(&app.token_for(&root)),
            members,
            json!({ "id": admins.id.to_string() }),
        )
        .await;
    assert_eq!(reply.body["data"]["group"]["memberCount"], 0);
    let users = "{ users(filter: {username: {exact: \"sneaky\"}}) { totalCount } }";
    let reply = app.gql_as(Some(&token), users, Value::Null).await;
    assert_eq!(reply.body["data"]["users"]["totalCount"], 0);
    // A group whose permissions the manager holds is fine, both ways.
    let desk = app.create_group("Desk").await;
    carry(&app, desk.id, set(&[Permission::ManageUsers])).await;
    let vars = json!({ "u": other.id.to_string(), "g": desk.id.to_string() });
    let reply = app.gql_as(Some(&token), assign, vars.clone()).await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    let remove =
        "mutation($u: ID!, $g: ID!) { removeUserFromGroup(userId: $u, groupId: $g) { id } }";
    let reply = app.gql_as(Some(&token), remove, vars).await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
}

/// One manages only users whose permissions one holds (whether they are
/// active or not), staff only as staff, superusers only as a superuser.
#[tokio::test]
async fn one_manages_only_users_whose_permissions_one_holds() {
    let app = spawn_app().await;
    let desk_permissions = set(&[Permission::ManageUsers, Permission::ViewUserDetails]);
    let (_, token) = holder(&app, "desk", desk_permissions).await;
    let stronger_permissions = desk_permissions.union(set(&[Permission::ManageGroups]));
    let (stronger, _) = holder(&app, "stronger", stronger_permissions).await;
    let staff = app.create_user("staff", true, false).await;
    let root = app.create_user("root", true, true).await;
    let cases = [
        (&stronger, "MANAGE_GROUPS"),
        (&staff, "staff"),
        (&root, "superuser"),
    ];
    let queries = [
        "mutation($id: ID!) { updateUser(id: $id, input: {firstName: \"X\"}) { id } }",
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        "mutation($id: ID!) { activateUser(id: $id) { id } }",
        "mutation($id: ID!) { deleteUser(id: $id) }",
        "mutation($id: ID!) { setUserPassword(id: $id, password: \"a long fresh passphrase\") }",
    ];
    for (target, missing) in cases {
        for query in queries {
            let reply = app
                .gql_as(Some(&token), query, json!({ "id": target.id.to_string() }))
                .await;
            forbidden_naming(&reply, missing);
        }
    }
    // An inactive user is managed by what their groups carry: activating
    // them would hand those over.
    let deactivate = "mutation($id: ID!) { deactivateUser(id: $id) { id } }";
    let vars = json!({ "id": stronger.id.to_string() });
    let root_token = app.token_for(&root);
    let reply = app
        .gql_as(Some(&root_token), deactivate, vars.clone())
        .await;
    assert_eq!(reply.codes(), Vec::<String>::new());
    let activate = "mutation($id: ID!) { activateUser(id: $id) { id } }";
    let reply = app.gql_as(Some(&token), activate, vars).await;
    forbidden_naming(&reply, "MANAGE_GROUPS");
    let stored = user::Entity::find_by_id(stronger.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert!(!stored.is_active);
    // Holders of MANAGE_USERS set no flags and may not create staff.
    let create = "mutation { createUser(input: {username: \"boss\", email: \"boss@example.com\", isStaff: true}) { id } }";
    let reply = app.gql_as(Some(&token), create, Value::Null).await;
    forbidden_naming(&reply, "superuser");
    // Who cannot read flags and permissions is not told them by a refusal:
    // the same message for a stronger user, staff and a superuser.
    let (_, blind) = holder(&app, "blind", set(&[Permission::ManageUsers])).await;
    let set_password = queries[4];
    let mut messages = Vec::new();
    for (target, _) in cases {
        let reply = app
            .gql_as(
                Some(&blind),
                set_password,
                json!({ "id": target.id.to_string() }),
            )
            .await;
        forbidden_naming(&reply, "VIEW_USER_DETAILS");
        messages.push(reply.body["errors"][0]["message"].clone());
    }
    assert!(messages.iter().all(|m| *m == messages[0]), "{messages:?}");
}

/// A permission name this build does not know (a later version wrote it)
/// puts its group beyond everyone but staff, and survives a change of the
/// known ones.
#[tokio::test]
async fn a_permission_this_build_does_not_know_fails_closed() {
    use sea_orm::{ActiveModelTrait, Set};
    let app = spawn_app().await;
    let (_, token) = holder(&app, "almighty", Permissions::all().known()).await;
    let future = app.create_group("Future").await;
    entity::group_permission::ActiveModel {
        group_id: Set(future.id),
        permission: Set("MANAGE_WIDGETS".to_owned()),
    }
    .insert(app.db())
    .await
    .unwrap();
    app.forget_reads();
    let someone = app.create_user("someone", false, false).await;
    let id = json!({ "id": future.id.to_string(), "u": someone.id.to_string() });
    for query in [
        "mutation($id: ID!) { updateGroup(id: $id, input: {name: \"Past\"}) { id } }",
        "mutation($id: ID!, $u: ID!) { assignUserToGroup(userId: $u, groupId: $id) { id } }",
        "mutation($id: ID!) { setGroupPermissions(groupId: $id, permissions: []) { id } }",
    ] {
        let reply = app.gql_as(Some(&token), query, id.clone()).await;
        forbidden_naming(&reply, "a permission this version does not know");
    }
    let staff = app.create_user("staff", true, false).await;
    let query = "mutation($id: ID!) { setGroupPermissions(groupId: $id, permissions: [MANAGE_USERS]) { permissions } }";
    let reply = app
        .gql_as(Some(&app.token_for(&staff)), query, id.clone())
        .await;
    assert_eq!(
        reply.body["data"]["setGroupPermissions"]["permissions"],
        json!(["MANAGE_USERS"])
    );
    let mut carried = access::carried_by_all(app.db(), &[future.id])
        .await
        .unwrap();
    assert_eq!(carried.known(), set(&[Permission::ManageUsers]));
    carried.insert_name("MANAGE_WIDGETS");
    assert_eq!(
        access::carried_by_all(app.db(), &[future.id])
            .await
            .unwrap(),
        carried
    );
}

/// With no staff, the last active user who holds and may manage a
/// permission cannot lose it by any route; once another can, they may.
#[tokio::test]
async fn no_change_leaves_a_permission_with_nobody_to_manage_it() {
    let app = spawn_app().await;
    let managing = set(&[
        Permission::ManageGroups,
        Permission::ManageGroupMembers,
        Permission::ViewUserDetails,
    ]);
    let (alone, token) = holder(&app, "alone", managing).await;
    let groups = "{ me { groups { id } } }";
    let reply = app.gql_as(Some(&token), groups, Value::Null).await;
    let group_id = reply.body["data"]["me"]["groups"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let attempts = [
        (
            "mutation($g: ID!) { setGroupPermissions(groupId: $g, permissions: [MANAGE_GROUPS, MANAGE_GROUP_MEMBERS]) { id } }",
            "VIEW_USER_DETAILS",
        ),
        (
            "mutation($g: ID!, $u: ID!) { removeUserFromGroup(userId: $u, groupId: $g) { id } }",
            "MANAGE_GROUPS",
        ),
        ("mutation($g: ID!) { deleteGroup(id: $g) }", "MANAGE_GROUPS"),
    ];
    let vars = json!({ "g": group_id, "u": alone.id.to_string() });
    for (query, lost) in attempts {
        let reply = app.gql_as(Some(&token), query, vars.clone()).await;
        forbidden_naming(&reply, lost);
        assert!(
            reply.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("No active user would be left"),
            "{}",
            reply.body
        );
    }
    let me = "{ me { permissions } }";
    let reply = app.gql_as(Some(&token), me, Value::Null).await;
    assert_eq!(
        reply.body["data"]["me"]["permissions"],
        json!(["VIEW_USER_DETAILS", "MANAGE_GROUP_MEMBERS", "MANAGE_GROUPS"])
    );
    // A second manager: now the first may step down.
    holder(&app, "second", managing).await;
    let (query, _) = attempts[1];
    let reply = app.gql_as(Some(&token), query, vars).await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    let reply = app.gql_as(Some(&token), me, Value::Null).await;
    assert_eq!(reply.body["data"]["me"]["permissions"], json!([]));
}

/// A permission is gone with the next request once it is taken away, by
/// any route, with the read caches on.
#[tokio::test]
async fn permissions_are_gone_at_once_when_taken_away() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let root_token = app.token_for(&root);
    let other = app.create_user("other", false, false).await;
    let read = "query($id: ID!) { user(id: $id) { email } }";
    let read_vars = json!({ "id": other.id.to_string() });
    let views = set(&[Permission::ViewUserDetails]);
    let routes = [
        "mutation($g: ID!) { setGroupPermissions(groupId: $g, permissions: []) { id } }",
        "mutation($g: ID!, $u: ID!) { removeUserFromGroup(userId: $u, groupId: $g) { id } }",
        "mutation($g: ID!) { deleteGroup(id: $g) }",
        "mutation($u: ID!) { deactivateUser(id: $u) { id } }",
    ];
    for (i, route) in routes.into_iter().enumerate() {
        let (viewer, token) = holder(&app, &format!("viewer{i}"), views).await;
        app.settle().await;
        // Read twice: the second comes from the cache.
        for _ in 0..2 {
            let reply = app.gql_as(Some(&token), read, read_vars.clone()).await;
            assert_eq!(reply.body["data"]["user"]["email"], other.email);
        }
        let group = access::load_account(app.db(), viewer.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(group.granted, views);
        let group_id = membership_of(&app, viewer.id).await;
        let vars = json!({ "g": group_id.to_string(), "u": viewer.id.to_string() });
        let reply = app.gql_as(Some(&root_token), route, vars).await;
        assert_eq!(
            reply.codes(),
            Vec::<String>::new(),
            "{route}: {}",
            reply.body
        );
        let reply = app.gql_as(Some(&token), read, read_vars.clone()).await;
        let expected = if route.contains("deactivateUser") {
            "UNAUTHENTICATED"
        } else {
            "FORBIDDEN"
        };
        assert_eq!(reply.codes(), [expected], "{route}: {}", reply.body);
    }
}

async fn membership_of(app: &TestApp, user_id: i64) -> i64 {
    use sea_orm::{ColumnTrait, QueryFilter};
    entity::membership::Entity::find()
        .filter(entity::membership::Column::UserId.eq(user_id))
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
        .group_id
}

/// The rules are the services': asked without HTTP, with an `Access`
/// loaded as a request's is.
#[tokio::test]
async fn the_services_decide_without_http() {
    let app = spawn_app().await;
    let (grouper, _) = holder(&app, "grouper", set(&[Permission::ManageGroups])).await;
    let account = access::load_account(app.db(), grouper.id)
        .await
        .unwrap()
        .unwrap();
    let viewer = Access::of(account);
    assert_eq!(viewer.permissions(), set(&[Permission::ManageGroups]));
    let group = roster::services::catalog::create_group(app.db(), &viewer, "Made here")
        .await
        .unwrap();
    let refused = roster::services::catalog::set_group_permissions(
        app.db(),
        &viewer,
        group.id,
        set(&[Permission::ManageDivisions]),
    )
    .await;
    assert!(
        matches!(&refused, Err(roster::error::Error::Forbidden(m)) if m.contains("MANAGE_DIVISIONS")),
        "{refused:?}"
    );
    let refused = roster::services::catalog::create_division(
        app.db(),
        &viewer,
        "Nope",
        entity::division::DivisionType::Main,
        None,
    )
    .await;
    assert!(matches!(refused, Err(roster::error::Error::Forbidden(_))));
    let anonymous = Access::anonymous();
    let refused = roster::services::catalog::create_group(app.db(), &anonymous, "Nope").await;
    assert!(matches!(
        refused,
        Err(roster::error::Error::Unauthenticated(_))
    ));
}

/// Permissions cost no statement per user or group: the viewer's come with
/// the token check, a page's in one batch per level, whatever its size.
#[tokio::test]
async fn permissions_cost_the_same_few_statements_for_any_page_size() {
    let (app, counter) = crate::helpers::spawn_counted_app(|config| {
        config.cache = std::time::Duration::ZERO;
    })
    .await;
    let (_, token) = holder(&app, "viewer", set(&[Permission::ViewUserDetails])).await;
    let desk = app.create_group("Desk").await;
    carry(&app, desk.id, set(&[Permission::ManageUsers])).await;
    for i in 0..110 {
        let user = app
            .create_user(&format!("bulk{i}"), i % 10 == 0, false)
            .await;
        if i % 3 == 0 {
            app.add_member(user.id, desk.id).await;
        }
    }
    let count = |query: &'static str, variables: Value| {
        let (app, counter, token) = (&app, &counter, &token);
        async move {
            counter.store(0, std::sync::atomic::Ordering::SeqCst);
            let reply = app.gql_as(Some(token), query, variables).await;
            assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
            (reply, counter.load(std::sync::atomic::Ordering::SeqCst))
        }
    };
    // The token check loads the viewer and their permissions together.
    let (reply, statements) = count("{ me { permissions } }", Value::Null).await;
    assert_eq!(
        reply.body["data"]["me"]["permissions"],
        json!(["VIEW_USER_DETAILS"])
    );
    assert_eq!(statements, 1);
    let query = "query($n: Int) { users(first: $n) { nodes { username permissions groups { name permissions } } } }";
    let mut counts = Vec::new();
    for n in [5, 100] {
        let (reply, statements) = count(query, json!({ "n": n })).await;
        let nodes = reply.body["data"]["users"]["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), n);
        counts.push(statements);
    }
    // token check, page, user permissions, groups, group permissions
    assert_eq!(counts, [5, 5]);
}
