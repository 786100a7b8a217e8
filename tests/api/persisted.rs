//! Documents named instead of sent: Apollo's automatic persisted queries
//! (over POST and GET) and a trusted-documents manifest.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use roster::http::persisted_queries::TrustedDocuments;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

const ME: &str = "query Me { me { username } }";

fn sha256(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

/// POSTs `body` (a GraphQL request object) with `token`.
async fn post(app: &TestApp, token: Option<&str>, body: Value) -> Reply {
    app.post_json(token, &body).await
}

async fn get(app: &TestApp, params: &[(&str, String)]) -> (Reply, Option<String>) {
    let response = app
        .client
        .get(format!("{}/graphql", app.url))
        .query(params)
        .send()
        .await
        .unwrap();
    let cache_control = response
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    (Reply::from(response).await, cache_control)
}

/// The first error's message and code.
fn error_of(reply: &Reply) -> (Value, Value) {
    let error = &reply.body["errors"][0];
    (
        error["message"].clone(),
        error["extensions"]["code"].clone(),
    )
}

#[tokio::test]
async fn a_document_is_sent_once_with_its_hash_then_by_the_hash_alone() {
    let app = spawn_app().await;
    let user = app.create_user("ada", false, false).await;
    let token = app.token_for(&user);
    let hash = sha256(ME);
    // Not known yet: the answer Apollo Client retries on, never cached.
    let (reply, cache_control) = get(&app, &[("extensions", persisted(&hash).to_string())]).await;
    assert_eq!(
        error_of(&reply),
        (
            json!("PersistedQueryNotFound"),
            json!("PERSISTED_QUERY_NOT_FOUND")
        )
    );
    assert_eq!(reply.body.get("data"), None);
    assert_eq!(
        cache_control.as_deref(),
        Some("private, no-cache, must-revalidate")
    );
    // The document with its hash runs and is kept.
    let reply = post(
        &app,
        Some(&token),
        json!({ "query": ME, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "me": { "username": "ada" } } })
    );
    // Then the hash alone, over POST (any case of hex digits) and GET.
    let reply = post(
        &app,
        Some(&token),
        json!({ "extensions": persisted(&hash.to_uppercase()) }),
    )
    .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "me": { "username": "ada" } } })
    );
    let (reply, cache_control) = get(
        &app,
        &[
            ("operationName", "Me".to_owned()),
            ("variables", "{}".to_owned()),
            ("extensions", persisted(&hash).to_string()),
        ],
    )
    .await;
    assert_eq!(
        (reply.status, reply.body),
        (200, json!({ "data": { "me": null } }))
    );
    assert_eq!(cache_control, None);
}

#[tokio::test]
async fn a_wrong_hash_or_extension_is_bad_input_and_keeps_nothing() {
    let app = spawn_app().await;
    let other = sha256("{ __typename }");
    let reply = post(
        &app,
        None,
        json!({ "query": ME, "extensions": persisted(&other) }),
    )
    .await;
    assert_eq!(
        error_of(&reply),
        (
            json!("The persisted query's sha256Hash is not the SHA-256 of its query."),
            json!("BAD_USER_INPUT")
        )
    );
    assert_eq!(reply.body.get("data"), None);
    // Neither the document nor the hash it was sent with was kept.
    for hash in [other, sha256(ME)] {
        let reply = post(&app, None, json!({ "extensions": persisted(&hash) })).await;
        assert_eq!(reply.codes(), vec!["PERSISTED_QUERY_NOT_FOUND"]);
    }
    let malformed = [
        json!({ "persistedQuery": { "version": 2, "sha256Hash": sha256(ME) } }),
        json!({ "persistedQuery": { "sha256Hash": sha256(ME) } }),
        json!({ "persistedQuery": { "version": 1 } }),
        json!({ "persistedQuery": { "version": 1, "sha256Hash": 7 } }),
        json!({ "persistedQuery": { "version": 1, "sha256Hash": "x".repeat(300) } }),
        json!({ "persistedQuery": "abc" }),
    ];
    for extensions in malformed {
        let reply = post(&app, None, json!({ "query": ME, "extensions": extensions })).await;
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"], "{extensions}");
        assert_eq!(reply.body.get("data"), None);
    }
    // A hash of any other shape cannot name a kept document.
    let reply = post(&app, None, json!({ "extensions": persisted("not-a-hash") })).await;
    assert_eq!(reply.codes(), vec!["PERSISTED_QUERY_NOT_FOUND"]);
}

#[tokio::test]
async fn only_documents_that_pass_the_limits_are_kept_and_get_cannot_mutate() {
    let app = spawn_app_with(|config| config.max_depth = 2).await;
    let deep = "{ me { division { parent { name } } } }";
    let reply = post(
        &app,
        None,
        json!({ "query": deep, "extensions": persisted(&sha256(deep)) }),
    )
    .await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    let reply = post(
        &app,
        None,
        json!({ "extensions": persisted(&sha256(deep)) }),
    )
    .await;
    assert_eq!(reply.codes(), vec!["PERSISTED_QUERY_NOT_FOUND"]);
    // A mutation kept over POST is still refused over GET.
    let logout = "mutation { logout(refreshToken: \"x\") }";
    let reply = post(
        &app,
        None,
        json!({ "query": logout, "extensions": persisted(&sha256(logout)) }),
    )
    .await;
    assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
    let (reply, _) = get(
        &app,
        &[("extensions", persisted(&sha256(logout)).to_string())],
    )
    .await;
    assert_eq!(
        (reply.status, reply.codes()),
        (405, vec!["FORBIDDEN".to_owned()])
    );
    // Kept only once it has run: not when refused over GET, not when it
    // does not validate, not when a bad token stops the request.
    let deactivate = "mutation { deactivateUser(id: \"1\") { id } }";
    let (reply, _) = get(
        &app,
        &[
            ("query", deactivate.to_owned()),
            ("extensions", persisted(&sha256(deactivate)).to_string()),
        ],
    )
    .await;
    assert_eq!(reply.status, 405);
    let unknown = "{ me { shoeSize } }";
    let reply = post(
        &app,
        None,
        json!({ "query": unknown, "extensions": persisted(&sha256(unknown)) }),
    )
    .await;
    assert_eq!(reply.codes(), vec!["GRAPHQL_VALIDATION_FAILED"]);
    let me = "{ me { id } }";
    let reply = post(
        &app,
        Some("bad-token"),
        json!({ "query": me, "extensions": persisted(&sha256(me)) }),
    )
    .await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
    for document in [deactivate, unknown, me] {
        let reply = post(
            &app,
            None,
            json!({ "extensions": persisted(&sha256(document)) }),
        )
        .await;
        assert_eq!(
            reply.codes(),
            vec!["PERSISTED_QUERY_NOT_FOUND"],
            "{document}"
        );
    }
}

#[tokio::test]
async fn the_store_is_bounded_and_long_documents_run_but_are_not_kept() {
    let app = spawn_app_with(|config| {
        config.documents.automatic_max_bytes = 600;
        config.documents.max_kept_document_bytes = 300;
    })
    .await;
    let documents: Vec<String> = (0..4).map(|i| format!("{{ a{i}: __typename }}")).collect();
    let send =
        |document: &str| json!({ "query": document, "extensions": persisted(&sha256(document)) });
    let by_hash = |document: &str| json!({ "extensions": persisted(&sha256(document)) });
    for document in &documents[..3] {
        assert_eq!(
            post(&app, None, send(document)).await.codes(),
            Vec::<String>::new()
        );
    }
    // Each weighs 96 + 64 + its 17 bytes: three fit in 600 bytes, and
    // sending one of them again does not empty the store.
    post(&app, None, send(&documents[0])).await;
    for document in &documents[..3] {
        let reply = post(&app, None, by_hash(document)).await;
        assert_eq!(reply.codes(), Vec::<String>::new(), "{document}");
    }
    // A fourth empties it, then is kept.
    post(&app, None, send(&documents[3])).await;
    assert_eq!(
        post(&app, None, by_hash(&documents[0])).await.codes(),
        vec!["PERSISTED_QUERY_NOT_FOUND"]
    );
    assert_eq!(
        post(&app, None, by_hash(&documents[3])).await.codes(),
        Vec::<String>::new()
    );
    // Longer than 300 bytes: it runs, and is not kept.
    let long = format!("{{ {} }}", "__typename ".repeat(30));
    let reply = post(&app, None, send(&long)).await;
    assert_eq!(reply.body, json!({ "data": { "__typename": "Query" } }));
    assert_eq!(
        post(&app, None, by_hash(&long)).await.codes(),
        vec!["PERSISTED_QUERY_NOT_FOUND"]
    );
}

#[tokio::test]
async fn not_found_is_a_request_error_in_a_batch_and_for_graphql_response_json() {
    let app = spawn_app().await;
    let batch = json!([{ "query": "{ __typename }" }, { "extensions": persisted(&sha256(ME)) }]);
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["cache-control"],
        "private, no-cache, must-revalidate"
    );
    let reply = Reply::from(response).await;
    assert_eq!(reply.body[0], json!({ "data": { "__typename": "Query" } }));
    assert_eq!(
        reply.body[1]["errors"][0]["extensions"]["code"],
        json!("PERSISTED_QUERY_NOT_FOUND")
    );
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "extensions": persisted(&sha256(ME)) }))
        .send()
        .await
        .unwrap();
    let reply = Reply::from(response).await;
    assert_eq!(
        (reply.status, reply.codes()),
        (400, vec!["PERSISTED_QUERY_NOT_FOUND".to_owned()])
    );
}

#[tokio::test]
async fn with_persisted_queries_off_a_hash_alone_is_not_supported() {
    let app = spawn_app_with(|config| config.documents.automatic = false).await;
    let hash = sha256(ME);
    let reply = post(
        &app,
        None,
        json!({ "query": ME, "extensions": persisted(&hash) }),
    )
    .await;
    assert_eq!(reply.body, json!({ "data": { "me": null } }));
    let reply = post(&app, None, json!({ "extensions": persisted(&hash) })).await;
    assert_eq!(
        error_of(&reply),
        (
            json!("PersistedQueryNotSupported"),
            json!("PERSISTED_QUERY_NOT_SUPPORTED")
        )
    );
}

/// A write-only account API: registration, reading and changing one's own
/// account, and nothing else, whoever asks.
const MANIFEST: &str = r#"{
  "format": "apollo-persisted-query-manifest",
  "version": 1,
  "operations": [
    {
      "id": "register-v1",
      "name": "Register",
      "type": "mutation",
      "body": "mutation Register($input: RegisterInput!) { register(input: $input) { username } }"
    },
    {
      "id": "me-v1",
      "name": "Me",
      "type": "query",
      "body": "query Me { me { username } }"
    }
  ]
}"#;

async fn trusted_app(staff_bypass: bool) -> TestApp {
    let trusted = Arc::new(TrustedDocuments::parse(MANIFEST).unwrap());
    spawn_app_with(move |config| {
        config.documents.trusted = Some(trusted);
        config.documents.trusted_only = true;
        config.documents.staff_bypass = staff_bypass;
    })
    .await
}

const USERS: &str = "{ users { nodes { username email } } }";

#[tokio::test]
async fn when_only_trusted_documents_run_anything_else_is_refused_unread() {
    let app = trusted_app(false).await;
    let boss = app.create_user("boss", true, true).await;
    let token = app.token_for(&boss);
    // By id, or the body whole.
    let reply = post(
        &app,
        Some(&token),
        json!({ "extensions": persisted("me-v1") }),
    )
    .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "me": { "username": "boss" } } })
    );
    let reply = post(&app, Some(&token), json!({ "query": ME })).await;
    assert_eq!(
        reply.body,
        json!({ "data": { "me": { "username": "boss" } } })
    );
    let register = json!({ "extensions": persisted("register-v1"), "variables": { "input": {
        "username": "newcomer", "email": "newcomer@example.com", "password": "a long enough passphrase"
    } } });
    let reply = post(&app, None, register).await;
    assert_eq!(
        reply.body,
        json!({ "data": { "register": { "username": "newcomer" } } })
    );
    // No listing, even for a superuser; no introspection; nothing that
    // does not parse is parsed.
    for query in [
        USERS,
        "{ __schema { types { name } } }",
        "{ me { username }",
        "{ me { username } }",
    ] {
        let reply = post(&app, Some(&token), json!({ "query": query })).await;
        assert_eq!(
            error_of(&reply),
            (
                json!("Only the trusted documents of this server run; this is not one of them."),
                json!("DOCUMENT_NOT_TRUSTED")
            ),
            "{query}"
        );
        assert_eq!(reply.body.get("data"), None);
    }
    // An id the manifest does not hold, and a hash Apollo's link would send.
    for hash in ["users-v1".to_owned(), sha256(USERS)] {
        let reply = post(
            &app,
            Some(&token),
            json!({ "extensions": persisted(&hash) }),
        )
        .await;
        assert_eq!(reply.codes(), vec!["PERSISTED_QUERY_NOT_IN_LIST"]);
    }
    // Sent with the hash Apollo's link computes: not kept, still refused.
    let reply = post(
        &app,
        Some(&token),
        json!({ "query": USERS, "extensions": persisted(&sha256(USERS)) }),
    )
    .await;
    assert_eq!(reply.codes(), vec!["DOCUMENT_NOT_TRUSTED"]);
    // Ids are matched exactly.
    let reply = post(
        &app,
        Some(&token),
        json!({ "extensions": persisted("ME-V1") }),
    )
    .await;
    assert_eq!(reply.codes(), vec!["PERSISTED_QUERY_NOT_IN_LIST"]);
    // A trusted mutation is still refused over GET.
    let (reply, _) = get(
        &app,
        &[("extensions", persisted("register-v1").to_string())],
    )
    .await;
    assert_eq!(
        (reply.status, reply.codes()),
        (405, vec!["FORBIDDEN".to_owned()])
    );
    // A manifest id with another body is a mismatch.
    let reply = post(
        &app,
        Some(&token),
        json!({ "query": USERS, "extensions": persisted("me-v1") }),
    )
    .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    // In a batch, each operation is judged on its own.
    let reply = post(
        &app,
        Some(&token),
        json!([{ "query": ME }, { "query": USERS }]),
    )
    .await;
    assert_eq!(reply.body[0]["data"]["me"]["username"], json!("boss"));
    assert_eq!(
        reply.body[1]["errors"][0]["extensions"]["code"],
        json!("DOCUMENT_NOT_TRUSTED")
    );
}

#[tokio::test]
async fn staff_may_send_any_document_only_when_the_bypass_is_on() {
    for bypass in [false, true] {
        let app = trusted_app(bypass).await;
        let staff = app.create_user("staffer", true, false).await;
        let member = app.create_user("member", false, false).await;
        let (staff_token, member_token) = (app.token_for(&staff), app.token_for(&member));
        let reply = post(&app, Some(&staff_token), json!({ "query": USERS })).await;
        if bypass {
            assert_eq!(reply.codes(), Vec::<String>::new(), "{}", reply.body);
            assert_eq!(
                reply.body["data"]["users"]["nodes"][0]["username"],
                json!("staffer")
            );
        } else {
            assert_eq!(reply.codes(), vec!["DOCUMENT_NOT_TRUSTED"]);
        }
        for token in [Some(member_token.as_str()), None] {
            let reply = post(&app, token, json!({ "query": USERS })).await;
            assert_eq!(reply.codes(), vec!["DOCUMENT_NOT_TRUSTED"], "{bypass}");
        }
        // A bad token is still a bad token.
        let reply = post(&app, Some("not-a-token"), json!({ "query": USERS })).await;
        assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"], "{bypass}");
    }
}

/// The README's write-only manifest loads, and each of its documents runs
/// (it is valid against the schema).
#[tokio::test]
async fn the_readme_manifest_is_valid() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```json\n  {\n    \"format\": \"apollo-persisted")
        .unwrap()
        + 7;
    let end = start + readme[start..].find("```").unwrap();
    let manifest: Value = serde_json::from_str(&readme[start..end]).unwrap();
    let trusted = Arc::new(TrustedDocuments::parse(&manifest.to_string()).unwrap());
    assert_eq!(trusted.len(), 5);
    let app = spawn_app_with(move |config| {
        config.documents.trusted = Some(trusted);
        config.documents.trusted_only = true;
    })
    .await;
    let boss = app.create_user("boss", true, true).await;
    let token = app.token_for(&boss);
    let variables = |id: &str| match id {
        "register" => json!({ "input": {
            "username": "newcomer", "email": "newcomer@example.com", "password": "a long enough passphrase"
        } }),
        "login" => json!({ "input": { "username": "boss", "password": crate::helpers::PASSWORD } }),
        "update" => json!({ "id": boss.id.to_string(), "input": { "firstName": "Boss" } }),
        "delete" => json!({ "id": "999999" }),
        _ => json!({}),
    };
    for operation in manifest["operations"].as_array().unwrap() {
        let id = operation["id"].as_str().unwrap();
        let body = json!({ "extensions": persisted(id), "variables": variables(id) });
        let reply = post(&app, Some(&token), body).await;
        // Ran: a document that does not validate has no `data`.
        assert!(reply.body.get("data").is_some(), "{id}: {}", reply.body);
        let expected: &[&str] = if id == "delete" { &["NOT_FOUND"] } else { &[] };
        assert_eq!(reply.codes(), expected, "{id}: {}", reply.body);
    }
}
