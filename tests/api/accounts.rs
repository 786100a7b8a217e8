//! Registration, login, tokens and passwords (issue: accounts and authentication).
#![allow(clippy::unwrap_used)]

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::user;
use jsonwebtoken::{EncodingKey, Header};
use roster::services::{password_hash, tokens::Claims};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Reply, TestApp, spawn_app, spawn_app_with};

const REGISTER: &str = "mutation($input: RegisterInput!) { register(input: $input) { id username email firstName lastName isActive isStaff isSuperuser } }";
const LOGIN: &str = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken refreshToken tokenType expiresIn user { username email lastLogin } } }";
const REFRESH: &str = "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken user { id } } }";

async fn register(app: &TestApp, input: Value) -> Reply {
    app.gql(REGISTER, json!({ "input": input })).await
}

fn valid_input() -> Value {
    json!({ "username": "alice", "email": "alice@example.com", "password": PASSWORD, "firstName": "Alice", "lastName": "Liddell" })
}

fn with(field: &str, value: Value) -> Value {
    let mut input = valid_input();
    input[field] = value;
    input
}

/// The reply is one BAD_USER_INPUT with exactly these field messages, and no user was created.
async fn assert_refused(app: &TestApp, reply: &Reply, fields: Value) {
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"], "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["extensions"]["fields"], fields);
    assert_eq!(reply.body["data"], Value::Null);
    assert_eq!(user::Entity::find().all(app.db()).await.unwrap().len(), 0);
}

async fn login(app: &TestApp, username: &str, password: &str) -> Reply {
    app.gql(LOGIN, json!({ "u": username, "p": password }))
        .await
}

async fn stored_user(app: &TestApp, username: &str) -> user::Model {
    user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn can_create_user_anonymously() {
    let app = spawn_app().await;
    let reply = register(&app, valid_input()).await;
    let id = stored_user(&app, "alice").await.id.to_string();
    assert_eq!(
        reply.body,
        json!({ "data": { "register": {
            "id": id, "username": "alice", "email": "alice@example.com", "firstName": "Alice",
            "lastName": "Liddell", "isActive": true, "isStaff": false, "isSuperuser": false
        } } })
    );
}

#[tokio::test]
async fn created_user_can_actually_login() {
    let app = spawn_app().await;
    register(&app, valid_input()).await;
    let reply = login(&app, "alice", PASSWORD).await;
    let payload = &reply.body["data"]["login"];
    assert_eq!(payload["tokenType"], json!("Bearer"));
    assert_eq!(payload["expiresIn"], json!(900));
    assert_eq!(payload["user"]["email"], json!("alice@example.com"));
    assert!(
        payload["user"]["lastLogin"].is_string(),
        "lastLogin is set: {payload}"
    );
    let token = payload["accessToken"].as_str().unwrap();
    let me = app
        .gql_as(Some(token), "{ me { username } }", Value::Null)
        .await;
    assert_eq!(
        me.body,
        json!({ "data": { "me": { "username": "alice" } } })
    );
    assert_eq!(
        payload["refreshToken"].as_str().unwrap().len(),
        43,
        "256 bits, base64url"
    );
}

#[tokio::test]
async fn login_accepts_the_email_and_any_case() {
    let app = spawn_app().await;
    register(&app, valid_input()).await;
    for name in ["ALICE", "Alice@Example.com"] {
        let reply = login(&app, name, PASSWORD).await;
        assert_eq!(
            reply.body["data"]["login"]["user"]["username"],
            json!("alice"),
            "{name}"
        );
    }
}

#[tokio::test]
async fn cannot_create_user_with_blank_username() {
    let app = spawn_app().await;
    let reply = register(&app, with("username", json!(""))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "username": ["This field may not be blank."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_long_username() {
    let app = spawn_app().await;
    let reply = register(&app, with("username", json!("a".repeat(151)))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "username": ["Ensure this field has no more than 150 characters."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_invalid_username() {
    let app = spawn_app().await;
    let reply = register(&app, with("username", json!("alice liddell!"))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "username": ["Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_blank_email() {
    let app = spawn_app().await;
    let reply = register(&app, with("email", json!(""))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "email": ["This field may not be blank."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_invalid_email() {
    let app = spawn_app().await;
    let reply = register(&app, with("email", json!("alice@"))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "email": ["Enter a valid email address."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_short_password() {
    let app = spawn_app().await;
    let reply = register(&app, with("password", json!("xQ3#p"))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "password": ["This password is too short. It must contain at least 8 characters."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_common_password() {
    let app = spawn_app().await;
    let reply = register(&app, with("password", json!("Password1"))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "password": ["This password is too common."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_numeric_password() {
    let app = spawn_app().await;
    let reply = register(&app, with("password", json!("73920184657"))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "password": ["This password is entirely numeric."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_blank_password() {
    let app = spawn_app().await;
    let reply = register(&app, with("password", json!(""))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "password": ["This field may not be blank."] }),
    )
    .await;
}

#[tokio::test]
async fn cannot_create_user_with_password_like_personal_info() {
    let app = spawn_app().await;
    let reply = register(&app, with("password", json!("alice.ok!"))).await;
    assert_refused(
        &app,
        &reply,
        json!({ "password": ["The password is too similar to the username."] }),
    )
    .await;
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let app = spawn_app().await;
    let reply = register(
        &app,
        json!({ "username": "", "email": "nope", "password": "123", "lastName": "x".repeat(151) }),
    )
    .await;
    assert_refused(
        &app,
        &reply,
        json!({
            "username": ["This field may not be blank."],
            "email": ["Enter a valid email address."],
            "lastName": ["Ensure this field has no more than 150 characters."],
            "password": [
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric."
            ]
        }),
    )
    .await;
}

#[tokio::test]
async fn taken_username_and_email_are_both_reported_as_conflict() {
    let app = spawn_app().await;
    register(&app, valid_input()).await;
    let reply = register(&app, with("username", json!("ALICE"))).await;
    assert_eq!(reply.codes(), vec!["CONFLICT"]);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({ "username": ["A user with that username already exists."], "email": ["A user with that email already exists."] })
    );
}

#[tokio::test]
async fn racing_registrations_give_one_success_and_one_conflict() {
    let app = spawn_app().await;
    for round in 0..5 {
        let name = format!("racer{round}");
        let (a, b) = tokio::join!(
            register(
                &app,
                json!({ "username": name, "email": format!("{name}@example.com"), "password": PASSWORD })
            ),
            register(
                &app,
                json!({ "username": name.to_uppercase(), "email": format!("{name}@example.org"), "password": PASSWORD })
            ),
        );
        let mut codes = [a.codes(), b.codes()];
        codes.sort();
        assert_eq!(
            codes,
            [vec![], vec!["CONFLICT".to_owned()]],
            "{} {}",
            a.body,
            b.body
        );
    }
}

#[tokio::test]
async fn registration_can_be_switched_off() {
    let app = spawn_app_with(|c| c.open_registration = false).await;
    let reply = register(&app, valid_input()).await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    assert_eq!(user::Entity::find().all(app.db()).await.unwrap().len(), 0);
}

#[tokio::test]
async fn password_not_in_create_user_api_response() {
    let app = spawn_app().await;
    let reply = register(&app, valid_input()).await;
    let text = reply.body.to_string();
    assert!(
        !text.contains(PASSWORD) && !text.contains("argon2"),
        "{text}"
    );
    // No field of any output type can return a password or a hash (the
    // mutations only take passwords as arguments).
    let reply = app
        .gql(
            "{ __schema { types { name kind fields { name } } } }",
            Value::Null,
        )
        .await;
    let types = reply.body["data"]["__schema"]["types"].as_array().unwrap();
    assert!(types.iter().any(|t| t["name"] == json!("User")));
    for ty in types
        .iter()
        .filter(|t| t["kind"] == json!("OBJECT") && t["name"] != json!("Mutation"))
    {
        for field in ty["fields"].as_array().into_iter().flatten() {
            let name = field["name"].as_str().unwrap().to_lowercase();
            assert!(
                !name.contains("password") && !name.contains("hash"),
                "{}.{name}",
                ty["name"]
            );
        }
    }
}

#[tokio::test]
async fn password_is_hashed_properly_on_create() {
    let app = spawn_app().await;
    register(&app, valid_input()).await;
    let hash = stored_user(&app, "alice").await.password_hash.unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(
        password_hash::Hasher::new(password_hash::HashLimits::one_at_a_time())
            .verify(PASSWORD.into(), Some(hash))
            .await
            .unwrap(),
        password_hash::Verified::Yes
    );
}

#[tokio::test]
async fn password_is_hashed_properly_on_update() {
    let app = spawn_app().await;
    register(&app, valid_input()).await;
    let token = login(&app, "alice", PASSWORD).await.body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let new = "Another-Long-Passphrase-7";
    let reply = app
        .gql_as(Some(&token), "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }", json!({ "c": PASSWORD, "n": new }))
        .await;
    assert_eq!(reply.body, json!({ "data": { "changePassword": true } }));
    let hash = stored_user(&app, "alice").await.password_hash.unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert_eq!(
        password_hash::Hasher::new(password_hash::HashLimits::one_at_a_time())
            .verify(new.into(), Some(hash))
            .await
            .unwrap(),
        password_hash::Verified::Yes
    );
    // The old access token stopped working; the new password logs in.
    let me = app.gql_as(Some(&token), "{ me { id } }", Value::Null).await;
    assert_eq!(me.codes(), vec!["UNAUTHENTICATED"]);
    assert_eq!(
        login(&app, "alice", new).await.codes(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn change_password_checks_the_current_one_and_the_policy() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    let token = app.token_for(&alice);
    let reply = app
        .gql_as(
            Some(&token),
            "mutation { changePassword(currentPassword: \"wrong\", newPassword: \"short\") }",
            Value::Null,
        )
        .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({
            "currentPassword": ["Your current password is incorrect."],
            "newPassword": ["This password is too short. It must contain at least 8 characters.", "This password is too common."]
        })
    );
    let anonymous = app
        .gql(
            "mutation { changePassword(currentPassword: \"a\", newPassword: \"b\") }",
            Value::Null,
        )
        .await;
    assert_eq!(anonymous.codes(), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn every_login_failure_looks_the_same() {
    let app = spawn_app().await;
    app.create_user("alice", false, false).await;
    let inactive = app.create_user("ina", false, false).await;
    let no_password = app.create_user("nopass", false, false).await;
    user::Entity::update(user::ActiveModel {
        id: Set(inactive.id),
        is_active: Set(false),
        ..Default::default()
    })
    .exec(app.db())
    .await
    .unwrap();
    user::Entity::update(user::ActiveModel {
        id: Set(no_password.id),
        password_hash: Set(None),
        ..Default::default()
    })
    .exec(app.db())
    .await
    .unwrap();
    for (username, password) in [
        ("alice", "wrong-password"),
        ("nobody", PASSWORD),
        ("ina", PASSWORD),
        ("nopass", PASSWORD),
    ] {
        let reply = login(&app, username, password).await;
        assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"], "{username}");
        assert_eq!(
            reply.body["errors"][0]["message"],
            json!("Invalid username or password."),
            "{username}"
        );
        assert_eq!(reply.body["data"], Value::Null);
    }
}

#[tokio::test]
async fn rate_limit_refuses_even_the_right_password_until_the_window_passes() {
    let app = spawn_app_with(|c| c.login_max_failures = 3).await;
    app.create_user("alice", false, false).await;
    for _ in 0..3 {
        assert_eq!(
            login(&app, "alice", "wrong-password").await.codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    let reply = login(&app, "alice", PASSWORD).await;
    assert_eq!(reply.codes(), vec!["RATE_LIMITED"]);
    let retry_after = reply.body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert!((895..=900).contains(&retry_after), "{retry_after}");
    // Another username from the same client is not limited.
    assert_eq!(
        login(&app, "bob", "wrong-password").await.codes(),
        vec!["UNAUTHENTICATED"]
    );
}

#[tokio::test]
async fn the_limit_lifts_when_the_window_has_passed() {
    let app = spawn_app_with(|c| {
        c.login_max_failures = 2;
        c.login_window = std::time::Duration::from_secs(2);
    })
    .await;
    app.create_user("alice", false, false).await;
    for _ in 0..2 {
        login(&app, "alice", "wrong-password").await;
    }
    assert_eq!(
        login(&app, "alice", PASSWORD).await.codes(),
        vec!["RATE_LIMITED"]
    );
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    assert_eq!(
        login(&app, "alice", PASSWORD).await.codes(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn aliases_and_batches_cannot_bypass_the_login_limit() {
    let app = spawn_app_with(|c| {
        c.login_max_failures = 5;
        // The login limit alone: no network's share of the hashing threads.
        c.hash_limits.per_client = 64;
    })
    .await;
    app.create_user("alice", false, false).await;
    let aliases: String = (0..8)
        .map(|i| format!("a{i}: login(input: {{username: \"alice\", password: \"wrong{i}\"}}) {{ tokenType }} "))
        .collect();
    let reply = app
        .gql(&format!("mutation {{ {aliases} }}"), Value::Null)
        .await;
    let codes = reply.codes();
    assert_eq!(
        codes.iter().filter(|c| *c == "UNAUTHENTICATED").count(),
        5,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| *c == "RATE_LIMITED").count(),
        3,
        "{codes:?}"
    );

    // A batch of concurrent documents for another user: at most 5 are checked.
    app.create_user("bob", false, false).await;
    let batch: Vec<Value> = (0..10)
        .map(|i| json!({ "query": LOGIN, "variables": { "u": "bob", "p": format!("wrong{i}") } }))
        .collect();
    let reply = app.post_json(None, &Value::Array(batch)).await;
    let codes: Vec<String> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        codes.iter().filter(|c| *c == "UNAUTHENTICATED").count(),
        5,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| *c == "RATE_LIMITED").count(),
        5,
        "{codes:?}"
    );
    assert_eq!(
        login(&app, "bob", PASSWORD).await.codes(),
        vec!["RATE_LIMITED"]
    );
}

async fn tokens(app: &TestApp) -> (String, String) {
    let reply = login(app, "alice", PASSWORD).await;
    let payload = &reply.body["data"]["login"];
    (
        payload["accessToken"].as_str().unwrap().to_owned(),
        payload["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> Reply {
    app.gql(REFRESH, json!({ "t": token })).await
}

#[tokio::test]
async fn refresh_rotates_and_the_old_token_is_retired() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    let (_, first) = tokens(&app).await;
    let reply = refresh(&app, &first).await;
    let second = reply.body["data"]["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(second, first);
    assert_eq!(
        reply.body["data"]["refreshToken"]["user"]["id"],
        json!(alice.id.to_string())
    );
    let access = reply.body["data"]["refreshToken"]["accessToken"]
        .as_str()
        .unwrap();
    assert_eq!(
        app.gql_as(Some(access), "{ me { username } }", Value::Null)
            .await
            .body["data"]["me"]["username"],
        json!("alice")
    );
    // Within the grace period the old token is only refused; the new one still works.
    assert_eq!(refresh(&app, &first).await.codes(), vec!["UNAUTHENTICATED"]);
    assert_eq!(refresh(&app, &second).await.codes(), Vec::<String>::new());
}

#[tokio::test]
async fn reusing_a_retired_refresh_token_revokes_its_whole_family() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = std::time::Duration::ZERO).await;
    app.create_user("alice", false, false).await;
    let (_, first) = tokens(&app).await;
    let (_, other_login) = tokens(&app).await;
    let second = refresh(&app, &first).await.body["data"]["refreshToken"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(refresh(&app, &first).await.codes(), vec!["UNAUTHENTICATED"]);
    // The thief's reuse cost the family its live token ...
    assert_eq!(
        refresh(&app, &second).await.codes(),
        vec!["UNAUTHENTICATED"]
    );
    // ... but not the user's other logins.
    assert_eq!(
        refresh(&app, &other_login).await.codes(),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn logout_revokes_the_refresh_token() {
    let app = spawn_app().await;
    app.create_user("alice", false, false).await;
    let (_, token) = tokens(&app).await;
    let reply = app
        .gql(
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(reply.body, json!({ "data": { "logout": true } }));
    assert_eq!(refresh(&app, &token).await.codes(), vec!["UNAUTHENTICATED"]);
    let again = app
        .gql(
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(again.body, json!({ "data": { "logout": true } }));
}

#[tokio::test]
async fn an_unknown_refresh_token_is_unauthenticated() {
    let app = spawn_app().await;
    assert_eq!(
        refresh(&app, "made-up").await.codes(),
        vec!["UNAUTHENTICATED"]
    );
}

#[tokio::test]
async fn a_deactivated_user_cannot_refresh() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    let (_, token) = tokens(&app).await;
    user::Entity::update(user::ActiveModel {
        id: Set(alice.id),
        is_active: Set(false),
        ..Default::default()
    })
    .exec(app.db())
    .await
    .unwrap();
    assert_eq!(refresh(&app, &token).await.codes(), vec!["UNAUTHENTICATED"]);
}

fn claims_for(user: &user::Model, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: user.id.to_string(),
        iat: now,
        exp: now + exp_offset,
        jti: "t".into(),
        ver: user.token_version,
    }
}

async fn me_with(app: &TestApp, token: &str) -> Vec<String> {
    app.gql_as(Some(token), "{ me { id } }", Value::Null)
        .await
        .codes()
}

#[tokio::test]
async fn forged_and_expired_tokens_are_refused() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    let bob = app.create_user("bob", false, false).await;
    let unauthenticated = vec!["UNAUTHENTICATED".to_owned()];

    // Signed with another key.
    let other_key = EncodingKey::from_secret(&[7u8; 48]);
    let forged =
        jsonwebtoken::encode(&Header::default(), &claims_for(&alice, 600), &other_key).unwrap();
    assert_eq!(me_with(&app, &forged).await, unauthenticated);

    // alg: none.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for(&alice, 600)).unwrap());
    assert_eq!(
        me_with(&app, &format!("{header}.{body}.")).await,
        unauthenticated
    );

    // A valid token whose claims were changed to name another user.
    let genuine = app.token_for(&alice);
    let parts: Vec<&str> = genuine.split('.').collect();
    let swapped = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims_for(&bob, 600)).unwrap());
    assert_eq!(
        me_with(&app, &format!("{}.{swapped}.{}", parts[0], parts[2])).await,
        unauthenticated
    );

    // Expired, though well signed (by the server's own key).
    let expired = app
        .state
        .tokens
        .issue(&alice, std::time::Duration::ZERO)
        .unwrap();
    let parts: Vec<&str> = expired.split('.').collect();
    let mut claims: Claims =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims.exp -= 3600;
    claims.iat -= 4000;
    // Re-signing needs the secret: read it the way a second process would.
    let secret = entity::setting::Entity::find_by_id("jwt_secret")
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
        .value;
    let expired = jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(me_with(&app, &expired).await, unauthenticated);
    // The same key with a live expiry is accepted, so the refusals above are about the token.
    let live = jsonwebtoken::encode(
        &Header::default(),
        &claims_for(&alice, 600),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(me_with(&app, &live).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_deleted_users_token_is_refused() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    let token = app.token_for(&alice);
    user::Entity::delete_by_id(alice.id)
        .exec(app.db())
        .await
        .unwrap();
    assert_eq!(me_with(&app, &token).await, vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn staff_set_passwords_and_only_superusers_a_superusers() {
    let app = spawn_app().await;
    let staff = app.create_user("staff", true, false).await;
    let root = app.create_user("root", true, true).await;
    let alice = app.create_user("alice", false, false).await;
    let set = "mutation($id: ID!, $p: String!) { setUserPassword(id: $id, password: $p) }";
    let new = "Brand-New-Passphrase-9";
    let alice_token = app.token_for(&alice);

    let reply = app
        .gql_as(
            Some(&app.token_for(&staff)),
            set,
            json!({ "id": alice.id.to_string(), "p": new }),
        )
        .await;
    assert_eq!(reply.body, json!({ "data": { "setUserPassword": true } }));
    assert_eq!(
        me_with(&app, &alice_token).await,
        vec!["UNAUTHENTICATED"],
        "old tokens are revoked"
    );
    assert_eq!(
        login(&app, "alice", new).await.codes(),
        Vec::<String>::new()
    );

    let reply = app
        .gql_as(
            Some(&app.token_for(&staff)),
            set,
            json!({ "id": root.id.to_string(), "p": new }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    let reply = app
        .gql_as(
            Some(&app.token_for(&root)),
            set,
            json!({ "id": staff.id.to_string(), "p": new }),
        )
        .await;
    assert_eq!(reply.codes(), Vec::<String>::new());
    let reply = app
        .gql_as(
            Some(&app.token_for(&root)),
            set,
            json!({ "id": "999999", "p": new }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["NOT_FOUND"]);
    let reply = app
        .gql_as(
            Some(&app.token_for(&root)),
            set,
            json!({ "id": "abc", "p": new }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({ "id": ["Not a valid id."] })
    );
    let reply = app
        .gql_as(
            Some(&app.token_for(&root)),
            set,
            json!({ "id": alice.id.to_string(), "p": "password" }),
        )
        .await;
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({ "password": ["This password is too common."] })
    );
    let alice_token = login(&app, "alice", new).await.body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let reply = app
        .gql_as(
            Some(&alice_token),
            set,
            json!({ "id": staff.id.to_string(), "p": new }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
    let reply = app
        .gql(set, json!({ "id": staff.id.to_string(), "p": new }))
        .await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn outdated_hashes_are_upgraded_on_login() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    // A valid Argon2id hash of PASSWORD with weaker, older parameters.
    use argon2::{Algorithm, Argon2, Params, Version, password_hash::PasswordHasher};
    let weak = Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(8192, 1, 1, None).unwrap(),
    )
    .hash_password(PASSWORD.as_bytes())
    .unwrap()
    .to_string();
    user::Entity::update(user::ActiveModel {
        id: Set(alice.id),
        password_hash: Set(Some(weak.clone())),
        ..Default::default()
    })
    .exec(app.db())
    .await
    .unwrap();
    assert_eq!(
        login(&app, "alice", PASSWORD).await.codes(),
        Vec::<String>::new()
    );
    let upgraded = stored_user(&app, "alice").await.password_hash.unwrap();
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
}

#[tokio::test]
async fn fifty_aliased_logins_in_one_document_all_count() {
    let app = spawn_app().await;
    app.create_user("alice", false, false).await;
    let aliases: String = (0..50)
        .map(|i| format!("a{i}: login(input: {{username: \"alice\", password: \"guess{i}\"}}) {{ tokenType }} "))
        .collect();
    let reply = app
        .gql(&format!("mutation {{ {aliases} }}"), Value::Null)
        .await;
    let codes = reply.codes();
    assert_eq!(codes.len(), 50);
    assert_eq!(
        codes.iter().filter(|c| *c == "UNAUTHENTICATED").count(),
        5,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| *c == "RATE_LIMITED").count(),
        45,
        "{codes:?}"
    );
}

#[tokio::test]
async fn refresh_token_guessing_is_rate_limited() {
    let app = spawn_app_with(|c| c.login_max_failures = 3).await;
    app.create_user("alice", false, false).await;
    let (_, genuine) = tokens(&app).await;
    for i in 0..3 {
        assert_eq!(
            refresh(&app, &format!("guess-{i}")).await.codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    let reply = refresh(&app, "guess-4").await;
    assert_eq!(reply.codes(), vec!["RATE_LIMITED"]);
    assert!(
        reply.body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Refused with the limit reached, and the genuine token is not consumed by it.
    assert_eq!(refresh(&app, &genuine).await.codes(), vec!["RATE_LIMITED"]);
    let stored = entity::refresh_token::Entity::find()
        .all(app.db())
        .await
        .unwrap();
    assert!(stored.iter().all(|t| t.retired_at.is_none()));
}

#[tokio::test]
async fn legitimate_refreshes_do_not_count_against_the_limit() {
    let app = spawn_app_with(|c| c.login_max_failures = 2).await;
    app.create_user("alice", false, false).await;
    let (_, mut token) = tokens(&app).await;
    for _ in 0..5 {
        let reply = refresh(&app, &token).await;
        assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
        token = reply.body["data"]["refreshToken"]["refreshToken"]
            .as_str()
            .unwrap()
            .to_owned();
    }
}
