//! Accounts under attack (issue 13): limits keyed on the account and the
//! client's network, the proxies whose word on the client is taken, the
//! per-client budget, bounded hashing, and sessions that end even when a
//! login or refresh straddles the change that ends them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use entity::{login_failure, refresh_token, user};
use roster::{
    checkpoints,
    config::Config,
    http::client_address::{ForwardedHeader, TrustedProxies},
    services::{accounts, client_budget::ClientBudget, password_hash::HashLimits},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, Set,
};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Reply, TestApp, spawn_app, spawn_app_with};

const LOGIN: &str = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken refreshToken } }";
const REFRESH: &str =
    "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken refreshToken } }";
const CHANGE_PASSWORD: &str =
    "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
const REGISTER: &str = "mutation($u: String!, $e: String!) { register(input: {username: $u, email: $e, password: \"Vq7#pL2m!xZ-roster\"}) { id } }";
const ME: &str = "{ me { username } }";
const NEW_PASSWORD: &str = "Another-Passw0rd!x";
const BUDGET_SPENT: &str = "Too many requests from your network; try again later.";

/// Trusts 127.0.0.1 as a proxy, so that tests can speak for many clients.
fn behind_proxy(config: &mut Config) {
    config.trusted_proxies = TrustedProxies {
        networks: vec!["127.0.0.1/32".parse().unwrap()],
        header: ForwardedHeader::XForwardedFor,
    };
}

async fn login_from(app: &TestApp, client: &str, username: &str, password: &str) -> Reply {
    app.gql_from(client, LOGIN, json!({ "u": username, "p": password }))
        .await
}

async fn login(app: &TestApp, username: &str, password: &str) -> Reply {
    app.gql(LOGIN, json!({ "u": username, "p": password }))
        .await
}

fn no_errors() -> Vec<String> {
    Vec::new()
}

fn tokens(reply: &Reply) -> (String, String) {
    let payload = &reply.body["data"]["login"];
    (
        payload["accessToken"].as_str().unwrap().to_owned(),
        payload["refreshToken"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn failed_logins_count_per_account_whichever_name_or_email_was_typed() {
    let app = spawn_app_with(|c| c.login_max_failures = 4).await;
    app.create_user("Alice", false, false).await;
    for typed in ["alice", "ALICE@EXAMPLE.COM", "Alice", "alice@example.com"] {
        assert_eq!(
            login(&app, typed, "wrong-password").await.codes(),
            vec!["UNAUTHENTICATED"],
            "{typed}"
        );
    }
    for typed in ["aLiCe", "Alice@Example.com"] {
        let reply = login(&app, typed, PASSWORD).await;
        assert_eq!(reply.codes(), vec!["RATE_LIMITED"], "{typed}");
        assert_eq!(
            reply.body["errors"][0]["message"],
            json!("Too many failed attempts; try again later.")
        );
    }
    // A name that resolves to nobody is counted under the text typed.
    for _ in 0..4 {
        assert_eq!(
            login(&app, "nobody", "wrong-password").await.codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    assert_eq!(
        login(&app, "NOBODY", "wrong-password").await.codes(),
        vec!["RATE_LIMITED"]
    );
    assert_eq!(
        login(&app, "somebody", "wrong-password").await.codes(),
        vec!["UNAUTHENTICATED"]
    );
    let alice = user::Entity::find().one(app.db()).await.unwrap().unwrap();
    let keys: Vec<String> = login_failure::Entity::find()
        .order_by_asc(login_failure::Column::Id)
        .all(app.db())
        .await
        .unwrap()
        .into_iter()
        .map(|f| format!("{} {}", f.identifier_folded, f.client))
        .collect();
    let mut expected = vec![format!("user:{} 127.0.0.1", alice.id); 4];
    expected.extend(vec!["name:nobody 127.0.0.1".to_owned(); 4]);
    expected.push("name:somebody 127.0.0.1".to_owned());
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn the_account_ceiling_stops_a_spread_guess_and_no_client_locks_out_another() {
    let app = spawn_app_with(|c| {
        behind_proxy(c);
        c.login_max_failures = 2;
        c.login_account_max_failures = 5;
    })
    .await;
    app.create_user("alice", false, false).await;
    for _ in 0..2 {
        assert_eq!(
            login_from(&app, "192.0.2.1", "alice", "wrong")
                .await
                .codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    // The guesser is refused; the owner, elsewhere, is not.
    assert_eq!(
        login_from(&app, "192.0.2.1", "alice", PASSWORD)
            .await
            .codes(),
        vec!["RATE_LIMITED"]
    );
    assert_eq!(
        login_from(&app, "192.0.2.2", "alice", PASSWORD)
            .await
            .codes(),
        no_errors()
    );
    // Three more networks guess: five failures on the account in all.
    for client in ["192.0.2.3", "192.0.2.4", "198.51.100.1"] {
        assert_eq!(
            login_from(&app, client, "alice", "wrong").await.codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    let reply = login_from(&app, "203.0.113.9", "alice", PASSWORD).await;
    assert_eq!(reply.codes(), vec!["RATE_LIMITED"]);
    let retry_after = reply.body["errors"][0]["extensions"]["retryAfter"]
        .as_u64()
        .unwrap();
    assert!((895..=900).contains(&retry_after), "{retry_after}");
    // Where the owner logged in before, the ceiling does not hold them out.
    assert_eq!(
        login_from(&app, "192.0.2.2", "alice", PASSWORD)
            .await
            .codes(),
        no_errors()
    );
    // Another account is not affected.
    app.create_user("bob", false, false).await;
    assert_eq!(
        login_from(&app, "203.0.113.9", "bob", PASSWORD)
            .await
            .codes(),
        no_errors()
    );
}

#[tokio::test]
async fn without_known_clients_the_ceiling_holds_everyone_out() {
    let app = spawn_app_with(|c| {
        behind_proxy(c);
        c.login_max_failures = 2;
        c.login_account_max_failures = 2;
        c.login_known_client = std::time::Duration::ZERO;
    })
    .await;
    app.create_user("alice", false, false).await;
    assert_eq!(
        login_from(&app, "192.0.2.2", "alice", PASSWORD)
            .await
            .codes(),
        no_errors()
    );
    for client in ["192.0.2.3", "192.0.2.4"] {
        login_from(&app, client, "alice", "wrong").await;
    }
    assert_eq!(
        login_from(&app, "192.0.2.2", "alice", PASSWORD)
            .await
            .codes(),
        vec!["RATE_LIMITED"]
    );
}

#[tokio::test]
async fn a_password_reset_forgets_the_known_networks() {
    let app = spawn_app_with(|c| {
        behind_proxy(c);
        c.login_max_failures = 2;
        c.login_account_max_failures = 2;
    })
    .await;
    let alice = app.create_user("alice", false, false).await;
    let root = app.create_user("root", true, true).await;
    assert_eq!(
        login_from(&app, "192.0.2.2", "alice", PASSWORD)
            .await
            .codes(),
        no_errors()
    );
    let reset = app
        .gql_as(
            Some(&app.token_for(&root)),
            "mutation($id: ID!, $p: String!) { setUserPassword(id: $id, password: $p) }",
            json!({ "id": alice.id.to_string(), "p": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(reset.codes(), no_errors());
    for client in ["192.0.2.3", "192.0.2.4"] {
        login_from(&app, client, "alice", "wrong").await;
    }
    assert_eq!(
        login_from(&app, "192.0.2.2", "alice", NEW_PASSWORD)
            .await
            .codes(),
        vec!["RATE_LIMITED"]
    );
}

#[tokio::test]
async fn ipv6_clients_are_counted_by_their_64() {
    let app = spawn_app_with(|c| {
        behind_proxy(c);
        c.login_max_failures = 2;
    })
    .await;
    app.create_user("alice", false, false).await;
    for client in ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:fffe"] {
        assert_eq!(
            login_from(&app, client, "alice", "wrong").await.codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    assert_eq!(
        login_from(&app, "2001:db8:1:2::abcd", "alice", PASSWORD)
            .await
            .codes(),
        vec!["RATE_LIMITED"]
    );
    assert_eq!(
        login_from(&app, "2001:db8:1:3::1", "alice", PASSWORD)
            .await
            .codes(),
        no_errors()
    );
    let clients: Vec<String> = login_failure::Entity::find()
        .all(app.db())
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.client)
        .collect();
    assert_eq!(clients, vec!["2001:db8:1:2::/64"; 2]);
}

#[tokio::test]
async fn only_a_trusted_proxy_names_the_client() {
    // Not trusted: the header is ignored, every attempt is the peer's.
    let app = spawn_app_with(|c| c.login_max_failures = 2).await;
    app.create_user("alice", false, false).await;
    for client in ["192.0.2.1", "192.0.2.2"] {
        assert_eq!(
            login_from(&app, client, "alice", "wrong").await.codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    assert_eq!(
        login_from(&app, "192.0.2.3", "alice", PASSWORD)
            .await
            .codes(),
        vec!["RATE_LIMITED"]
    );

    // Trusted, but the header does not parse: the proxy is the client.
    let app = spawn_app_with(|c| {
        behind_proxy(c);
        c.login_max_failures = 2;
    })
    .await;
    app.create_user("alice", false, false).await;
    for header in ["not-an-address", "192.0.2.1, unknown"] {
        assert_eq!(
            login_from(&app, header, "alice", "wrong").await.codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    assert_eq!(
        login(&app, "alice", PASSWORD).await.codes(),
        vec!["RATE_LIMITED"]
    );
    // The chain is read from the right: what the client wrote at the left
    // does not make it someone else.
    assert_eq!(
        login_from(&app, "192.0.2.50, 192.0.2.7", "alice", "wrong")
            .await
            .codes(),
        vec!["UNAUTHENTICATED"]
    );
    assert_eq!(
        login_from(&app, "192.0.2.51, 192.0.2.7", "alice", "wrong")
            .await
            .codes(),
        vec!["UNAUTHENTICATED"]
    );
    assert_eq!(
        login_from(&app, "192.0.2.52, 192.0.2.7", "alice", PASSWORD)
            .await
            .codes(),
        vec!["RATE_LIMITED"]
    );
}

#[tokio::test]
async fn the_client_budget_holds_across_aliases_and_kinds_of_request() {
    let app = spawn_app_with(|c| {
        behind_proxy(c);
        c.client_budget = ClientBudget {
            burst: 3,
            per_minute: 1,
        };
    })
    .await;
    // A registration that breaks a field rule spends nothing.
    for _ in 0..5 {
        let reply = app
            .gql_from(
                "192.0.2.1",
                REGISTER,
                json!({ "u": "no spaces", "e": "x@example.com" }),
            )
            .await;
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    }
    let aliases: String = (0..4)
        .map(|i| format!("a{i}: login(input: {{username: \"guess{i}\", password: \"wrong\"}}) {{ tokenType }} "))
        .collect();
    let reply = app
        .gql_from(
            "192.0.2.1",
            &format!("mutation {{ {aliases} }}"),
            Value::Null,
        )
        .await;
    assert_eq!(
        reply.codes(),
        vec![
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "UNAUTHENTICATED",
            "RATE_LIMITED"
        ]
    );
    let refused = &reply.body["errors"][3];
    assert_eq!(refused["message"], json!(BUDGET_SPENT));
    let retry_after = refused["extensions"]["retryAfter"].as_u64().unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    // Every kind of request that hashes or guesses spends from it.
    let refresh = app
        .gql_from("192.0.2.1", REFRESH, json!({ "t": "a guess" }))
        .await;
    assert_eq!(refresh.codes(), vec!["RATE_LIMITED"]);
    let register = app
        .gql_from(
            "192.0.2.1",
            REGISTER,
            json!({ "u": "newcomer", "e": "newcomer@example.com" }),
        )
        .await;
    assert_eq!(register.codes(), vec!["RATE_LIMITED"]);
    assert_eq!(register.body["errors"][0]["message"], json!(BUDGET_SPENT));
    // Nothing was created, and the next network has a budget of its own.
    assert_eq!(user::Entity::find().all(app.db()).await.unwrap().len(), 0);
    let register = app
        .gql_from(
            "192.0.2.2",
            REGISTER,
            json!({ "u": "newcomer", "e": "newcomer@example.com" }),
        )
        .await;
    assert_eq!(register.codes(), no_errors());
    // Whether a name or email is taken is not had at database speed either.
    for expected in ["CONFLICT", "CONFLICT", "RATE_LIMITED"] {
        let reply = app
            .gql_from(
                "192.0.2.2",
                REGISTER,
                json!({ "u": "newcomer", "e": "probe@example.com" }),
            )
            .await;
        assert_eq!(reply.codes(), vec![expected]);
    }
}

#[tokio::test]
async fn wrong_current_passwords_are_limited_as_failed_logins_are() {
    let app = spawn_app_with(|c| c.login_max_failures = 3).await;
    let alice = app.create_user("alice", false, false).await;
    let token = app.token_for(&alice);
    for _ in 0..3 {
        let reply = app
            .gql_as(
                Some(&token),
                CHANGE_PASSWORD,
                json!({ "c": "a guess", "n": NEW_PASSWORD }),
            )
            .await;
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    }
    let reply = app
        .gql_as(
            Some(&token),
            CHANGE_PASSWORD,
            json!({ "c": PASSWORD, "n": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["RATE_LIMITED"]);
    // Counted apart from logins: failed logins do not stop the owner from
    // changing the password, nor the reverse.
    assert_eq!(login(&app, "alice", PASSWORD).await.codes(), no_errors());
    let bob = app.create_user("bob", false, false).await;
    for _ in 0..4 {
        login(&app, "bob", "wrong").await;
    }
    let reply = app
        .gql_as(
            Some(&app.token_for(&bob)),
            CHANGE_PASSWORD,
            json!({ "c": PASSWORD, "n": NEW_PASSWORD }),
        )
        .await;
    assert_eq!(reply.codes(), no_errors());
}

#[tokio::test]
async fn a_batch_shares_the_budget_of_its_client() {
    let app = spawn_app_with(|c| {
        c.client_budget = ClientBudget {
            burst: 4,
            per_minute: 1,
        };
    })
    .await;
    let batch: Vec<Value> = (0..10)
        .map(|i| json!({ "query": LOGIN, "variables": { "u": format!("guess{i}"), "p": "wrong" } }))
        .collect();
    let reply = app.post_json(None, &Value::Array(batch)).await;
    let mut codes: Vec<&str> = reply
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["errors"][0]["extensions"]["code"].as_str().unwrap())
        .collect();
    codes.sort_unstable();
    assert_eq!(
        codes,
        [vec!["RATE_LIMITED"; 6], vec!["UNAUTHENTICATED"; 4]].concat()
    );
}

#[tokio::test]
async fn hashing_has_a_bounded_queue_and_a_refusal_counts_as_no_failure() {
    let app = spawn_app_with(|c| {
        c.hash_limits = HashLimits {
            concurrency: 1,
            queue: 1,
            wait: std::time::Duration::from_millis(300),
            per_client: 8,
        };
    })
    .await;
    app.create_user("alice", false, false).await;
    // Every hashing thread is taken: one login waits in the queue and gives
    // up, the others find the queue full and are refused at once.
    let taken = app.state.hasher.occupy().await.unwrap();
    let requests = (0..3)
        .map(|_| {
            (
                None,
                LOGIN.to_owned(),
                json!({ "u": "alice", "p": "wrong" }),
            )
        })
        .collect();
    for reply in app.gql_concurrently(requests).await {
        assert_eq!(reply.codes(), vec!["SERVICE_UNAVAILABLE"], "{}", reply.body);
        assert_eq!(
            reply.body["errors"][0]["message"],
            json!("The server is busy; try again in a moment.")
        );
        assert_eq!(
            reply.body["errors"][0]["extensions"]["retryAfter"],
            json!(1)
        );
    }
    // No password was checked, so no failure was counted.
    let failures = login_failure::Entity::find().all(app.db()).await.unwrap();
    assert_eq!(failures.len(), 0);
    drop(taken);
    assert_eq!(app.state.hasher.load(), (0, 0));
    assert_eq!(login(&app, "alice", PASSWORD).await.codes(), no_errors());
}

#[tokio::test]
async fn one_network_cannot_take_the_whole_hashing_queue() {
    let app = spawn_app_with(|c| {
        behind_proxy(c);
        c.hash_limits = HashLimits {
            concurrency: 1,
            queue: 8,
            wait: std::time::Duration::from_secs(2),
            per_client: 1,
        };
    })
    .await;
    let taken = app.state.hasher.occupy().await.unwrap();
    // The first waits in the queue; the second of its network is refused at
    // once, though the queue has room; another network's waits too.
    let first = login_from_spawned(&app, "192.0.2.1");
    while app.state.hasher.load().1 == 0 {
        tokio::task::yield_now().await;
    }
    let second = login_from(&app, "192.0.2.1", "guess", "wrong").await;
    assert_eq!(second.codes(), vec!["RATE_LIMITED"]);
    assert_eq!(second.body["errors"][0]["message"], json!(BUDGET_SPENT));
    let other = login_from_spawned(&app, "192.0.2.2");
    while app.state.hasher.load().1 < 2 {
        tokio::task::yield_now().await;
    }
    drop(taken);
    for reply in [first.await.unwrap(), other.await.unwrap()] {
        assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
    }
}

/// A login from `client` on a task of its own.
fn login_from_spawned(app: &TestApp, client: &'static str) -> tokio::task::JoinHandle<Reply> {
    let (http, url) = (app.client.clone(), format!("{}/graphql", app.url));
    tokio::spawn(async move {
        let request = http
            .post(url)
            .header("x-forwarded-for", client)
            .json(&json!({ "query": LOGIN, "variables": { "u": "guess", "p": "wrong" } }));
        Reply::from(request.send().await.unwrap()).await
    })
}

#[tokio::test]
async fn refused_registrations_and_user_creations_hash_nothing() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let token = app.token_for(&root);
    let before = app.state.hasher.computed();
    let create = "mutation($input: CreateUserInput!) { createUser(input: $input) { id } }";
    for input in [
        json!({ "username": "root", "email": "x@example.com", "password": PASSWORD }),
        json!({ "username": "new", "email": "new@example.com", "password": PASSWORD, "divisionId": "999" }),
        json!({ "username": "new", "email": "new@example.com", "password": PASSWORD, "groupIds": ["999"] }),
    ] {
        let reply = app
            .gql_as(Some(&token), create, json!({ "input": input }))
            .await;
        assert_eq!(reply.codes().len(), 1, "{}", reply.body);
    }
    let reply = app
        .gql(REGISTER, json!({ "u": "ROOT", "e": "y@example.com" }))
        .await;
    assert_eq!(reply.codes(), vec!["CONFLICT"]);
    assert_eq!(app.state.hasher.computed(), before);
    let reply = app
        .gql(REGISTER, json!({ "u": "fresh", "e": "fresh@example.com" }))
        .await;
    assert_eq!(reply.codes(), no_errors());
    assert_eq!(app.state.hasher.computed(), before + 1);
}

/// The ways a user's sessions end, each run while a login is in flight.
#[tokio::test]
async fn a_login_straddling_the_end_of_sessions_gets_no_session() {
    let app = spawn_app().await;
    let root = app.create_user("root", true, true).await;
    let staff = app.token_for(&root);
    let enders = [
        ("changePassword", "alice"),
        ("setUserPassword", "bob"),
        ("deactivateUser", "carol"),
    ];
    for (ender, username) in enders {
        let victim = app.create_user(username, false, false).await;
        let own_token = app.token_for(&victim);
        let point = app.state.checkpoints.arm(checkpoints::LOGIN_VERIFIED);
        let in_flight = app.spawn_gql(None, LOGIN, json!({ "u": username, "p": PASSWORD }));
        point.reached().await;
        app.state.checkpoints.disarm(checkpoints::LOGIN_VERIFIED);
        let id = victim.id.to_string();
        let ended = match ender {
            "changePassword" => {
                app.gql_as(
                    Some(&own_token),
                    CHANGE_PASSWORD,
                    json!({ "c": PASSWORD, "n": NEW_PASSWORD }),
                )
                .await
            }
            "setUserPassword" => {
                app.gql_as(
                    Some(&staff),
                    "mutation($id: ID!, $p: String!) { setUserPassword(id: $id, password: $p) }",
                    json!({ "id": id, "p": NEW_PASSWORD }),
                )
                .await
            }
            _ => {
                app.gql_as(
                    Some(&staff),
                    "mutation($id: ID!) { deactivateUser(id: $id) { id } }",
                    json!({ "id": id }),
                )
                .await
            }
        };
        assert_eq!(ended.codes(), no_errors(), "{ender}: {}", ended.body);
        point.release();
        let login = in_flight.await.unwrap();
        assert_eq!(login.codes(), vec!["UNAUTHENTICATED"], "{ender}");
        assert_eq!(login.body["data"], Value::Null, "{ender}");
        let live = refresh_token::Entity::find()
            .filter(refresh_token::Column::UserId.eq(victim.id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .all(app.db())
            .await
            .unwrap();
        assert_eq!(live.len(), 0, "{ender}");
    }
}

#[tokio::test]
async fn a_refresh_straddling_a_password_change_leaves_no_usable_token() {
    let app = spawn_app().await;
    app.create_user("alice", false, false).await;
    let (access, refresh) = tokens(&login(&app, "alice", PASSWORD).await);
    let point = app.state.checkpoints.arm(checkpoints::REFRESH_ROTATING);
    let in_flight = app.spawn_gql(None, REFRESH, json!({ "t": refresh }));
    point.reached().await;
    app.state.checkpoints.disarm(checkpoints::REFRESH_ROTATING);
    // The change waits for the rotation's transaction, or sees it.
    let change = app.spawn_gql(
        Some(access),
        CHANGE_PASSWORD,
        json!({ "c": PASSWORD, "n": NEW_PASSWORD }),
    );
    point.release();
    let rotated = in_flight.await.unwrap();
    assert_eq!(change.await.unwrap().codes(), no_errors());
    assert_eq!(rotated.codes(), no_errors(), "{}", rotated.body);
    let payload = &rotated.body["data"]["refreshToken"];
    let (access, refresh) = (
        payload["accessToken"].as_str().unwrap(),
        payload["refreshToken"].as_str().unwrap(),
    );
    assert_eq!(
        app.gql_as(Some(access), ME, Value::Null).await.codes(),
        vec!["UNAUTHENTICATED"]
    );
    assert_eq!(
        app.gql(REFRESH, json!({ "t": refresh })).await.codes(),
        vec!["UNAUTHENTICATED"]
    );
}

#[tokio::test]
async fn a_rotation_that_stops_halfway_changes_nothing() {
    let app = spawn_app().await;
    app.create_user("alice", false, false).await;
    let (_, refresh) = tokens(&login(&app, "alice", PASSWORD).await);
    let point = app.state.checkpoints.arm(checkpoints::REFRESH_ROTATING);
    let state = app.state.clone();
    let presented = refresh.clone();
    // Stopped after retiring the token and before issuing the next one.
    let halfway =
        tokio::spawn(async move { accounts::refresh(&state, &presented, "192.0.2.1").await });
    point.reached().await;
    app.state.checkpoints.disarm(checkpoints::REFRESH_ROTATING);
    halfway.abort();
    assert!(halfway.await.is_err());
    // The retirement went with the missing insert: the token works, once.
    let reply = app.gql(REFRESH, json!({ "t": refresh })).await;
    assert_eq!(reply.codes(), no_errors(), "{}", reply.body);
    let rows = refresh_token::Entity::find().all(app.db()).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows.iter().filter(|r| r.retired_at.is_some()).count(), 1);
}

#[tokio::test]
async fn a_refresh_token_issued_under_an_older_version_is_refused() {
    let app = spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    let (_, refresh) = tokens(&login(&app, "alice", PASSWORD).await);
    // The version moves without the revocation (as if a revocation had
    // missed the token): the version alone refuses it.
    let mut row = user::Entity::find_by_id(alice.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap()
        .into_active_model();
    row.token_version = Set(alice.token_version + 1);
    row.update(app.db()).await.unwrap();
    app.forget_reads();
    assert_eq!(
        app.gql(REFRESH, json!({ "t": refresh })).await.codes(),
        vec!["UNAUTHENTICATED"]
    );
}

#[tokio::test]
async fn change_password_checks_the_database_not_a_cached_user() {
    let app = spawn_app().await;
    app.caches_on().await;
    let alice = app.create_user("alice", false, false).await;
    let token = app.token_for(&alice);
    assert_eq!(
        app.gql_as(Some(&token), ME, Value::Null).await.codes(),
        no_errors()
    );
    // Another process changed the password; this one's cache has not heard.
    let hash = app.state.hasher.hash(NEW_PASSWORD.into()).await.unwrap();
    let mut row = alice.clone().into_active_model();
    row.password_hash = Set(Some(hash.clone()));
    row.token_version = Set(alice.token_version + 1);
    row.update(app.db()).await.unwrap();
    let reply = app
        .gql_as(
            Some(&token),
            CHANGE_PASSWORD,
            json!({ "c": PASSWORD, "n": "Third-Passw0rd!y" }),
        )
        .await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
    let stored = user::Entity::find_by_id(alice.id)
        .one(app.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.password_hash, Some(hash));
}
