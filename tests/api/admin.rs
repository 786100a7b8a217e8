//! The admin mutations and every rule of "Authorization" and "Divisions and
//! groups" (issue: write API).
#![allow(clippy::unwrap_used)]

use entity::{membership, user};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Reply, TestApp, spawn_app};

const UPDATE: &str = "mutation($id: ID!, $input: UpdateUserInput!) { updateUser(id: $id, input: $input) { id username email firstName lastName phoneNumber isStaff isSuperuser division { name } } }";
const DELETE: &str = "mutation($id: ID!) { deleteUser(id: $id) }";
const CREATE: &str = "mutation($input: CreateUserInput!) { createUser(input: $input) { id username email firstName lastName phoneNumber isActive isStaff isSuperuser division { name } groups { name } } }";

struct Cast {
    app: TestApp,
    regular: user::Model,
    other: user::Model,
    staff: user::Model,
    root: user::Model,
}

async fn cast() -> Cast {
    let app = spawn_app().await;
    let regular = app.create_user("regular", false, false).await;
    let other = app.create_user("other", false, false).await;
    let staff = app.create_user("staff", true, false).await;
    let root = app.create_user("root", true, true).await;
    Cast {
        app,
        regular,
        other,
        staff,
        root,
    }
}

impl Cast {
    async fn as_user(&self, who: &user::Model, query: &str, variables: Value) -> Reply {
        self.app
            .gql_as(Some(&self.app.token_for(who)), query, variables)
            .await
    }

    async fn update(&self, who: &user::Model, target: &user::Model, input: Value) -> Reply {
        self.as_user(
            who,
            UPDATE,
            json!({ "id": target.id.to_string(), "input": input }),
        )
        .await
    }

    async fn stored(&self, id: i64) -> Option<user::Model> {
        user::Entity::find_by_id(id)
            .one(self.app.db())
            .await
            .unwrap()
    }
}

fn fields(reply: &Reply) -> Value {
    reply.body["errors"][0]["extensions"]["fields"].clone()
}

#[tokio::test]
async fn cannot_update_user_anonymously() {
    let c = cast().await;
    let reply = c
        .app
        .gql(
            UPDATE,
            json!({ "id": c.regular.id.to_string(), "input": { "firstName": "X" } }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
    assert_eq!(c.stored(c.regular.id).await.unwrap().first_name, "");
}

#[tokio::test]
async fn regular_user_cannot_update_other_users_info() {
    let c = cast().await;
    let reply = c
        .update(&c.regular, &c.other, json!({ "firstName": "Hacked" }))
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    assert_eq!(c.stored(c.other.id).await.unwrap().first_name, "");
}

#[tokio::test]
async fn regular_user_can_update_own_info() {
    let c = cast().await;
    let input = json!({ "username": "renamed", "email": "new@example.com", "firstName": "Reg", "lastName": "Ular", "phoneNumber": "+1 555 0100" });
    let reply = c.update(&c.regular, &c.regular, input).await;
    assert_eq!(
        reply.body["data"]["updateUser"],
        json!({ "id": c.regular.id.to_string(), "username": "renamed", "email": "new@example.com", "firstName": "Reg", "lastName": "Ular",
                "phoneNumber": "+1 555 0100", "isStaff": false, "isSuperuser": false, "division": null })
    );
    let stored = c.stored(c.regular.id).await.unwrap();
    assert_eq!(
        (
            stored.username_folded.as_str(),
            stored.email_folded.as_str()
        ),
        ("renamed", "new@example.com")
    );
}

#[tokio::test]
async fn regular_user_can_partially_update_own_info() {
    let c = cast().await;
    let reply = c
        .update(&c.regular, &c.regular, json!({ "lastName": "Only" }))
        .await;
    assert_eq!(reply.body["data"]["updateUser"]["lastName"], json!("Only"));
    assert_eq!(
        reply.body["data"]["updateUser"]["username"],
        json!("regular")
    );
    assert_eq!(
        reply.body["data"]["updateUser"]["email"],
        json!("regular@example.com")
    );
}

#[tokio::test]
async fn regular_user_cannot_change_privileged_fields_of_their_own() {
    let c = cast().await;
    let division = c.app.create_division("Engineering", None, true).await;
    for input in [
        json!({ "isStaff": true }),
        json!({ "isSuperuser": true }),
        json!({ "divisionId": division.id.to_string() }),
    ] {
        let reply = c.update(&c.regular, &c.regular, input.clone()).await;
        assert_eq!(reply.codes(), vec!["FORBIDDEN"], "{input}");
    }
    let stored = c.stored(c.regular.id).await.unwrap();
    assert!(!stored.is_staff && !stored.is_superuser && stored.division_id.is_none());
}

#[tokio::test]
async fn admin_user_can_update_regular_users_info() {
    let c = cast().await;
    let division = c.app.create_division("Engineering", None, true).await;
    let input = json!({ "firstName": "Given", "lastName": "Name", "email": "given@example.com", "divisionId": division.id.to_string() });
    let reply = c.update(&c.staff, &c.regular, input).await;
    assert_eq!(
        reply.body["data"]["updateUser"]["firstName"],
        json!("Given")
    );
    assert_eq!(
        reply.body["data"]["updateUser"]["division"],
        json!({ "name": "Engineering" })
    );
}

#[tokio::test]
async fn admin_user_can_partially_update_own_info() {
    let c = cast().await;
    let reply = c
        .update(&c.staff, &c.staff, json!({ "firstName": "Staffer" }))
        .await;
    assert_eq!(
        reply.body["data"]["updateUser"]["firstName"],
        json!("Staffer")
    );
    assert_eq!(reply.body["data"]["updateUser"]["isStaff"], json!(true));
}

#[tokio::test]
async fn admin_user_can_partially_update_regular_users_info() {
    let c = cast().await;
    let reply = c
        .update(&c.staff, &c.regular, json!({ "phoneNumber": "555-0199" }))
        .await;
    assert_eq!(
        reply.body["data"]["updateUser"]["phoneNumber"],
        json!("555-0199")
    );
    assert_eq!(reply.body["data"]["updateUser"]["firstName"], json!(""));
}

#[tokio::test]
async fn explicit_null_clears_nullable_fields_and_is_refused_for_the_others() {
    let c = cast().await;
    let division = c.app.create_division("Engineering", None, true).await;
    c.update(
        &c.staff,
        &c.regular,
        json!({ "phoneNumber": "555-0199", "divisionId": division.id.to_string() }),
    )
    .await;
    // Absent: unchanged.
    let reply = c
        .update(&c.staff, &c.regular, json!({ "firstName": "A" }))
        .await;
    assert_eq!(
        reply.body["data"]["updateUser"]["phoneNumber"],
        json!("555-0199")
    );
    // Null: cleared.
    let reply = c
        .update(
            &c.staff,
            &c.regular,
            json!({ "phoneNumber": null, "divisionId": null }),
        )
        .await;
    assert_eq!(reply.body["data"]["updateUser"]["phoneNumber"], Value::Null);
    assert_eq!(reply.body["data"]["updateUser"]["division"], Value::Null);
    // Null for a required field: BAD_USER_INPUT, every one reported, nothing changed.
    let reply = c
        .update(
            &c.root,
            &c.regular,
            json!({ "username": null, "firstName": null, "isStaff": null, "lastName": "Changed" }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(
        fields(&reply),
        json!({ "username": ["This field may not be null."], "firstName": ["This field may not be null."], "isStaff": ["This field may not be null."] })
    );
    assert_eq!(c.stored(c.regular.id).await.unwrap().last_name, "");
}

#[tokio::test]
async fn update_reports_invalid_values_and_conflicts_on_their_fields() {
    let c = cast().await;
    let reply = c
        .update(
            &c.regular,
            &c.regular,
            json!({ "username": "bad name!", "email": "nope", "phoneNumber": "call me" }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(
        fields(&reply),
        json!({
            "username": ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."],
            "email": ["Enter a valid email address."],
            "phoneNumber": ["Enter a valid phone number."]
        })
    );
    let reply = c
        .update(
            &c.regular,
            &c.regular,
            json!({ "username": "OTHER", "email": "Other@Example.com" }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["CONFLICT"]);
    assert_eq!(
        fields(&reply),
        json!({ "username": ["A user with that username already exists."], "email": ["A user with that email already exists."] })
    );
    // Their own values in another case are not a clash.
    let reply = c
        .update(&c.regular, &c.regular, json!({ "username": "Regular" }))
        .await;
    assert_eq!(
        reply.body["data"]["updateUser"]["username"],
        json!("Regular")
    );
}

#[tokio::test]
async fn staff_cannot_escalate_or_touch_superusers() {
    let c = cast().await;
    for (target, input) in [
        (&c.regular, json!({ "isStaff": true })),
        (&c.regular, json!({ "isSuperuser": true })),
        (&c.staff, json!({ "isSuperuser": true })),
        (&c.root, json!({ "firstName": "Owned" })),
    ] {
        let reply = c.update(&c.staff, target, input.clone()).await;
        assert_eq!(reply.codes(), vec!["FORBIDDEN"], "{input}");
    }
    for mutation in ["deactivateUser", "deleteUser"] {
        let reply = c
            .as_user(
                &c.staff,
                &format!(
                    "mutation($id: ID!) {{ {mutation}(id: $id) {} }}",
                    if mutation == "deleteUser" {
                        ""
                    } else {
                        "{ id }"
                    }
                ),
                json!({ "id": c.root.id.to_string() }),
            )
            .await;
        assert_eq!(reply.codes(), vec!["FORBIDDEN"], "{mutation}");
    }
    let root = c.stored(c.root.id).await.unwrap();
    assert!(root.is_active && root.first_name.is_empty());
    let staff = c.stored(c.staff.id).await.unwrap();
    assert!(!staff.is_superuser);
    // A superuser may.
    let reply = c
        .update(&c.root, &c.regular, json!({ "isStaff": true }))
        .await;
    assert_eq!(reply.body["data"]["updateUser"]["isStaff"], json!(true));
}

#[tokio::test]
async fn the_last_active_superuser_cannot_be_demoted_deactivated_or_deleted() {
    let c = cast().await;
    let other_root = c.app.create_user("root2", true, true).await;
    // With two, one may go.
    let reply = c
        .update(&c.root, &other_root, json!({ "isSuperuser": false }))
        .await;
    assert_eq!(
        reply.body["data"]["updateUser"]["isSuperuser"],
        json!(false)
    );
    // Now root is the last: demoting itself is refused.
    let reply = c
        .update(&c.root, &c.root, json!({ "isSuperuser": false }))
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    assert!(c.stored(c.root.id).await.unwrap().is_superuser);
}

#[tokio::test]
async fn concurrent_attempts_never_remove_the_last_superusers() {
    let c = cast().await;
    let mut roots = vec![c.root.clone()];
    for i in 0..4 {
        roots.push(c.app.create_user(&format!("root{i}"), true, true).await);
    }
    // Every superuser tries to deactivate every other at once.
    let mut attempts = Vec::new();
    for actor in &roots {
        for target in roots.iter().filter(|t| t.id != actor.id) {
            let variables = json!({ "id": target.id.to_string() });
            attempts.push((
                Some(c.app.token_for(actor)),
                "mutation($id: ID!) { deactivateUser(id: $id) { id } }".to_owned(),
                variables,
            ));
        }
    }
    let replies = c.app.gql_concurrently(attempts).await;
    for reply in &replies {
        let codes = reply.codes();
        assert!(
            codes.is_empty() || codes == ["FORBIDDEN"] || codes == ["UNAUTHENTICATED"],
            "{}",
            reply.body
        );
    }
    let active = user::Entity::find()
        .all(c.app.db())
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.is_superuser && u.is_active)
        .count();
    assert_eq!(active, 1, "exactly one active superuser remains");
}

#[tokio::test]
async fn cannot_delete_user_anonymously() {
    let c = cast().await;
    let reply = c
        .app
        .gql(DELETE, json!({ "id": c.regular.id.to_string() }))
        .await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
    assert!(c.stored(c.regular.id).await.is_some());
}

#[tokio::test]
async fn regular_user_cannot_delete_other_user() {
    let c = cast().await;
    let reply = c
        .as_user(&c.regular, DELETE, json!({ "id": c.other.id.to_string() }))
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    assert!(c.stored(c.other.id).await.is_some());
}

#[tokio::test]
async fn user_cannot_delete_self() {
    let c = cast().await;
    let reply = c
        .as_user(
            &c.regular,
            DELETE,
            json!({ "id": c.regular.id.to_string() }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    assert!(c.stored(c.regular.id).await.is_some());
}

#[tokio::test]
async fn admin_user_can_delete_regular_user() {
    let c = cast().await;
    let group = c.app.create_group("Manager").await;
    c.app.add_member(c.regular.id, group.id).await;
    let reply = c
        .as_user(&c.staff, DELETE, json!({ "id": c.regular.id.to_string() }))
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "deleteUser": c.regular.id.to_string() } })
    );
    assert!(c.stored(c.regular.id).await.is_none());
    assert_eq!(
        membership::Entity::find().count(c.app.db()).await.unwrap(),
        0
    );
    let again = c
        .as_user(&c.staff, DELETE, json!({ "id": c.regular.id.to_string() }))
        .await;
    assert_eq!(again.codes(), vec!["NOT_FOUND"]);
}

#[tokio::test]
async fn admin_user_cannot_delete_self() {
    let c = cast().await;
    let reply = c
        .as_user(&c.staff, DELETE, json!({ "id": c.staff.id.to_string() }))
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    assert!(c.stored(c.staff.id).await.is_some());
}

#[tokio::test]
async fn api_response_to_user_creation_matches_post_data() {
    let c = cast().await;
    let division = c.app.create_division("Engineering", None, true).await;
    let managers = c.app.create_group("Manager").await;
    let input = json!({
        "username": "newbie", "email": "newbie@example.com", "password": PASSWORD, "firstName": "New", "lastName": "Bie",
        "phoneNumber": "+44 20 7946 0000", "divisionId": division.id.to_string(), "groupIds": [managers.id.to_string()]
    });
    let reply = c.as_user(&c.staff, CREATE, json!({ "input": input })).await;
    let created = &reply.body["data"]["createUser"];
    assert_eq!(
        created,
        &json!({
            "id": created["id"], "username": "newbie", "email": "newbie@example.com", "firstName": "New", "lastName": "Bie",
            "phoneNumber": "+44 20 7946 0000", "isActive": true, "isStaff": false, "isSuperuser": false,
            "division": { "name": "Engineering" }, "groups": [{ "name": "Manager" }]
        })
    );
    let login = c.app.gql("mutation { login(input: {username: \"newbie\", password: \"Vq7#pL2m!xZ-roster\"}) { tokenType } }", Value::Null).await;
    assert_eq!(login.body["data"]["login"]["tokenType"], json!("Bearer"));
}

#[tokio::test]
async fn create_user_without_password_cannot_log_in() {
    let c = cast().await;
    let reply = c
        .as_user(
            &c.staff,
            CREATE,
            json!({ "input": { "username": "nopass", "email": "nopass@example.com" } }),
        )
        .await;
    assert_eq!(
        reply.body["data"]["createUser"]["username"],
        json!("nopass")
    );
    let login = c
        .app
        .gql(
            "mutation { login(input: {username: \"nopass\", password: \"\"}) { tokenType } }",
            Value::Null,
        )
        .await;
    assert_eq!(login.codes(), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn a_failing_create_user_leaves_no_partial_rows() {
    let c = cast().await;
    let inactive = c.app.create_division("Legacy", None, false).await;
    let managers = c.app.create_group("Manager").await;
    let before = user::Entity::find().count(c.app.db()).await.unwrap();
    let input = json!({
        "username": "", "email": "x", "password": "123", "divisionId": inactive.id.to_string(),
        "groupIds": [managers.id.to_string(), "999999"], "phoneNumber": "nope"
    });
    let reply = c.as_user(&c.staff, CREATE, json!({ "input": input })).await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(
        fields(&reply),
        json!({
            "username": ["This field may not be blank."],
            "email": ["Enter a valid email address."],
            "phoneNumber": ["Enter a valid phone number."],
            "password": ["This password is too short. It must contain at least 8 characters.", "This password is too common.", "This password is entirely numeric."],
            "divisionId": ["Deactivated divisions cannot be assigned to users."],
            "groupIds": ["No group with id 999999."]
        })
    );
    let reply = c.as_user(&c.staff, CREATE, json!({ "input": { "username": "x1", "email": "x1@example.com", "divisionId": "999999" } })).await;
    assert_eq!(
        fields(&reply),
        json!({ "divisionId": ["No division with that id."] })
    );
    // A clash found by the database, after the user row was written, rolls everything back.
    let reply = c.as_user(&c.staff, CREATE, json!({ "input": { "username": "REGULAR", "email": "fresh@example.com", "groupIds": [managers.id.to_string()] } })).await;
    assert_eq!(reply.codes(), vec!["CONFLICT"]);
    assert_eq!(
        user::Entity::find().count(c.app.db()).await.unwrap(),
        before
    );
    assert_eq!(
        membership::Entity::find().count(c.app.db()).await.unwrap(),
        0
    );
}

#[tokio::test]
async fn only_superusers_create_staff_and_regular_users_create_nobody() {
    let c = cast().await;
    let input =
        json!({ "input": { "username": "boss", "email": "boss@example.com", "isStaff": true } });
    assert_eq!(
        c.as_user(&c.staff, CREATE, input.clone()).await.codes(),
        vec!["FORBIDDEN"]
    );
    assert_eq!(
        c.as_user(
            &c.regular,
            CREATE,
            json!({ "input": { "username": "x", "email": "x@example.com" } })
        )
        .await
        .codes(),
        vec!["FORBIDDEN"]
    );
    assert_eq!(
        c.as_user(&c.root, CREATE, input).await.body["data"]["createUser"]["isStaff"],
        json!(true)
    );
}

#[tokio::test]
async fn password_not_in_update_user_api_response() {
    let c = cast().await;
    let reply = c.as_user(&c.regular, "mutation($id: ID!) { updateUser(id: $id, input: {firstName: \"Z\"}) { id username email firstName lastName phoneNumber isActive isStaff isSuperuser lastLogin dateJoined } }", json!({ "id": c.regular.id.to_string() })).await;
    let text = reply.body.to_string();
    assert!(reply.body["data"]["updateUser"]["firstName"] == json!("Z"));
    assert!(
        !text.contains("argon2")
            && !text.contains(PASSWORD)
            && !text.to_lowercase().contains("password"),
        "{text}"
    );
}

#[tokio::test]
async fn password_not_in_delete_user_api_response() {
    let c = cast().await;
    let reply = c
        .as_user(&c.staff, DELETE, json!({ "id": c.regular.id.to_string() }))
        .await;
    let text = reply.body.to_string();
    assert_eq!(
        reply.body,
        json!({ "data": { "deleteUser": c.regular.id.to_string() } })
    );
    assert!(!text.contains("argon2") && !text.contains(PASSWORD));
}

#[tokio::test]
async fn deactivation_revokes_tokens_at_once_and_both_are_idempotent() {
    let c = cast().await;
    let token = c.app.token_for(&c.regular);
    let deactivate = "mutation($id: ID!) { deactivateUser(id: $id) { isActive } }";
    let activate = "mutation($id: ID!) { activateUser(id: $id) { isActive } }";
    let id = json!({ "id": c.regular.id.to_string() });
    // Used first, so that the server has its user cached.
    let me = c
        .app
        .gql_as(Some(&token), "{ me { id } }", Value::Null)
        .await;
    assert_eq!(me.codes(), Vec::<String>::new());
    for _ in 0..2 {
        let reply = c.as_user(&c.staff, deactivate, id.clone()).await;
        assert_eq!(
            reply.body,
            json!({ "data": { "deactivateUser": { "isActive": false } } })
        );
    }
    let me = c
        .app
        .gql_as(Some(&token), "{ me { id } }", Value::Null)
        .await;
    assert_eq!(me.codes(), vec!["UNAUTHENTICATED"]);
    for _ in 0..2 {
        let reply = c.as_user(&c.staff, activate, id.clone()).await;
        assert_eq!(
            reply.body,
            json!({ "data": { "activateUser": { "isActive": true } } })
        );
    }
    // The old token stays revoked; a fresh login works.
    assert_eq!(
        c.app
            .gql_as(Some(&token), "{ me { id } }", Value::Null)
            .await
            .codes(),
        vec!["UNAUTHENTICATED"]
    );
    let reply = c
        .as_user(
            &c.staff,
            deactivate,
            json!({ "id": c.staff.id.to_string() }),
        )
        .await;
    assert_eq!(
        reply.codes(),
        vec!["FORBIDDEN"],
        "nobody deactivates themself"
    );
    // (The regular user's token version moved on with the deactivation.)
    let regular = c.stored(c.regular.id).await.unwrap();
    assert_eq!(
        c.as_user(
            &regular,
            deactivate,
            json!({ "id": c.other.id.to_string() })
        )
        .await
        .codes(),
        vec!["FORBIDDEN"]
    );
    assert_eq!(
        c.as_user(&c.staff, deactivate, json!({ "id": "999999" }))
            .await
            .codes(),
        vec!["NOT_FOUND"]
    );
}

#[tokio::test]
async fn inactive_divisions_block_activation_and_assignment() {
    let c = cast().await;
    let division = c.app.create_division("Engineering", None, true).await;
    let division_id = division.id.to_string();
    c.update(&c.staff, &c.regular, json!({ "divisionId": division_id }))
        .await;
    c.as_user(
        &c.staff,
        "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
        json!({ "id": c.regular.id.to_string() }),
    )
    .await;
    let reply = c
        .as_user(
            &c.staff,
            "mutation($id: ID!) { deactivateDivision(id: $id) { isActive } }",
            json!({ "id": division_id }),
        )
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "deactivateDivision": { "isActive": false } } })
    );
    // Its users stay as they are ...
    assert_eq!(
        c.stored(c.regular.id).await.unwrap().division_id,
        Some(division.id)
    );
    // ... but cannot be activated,
    let reply = c
        .as_user(
            &c.staff,
            "mutation($id: ID!) { activateUser(id: $id) { id } }",
            json!({ "id": c.regular.id.to_string() }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["DIVISION_INACTIVE"]);
    assert!(!c.stored(c.regular.id).await.unwrap().is_active);
    // and nobody can be given the division.
    let reply = c
        .update(&c.staff, &c.other, json!({ "divisionId": division_id }))
        .await;
    assert_eq!(
        fields(&reply),
        json!({ "divisionId": ["Deactivated divisions cannot be assigned to users."] })
    );
    let reply = c
        .update(&c.staff, &c.other, json!({ "divisionId": "999999" }))
        .await;
    assert_eq!(
        fields(&reply),
        json!({ "divisionId": ["No division with that id."] })
    );
    // Active again: everything works.
    for _ in 0..2 {
        let reply = c
            .as_user(
                &c.staff,
                "mutation($id: ID!) { activateDivision(id: $id) { isActive } }",
                json!({ "id": division_id }),
            )
            .await;
        assert_eq!(
            reply.body,
            json!({ "data": { "activateDivision": { "isActive": true } } })
        );
    }
    let reply = c
        .as_user(
            &c.staff,
            "mutation($id: ID!) { activateUser(id: $id) { isActive } }",
            json!({ "id": c.regular.id.to_string() }),
        )
        .await;
    assert_eq!(reply.body["data"]["activateUser"]["isActive"], json!(true));
}

#[tokio::test]
async fn division_rules() {
    let c = cast().await;
    let create = "mutation($input: CreateDivisionInput!) { createDivision(input: $input) { id name divisionType isActive parent { name } } }";
    let main = c
        .as_user(
            &c.staff,
            create,
            json!({ "input": { "name": "Engineering", "divisionType": "MAIN" } }),
        )
        .await;
    let main_id = main.body["data"]["createDivision"]["id"].clone();
    assert_eq!(main.body["data"]["createDivision"]["parent"], Value::Null);
    let sub = c
        .as_user(
            &c.staff,
            create,
            json!({ "input": { "name": "Platform", "divisionType": "SUB", "parentId": main_id } }),
        )
        .await;
    let sub_id = sub.body["data"]["createDivision"]["id"].clone();
    assert_eq!(
        sub.body["data"]["createDivision"]["parent"],
        json!({ "name": "Engineering" })
    );
    for (input, message) in [
        (
            json!({ "name": "Orphan", "divisionType": "SUB" }),
            "A SUB division needs a MAIN parent.",
        ),
        (
            json!({ "name": "Nested", "divisionType": "MAIN", "parentId": main_id }),
            "A MAIN division has no parent.",
        ),
        (
            json!({ "name": "Deep", "divisionType": "SUB", "parentId": sub_id }),
            "The parent must be a MAIN division.",
        ),
        (
            json!({ "name": "Lost", "divisionType": "SUB", "parentId": "999999" }),
            "No division with that id.",
        ),
    ] {
        let reply = c.as_user(&c.staff, create, json!({ "input": input })).await;
        assert_eq!(fields(&reply), json!({ "parentId": [message] }), "{input}");
    }
    let reply = c
        .as_user(
            &c.staff,
            create,
            json!({ "input": { "name": "ENGINEERING", "divisionType": "MAIN" } }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["CONFLICT"]);
    assert_eq!(
        fields(&reply),
        json!({ "name": ["A division with that name already exists."] })
    );
    let update = "mutation($id: ID!, $input: UpdateDivisionInput!) { updateDivision(id: $id, input: $input) { name parent { name } } }";
    let reply = c
        .as_user(
            &c.staff,
            update,
            json!({ "id": sub_id, "input": { "parentId": null } }),
        )
        .await;
    assert_eq!(
        fields(&reply),
        json!({ "parentId": ["A SUB division needs a MAIN parent."] })
    );
    let reply = c
        .as_user(
            &c.staff,
            update,
            json!({ "id": main_id, "input": { "parentId": sub_id } }),
        )
        .await;
    assert_eq!(
        fields(&reply),
        json!({ "parentId": ["A MAIN division has no parent."] }),
        "no cycles"
    );
    let reply = c
        .as_user(
            &c.staff,
            update,
            json!({ "id": sub_id, "input": { "name": "Platform Team" } }),
        )
        .await;
    assert_eq!(
        reply.body["data"]["updateDivision"],
        json!({ "name": "Platform Team", "parent": { "name": "Engineering" } })
    );
    assert_eq!(
        c.as_user(
            &c.regular,
            create,
            json!({ "input": { "name": "Mine", "divisionType": "MAIN" } })
        )
        .await
        .codes(),
        vec!["FORBIDDEN"]
    );
    assert_eq!(
        c.as_user(&c.staff, update, json!({ "id": "999999", "input": {} }))
            .await
            .codes(),
        vec!["NOT_FOUND"]
    );
}

#[tokio::test]
async fn groups_are_unique_and_memberships_idempotent() {
    let c = cast().await;
    let reply = c
        .as_user(
            &c.staff,
            "mutation { createGroup(input: {name: \"Manager\"}) { id name memberCount } }",
            Value::Null,
        )
        .await;
    let group = reply.body["data"]["createGroup"].clone();
    assert_eq!(
        (group["name"].clone(), group["memberCount"].clone()),
        (json!("Manager"), json!(0))
    );
    let reply = c
        .as_user(
            &c.staff,
            "mutation { createGroup(input: {name: \"manager\"}) { id } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        fields(&reply),
        json!({ "name": ["A group with that name already exists."] })
    );
    assert_eq!(reply.codes(), vec!["CONFLICT"]);
    let assign = "mutation($u: ID!, $g: ID!) { assignUserToGroup(userId: $u, groupId: $g) { username groups { name } } }";
    let remove = "mutation($u: ID!, $g: ID!) { removeUserFromGroup(userId: $u, groupId: $g) { username groups { name } } }";
    let ids = json!({ "u": c.regular.id.to_string(), "g": group["id"] });
    for _ in 0..2 {
        let reply = c.as_user(&c.staff, assign, ids.clone()).await;
        assert_eq!(
            reply.body["data"]["assignUserToGroup"],
            json!({ "username": "regular", "groups": [{ "name": "Manager" }] })
        );
    }
    // Parallel assigns and removes leave one consistent state.
    let token = c.app.token_for(&c.staff);
    let attempts = (0..10)
        .map(|i| {
            (
                Some(token.clone()),
                if i % 2 == 0 { assign } else { remove }.to_owned(),
                ids.clone(),
            )
        })
        .collect();
    for reply in c.app.gql_concurrently(attempts).await {
        assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    }
    let rows = membership::Entity::find().count(c.app.db()).await.unwrap();
    assert!(rows <= 1);
    for _ in 0..2 {
        let reply = c.as_user(&c.staff, remove, ids.clone()).await;
        assert_eq!(
            reply.body["data"]["removeUserFromGroup"],
            json!({ "username": "regular", "groups": [] })
        );
    }
    let reply = c
        .as_user(&c.staff, assign, json!({ "u": "999999", "g": group["id"] }))
        .await;
    assert_eq!(reply.codes(), vec!["NOT_FOUND"]);
    let reply = c
        .as_user(
            &c.staff,
            assign,
            json!({ "u": c.regular.id.to_string(), "g": "999999" }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["NOT_FOUND"]);
    assert_eq!(
        c.as_user(&c.regular, assign, ids.clone()).await.codes(),
        vec!["FORBIDDEN"]
    );
    // Renaming and deleting; deletion removes memberships.
    c.as_user(&c.staff, assign, ids.clone()).await;
    let reply = c
        .as_user(
            &c.staff,
            "mutation($id: ID!) { updateGroup(id: $id, input: {name: \"Managers\"}) { name } }",
            json!({ "id": group["id"] }),
        )
        .await;
    assert_eq!(reply.body["data"]["updateGroup"]["name"], json!("Managers"));
    let reply = c
        .as_user(
            &c.staff,
            "mutation($id: ID!) { deleteGroup(id: $id) }",
            json!({ "id": group["id"] }),
        )
        .await;
    assert_eq!(reply.body["data"]["deleteGroup"], group["id"]);
    assert_eq!(
        membership::Entity::find().count(c.app.db()).await.unwrap(),
        0
    );
    let reply = c
        .as_user(
            &c.staff,
            "mutation($id: ID!) { deleteGroup(id: $id) }",
            json!({ "id": group["id"] }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["NOT_FOUND"]);
}

const UPSERT: &str = "mutation($input: UpsertUserInput!) { upsertUser(input: $input) { id username email firstName lastName phoneNumber isActive isStaff division { name } groups { name } } }";

#[tokio::test]
async fn upsert_user_creates_then_updates_the_fields_given() {
    let c = cast().await;
    let division = c.app.create_division("Sales", None, true).await;
    let group = c.app.create_group("Manager").await;
    let created = c
        .as_user(
            &c.staff,
            UPSERT,
            json!({ "input": { "username": "provisioned", "email": "p@example.com", "password": PASSWORD,
                               "firstName": "Pro", "lastName": "Visioned", "phoneNumber": "555-0100",
                               "groupIds": [group.id.to_string()] } }),
        )
        .await;
    assert_eq!(created.codes(), Vec::<String>::new(), "{}", created.body);
    let id = created.body["data"]["upsertUser"]["id"].clone();
    assert_eq!(
        created.body["data"]["upsertUser"],
        json!({ "id": id, "username": "provisioned", "email": "p@example.com", "firstName": "Pro",
                "lastName": "Visioned", "phoneNumber": "555-0100", "isActive": true, "isStaff": false,
                "division": null, "groups": [{ "name": "Manager" }] })
    );
    // Found again without regard to case: the fields given change, the
    // absent ones stay, null clears; groups, password and isActive are for
    // creation only.
    let updated = c
        .as_user(
            &c.staff,
            UPSERT,
            json!({ "input": { "username": "PROVISIONED", "email": "p@example.com", "password": "ignored-Passw0rd!",
                               "firstName": "Re", "phoneNumber": null, "divisionId": division.id.to_string(),
                               "groupIds": [], "isActive": false } }),
        )
        .await;
    assert_eq!(
        updated.body["data"]["upsertUser"],
        json!({ "id": id, "username": "PROVISIONED", "email": "p@example.com", "firstName": "Re",
                "lastName": "Visioned", "phoneNumber": null, "isActive": true, "isStaff": false,
                "division": { "name": "Sales" }, "groups": [{ "name": "Manager" }] }),
        "{}",
        updated.body
    );
    assert_eq!(user::Entity::find().count(c.app.db()).await.unwrap(), 5);
    // Found by email: the username given becomes the user's.
    let renamed = c
        .as_user(
            &c.staff,
            UPSERT,
            json!({ "input": { "username": "renamed", "email": "P@EXAMPLE.COM" } }),
        )
        .await;
    assert_eq!(renamed.body["data"]["upsertUser"]["id"], id);
    assert_eq!(
        renamed.body["data"]["upsertUser"]["username"],
        json!("renamed")
    );
    assert_eq!(
        renamed.body["data"]["upsertUser"]["email"],
        json!("P@EXAMPLE.COM")
    );
}

#[tokio::test]
async fn upsert_user_keeps_the_rules_of_create_and_update() {
    let c = cast().await;
    // One user's username with another's email: which is meant is unclear.
    let reply = c
        .as_user(
            &c.staff,
            UPSERT,
            json!({ "input": { "username": "regular", "email": "other@example.com", "firstName": "X" } }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["CONFLICT"]);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({ "username": ["A user with that username already exists."],
                "email": ["A user with that email already exists."] })
    );
    // Not staff.
    let reply = c
        .as_user(
            &c.regular,
            UPSERT,
            json!({ "input": { "username": "regular", "email": "regular@example.com", "firstName": "Me" } }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    // A superuser is changed only by a superuser (the seed's own case).
    let input = json!({ "input": { "username": "root", "email": "root@example.com", "firstName": "Rooted", "phoneNumber": "555-0199" } });
    assert_eq!(
        c.as_user(&c.staff, UPSERT, input.clone()).await.codes(),
        vec!["FORBIDDEN"]
    );
    let reply = c.as_user(&c.root, UPSERT, input).await;
    assert_eq!(
        reply.body["data"]["upsertUser"]["firstName"],
        json!("Rooted")
    );
    // Field rules, and staff only by a superuser, on creation.
    let reply = c
        .as_user(
            &c.staff,
            UPSERT,
            json!({ "input": { "username": "new one", "email": "not an email" } }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(
        c.as_user(
            &c.staff,
            UPSERT,
            json!({ "input": { "username": "boss", "email": "boss@example.com", "isStaff": true } }),
        )
        .await
        .codes(),
        vec!["FORBIDDEN"]
    );
    let unchanged = user::Entity::find_by_id(c.regular.id)
        .one(c.app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.first_name, c.regular.first_name);
    assert_eq!(user::Entity::find().count(c.app.db()).await.unwrap(), 4);
}

#[tokio::test]
async fn upsert_user_means_the_same_by_null_and_by_an_unchanged_flag_either_way() {
    let c = cast().await;
    for username in ["regular", "newcomer"] {
        let reply = c
            .as_user(
                &c.staff,
                UPSERT,
                json!({ "input": { "username": username, "email": format!("{username}@example.com"), "firstName": null, "isStaff": null } }),
            )
            .await;
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"], "{username}");
        assert_eq!(
            fields(&reply),
            json!({ "firstName": ["This field may not be null."], "isStaff": ["This field may not be null."] })
        );
    }
    // Staff who may not set flags run the same script twice.
    let input = json!({ "input": { "username": "scripted", "email": "scripted@example.com", "isStaff": false, "isSuperuser": false } });
    for _ in 0..2 {
        let reply = c.as_user(&c.staff, UPSERT, input.clone()).await;
        assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    }
    assert_eq!(user::Entity::find().count(c.app.db()).await.unwrap(), 5);
}
