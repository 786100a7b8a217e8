//! GraphQL over HTTP as the contract's "Transport" section describes it.
#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use crate::helpers::{Reply, spawn_app, spawn_app_with};

#[tokio::test]
async fn me_is_null_for_anonymous_requests() {
    let app = spawn_app().await;
    let reply = app.gql("{ me { id } }", Value::Null).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "application/json");
    assert_eq!(reply.body, json!({ "data": { "me": null } }));
}

#[tokio::test]
async fn me_returns_the_user_of_a_valid_token_with_guarded_fields() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false, false).await;
    let token = app.token_for(&user);
    let reply = app
        .gql_as(
            Some(&token),
            "{ me { id username firstName lastName isActive email phoneNumber lastLogin isStaff isSuperuser division { id } groups { id } } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "me": {
            "id": user.id.to_string(), "username": "alice", "firstName": "", "lastName": "",
            "isActive": true, "email": "alice@example.com", "phoneNumber": null, "lastLogin": null,
            "isStaff": false, "isSuperuser": false, "division": null, "groups": []
        } } })
    );
}

#[tokio::test]
async fn date_joined_is_rfc3339_utc_to_the_second() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false, false).await;
    let reply = app
        .gql_as(
            Some(&app.token_for(&user)),
            "{ me { dateJoined } }",
            Value::Null,
        )
        .await;
    let expected = user.date_joined.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert_eq!(reply.body["data"]["me"]["dateJoined"], json!(expected));
}

#[tokio::test]
async fn me_resolves_division_parent_and_groups_with_member_counts() {
    let app = spawn_app().await;
    let main = app.create_division("Engineering", None, true).await;
    let sub = app.create_division("Platform", Some(main.id), true).await;
    let user = app.create_user("alice", false, false).await;
    let other = app.create_user("bob", false, false).await;
    sea_orm::EntityTrait::update(entity::user::ActiveModel {
        id: sea_orm::Set(user.id),
        division_id: sea_orm::Set(Some(sub.id)),
        ..Default::default()
    })
    .exec(app.db())
    .await
    .unwrap();
    let managers = app.create_group("Manager").await;
    let admins = app.create_group("admins").await;
    app.add_member(user.id, managers.id).await;
    app.add_member(user.id, admins.id).await;
    app.add_member(other.id, managers.id).await;

    let reply = app
        .gql_as(
            Some(&app.token_for(&user)),
            "{ me { division { name divisionType isActive parent { name divisionType parent { id } } } groups { name memberCount } } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "me": {
            "division": { "name": "Platform", "divisionType": "SUB", "isActive": true,
                          "parent": { "name": "Engineering", "divisionType": "MAIN", "parent": null } },
            "groups": [ { "name": "admins", "memberCount": 1 }, { "name": "Manager", "memberCount": 2 } ]
        } } })
    );
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated_never_anonymous() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false, false).await;
    let token = app.token_for(&user);
    let tampered = {
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[2] = parts[2].chars().rev().collect();
        parts.join(".")
    };
    for header in [
        "Bearer not-a-jwt".to_owned(),
        token.clone(), // no scheme
        format!("Basic {token}"),
        "Bearer ".to_owned(),
        format!("Bearer {tampered}"),
    ] {
        let response = app
            .client
            .post(format!("{}/graphql", app.url))
            .header("authorization", &header)
            .json(&json!({ "query": "{ me { id } }" }))
            .send()
            .await
            .unwrap();
        let reply = Reply::from(response).await;
        assert_eq!(reply.status, 200, "{header}");
        assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"], "{header}");
        assert_eq!(reply.body["data"], Value::Null, "{header}");
    }
}

#[tokio::test]
async fn token_of_a_deactivated_user_is_refused() {
    let app = spawn_app().await;
    let user = app.create_user("alice", false, false).await;
    let token = app.token_for(&user);
    sea_orm::EntityTrait::update(entity::user::ActiveModel {
        id: sea_orm::Set(user.id),
        is_active: sea_orm::Set(false),
        ..Default::default()
    })
    .exec(app.db())
    .await
    .unwrap();
    let reply = app.gql_as(Some(&token), "{ me { id } }", Value::Null).await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
}

#[tokio::test]
async fn parse_and_validation_errors_carry_codes_with_status_200() {
    let app = spawn_app().await;
    let reply = app.gql("{ me { id }", Value::Null).await;
    assert_eq!(
        (reply.status, reply.codes()),
        (200, vec!["GRAPHQL_PARSE_FAILED".to_owned()])
    );
    let reply = app.gql("{ nothing }", Value::Null).await;
    assert_eq!(
        (reply.status, reply.codes()),
        (200, vec!["GRAPHQL_VALIDATION_FAILED".to_owned()])
    );
    assert_eq!(
        reply.body["errors"][0]["message"],
        json!("Unknown field \"nothing\" on type \"Query\".")
    );
}

#[tokio::test]
async fn unknown_request_extensions_are_ignored() {
    let app = spawn_app().await;
    let body = json!({
        "query": "query Me { me { id } }",
        "operationName": "Me",
        "variables": {},
        "extensions": { "clientLibrary": { "name": "@apollo/client", "version": "3.11.0" } }
    });
    let reply = app.post_json(None, &body).await;
    assert_eq!(reply.body, json!({ "data": { "me": null } }));
}

#[tokio::test]
async fn graphql_response_json_is_served_to_clients_that_ask_for_it() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header(
            "accept",
            "application/graphql-response+json, application/json;q=0.9",
        )
        .json(&json!({ "query": "{ me { id } }" }))
        .send()
        .await
        .unwrap();
    let reply = Reply::from(response).await;
    assert_eq!(reply.content_type, "application/graphql-response+json");
    assert_eq!(reply.body, json!({ "data": { "me": null } }));
}

#[tokio::test]
async fn queries_work_over_get_and_mutations_are_refused() {
    let app = spawn_app().await;
    let get = |query: &str| {
        app.client
            .get(format!("{}/graphql", app.url))
            .query(&[("query", query)])
            .send()
    };
    let reply = Reply::from(get("{ me { id } }").await.unwrap()).await;
    assert_eq!(
        (reply.status, reply.body),
        (200, json!({ "data": { "me": null } }))
    );
    let reply = Reply::from(
        get("mutation { logout(refreshToken: \"x\") }")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.codes(), vec!["FORBIDDEN"]);
}

#[tokio::test]
async fn batches_of_up_to_ten_are_executed_and_larger_ones_refused() {
    let app = spawn_app().await;
    let one = json!({ "query": "{ me { id } }" });
    let reply = app
        .post_json(None, &json!([one, { "query": "{ __typename }" }]))
        .await;
    assert_eq!(
        reply.body,
        json!([{ "data": { "me": null } }, { "data": { "__typename": "Query" } }])
    );
    let ten: Vec<Value> = (0..10).map(|_| one.clone()).collect();
    let reply = app.post_json(None, &Value::Array(ten)).await;
    assert_eq!(reply.body.as_array().map(Vec::len), Some(10));
    let eleven: Vec<Value> = (0..11).map(|_| one.clone()).collect();
    let reply = app.post_json(None, &Value::Array(eleven)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_refused_with_413() {
    let app = spawn_app().await;
    let padding = " ".repeat(1024 * 1024);
    let body = format!("{{\"query\": \"{{ me {{ id }} }}\"{padding}}}");
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_400_parse_failure() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", "application/json")
        .body("{ this is not json")
        .send()
        .await
        .unwrap();
    let reply = Reply::from(response).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.codes(), vec!["GRAPHQL_PARSE_FAILED"]);
}

#[tokio::test]
async fn queries_deeper_than_the_limit_are_refused() {
    let app = spawn_app_with(|config| config.max_depth = 4).await;
    let reply = app
        .gql(
            "{ me { division { parent { parent { id } } } } }",
            Value::Null,
        )
        .await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert_eq!(reply.body["data"], Value::Null);
    let reply = app
        .gql("{ me { division { parent { id } } } }", Value::Null)
        .await;
    assert_eq!(reply.body, json!({ "data": { "me": null } }));
}

#[tokio::test]
async fn introspection_can_be_switched_off() {
    let app = spawn_app_with(|config| config.introspection = false).await;
    for document in [
        "{ __schema { queryType { name } } }",
        "{ __type(name: \"User\") { name } }",
        "query { ...F } fragment F on Query { __schema { types { name } } }",
    ] {
        let reply = app.gql(document, Value::Null).await;
        assert_eq!(
            reply.codes(),
            vec!["GRAPHQL_VALIDATION_FAILED"],
            "{document}"
        );
        assert_eq!(reply.body["data"], Value::Null, "{document}");
    }
    let reply = app.gql("{ __typename }", Value::Null).await;
    assert_eq!(reply.body, json!({ "data": { "__typename": "Query" } }));
    let app = spawn_app().await;
    let reply = app
        .gql("{ __schema { queryType { name } } }", Value::Null)
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "__schema": { "queryType": { "name": "Query" } } } })
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let status = |path: &'static str| {
        let url = format!("{}{path}", app.url);
        let client = app.client.clone();
        async move { client.get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(status("/readyz").await, 200);
    app.db().clone().close().await.unwrap();
    assert_eq!(status("/readyz").await, 503);
    assert_eq!(status("/healthz").await, 200);
}

#[tokio::test]
async fn cors_allows_the_configured_origins_with_auth_headers() {
    let app =
        spawn_app_with(|config| config.cors_origins = vec!["https://app.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let response = preflight("https://app.example.com").await.unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some("https://app.example.com")
    );
    assert_eq!(
        header("access-control-allow-headers").as_deref(),
        Some("authorization,content-type")
    );
    let response = preflight("https://evil.example.com").await.unwrap();
    assert_eq!(response.headers().get("access-control-allow-origin"), None);
}

#[tokio::test]
async fn cors_is_off_by_default() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("origin", "https://app.example.com")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("access-control-allow-origin"), None);
}

/// graphql-js's `getIntrospectionQuery()`, as GraphiQL and Apollo send it.
const STANDARD_INTROSPECTION: &str = r#"
query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
}
"#;

#[tokio::test]
async fn the_standard_introspection_query_always_passes_the_limits() {
    let app = spawn_app_with(|config| {
        config.max_depth = 2;
        config.max_complexity = 1;
    })
    .await;
    let reply = app.gql(STANDARD_INTROSPECTION, Value::Null).await;
    assert_eq!(reply.body.get("errors"), None);
    assert_eq!(
        reply.body["data"]["__schema"]["queryType"],
        json!({ "name": "Query" })
    );
}

#[tokio::test]
async fn queries_above_the_complexity_limit_are_refused_and_typename_is_free() {
    let app = spawn_app_with(|config| config.max_complexity = 3).await;
    let reply = app
        .gql(
            "{ me { id username } __typename a: __typename }",
            Value::Null,
        )
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "me": null, "__typename": "Query", "a": "Query" } })
    );
    let reply = app
        .gql("{ me { id username firstName } }", Value::Null)
        .await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert_eq!(
        reply.body["errors"][0]["message"],
        json!("The query's complexity 4 is above the limit of 3 (ROSTER_MAX_COMPLEXITY).")
    );
}

#[tokio::test]
async fn too_many_root_fields_or_aliases_are_refused() {
    let app = spawn_app().await;
    let fields: String = (0..65).map(|i| format!("f{i}: __typename ")).collect();
    let reply = app.gql(&format!("{{ {fields} }}"), Value::Null).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert_eq!(
        reply.body["errors"][0]["message"],
        json!("An operation may select at most 64 root fields.")
    );
    let nested: String = (0..129).map(|i| format!("f{i}: id ")).collect();
    let reply = app
        .gql(&format!("{{ me {{ {nested} }} }}"), Value::Null)
        .await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    let fields: String = (0..64).map(|i| format!("f{i}: __typename ")).collect();
    let reply = app.gql(&format!("{{ {fields} }}"), Value::Null).await;
    assert_eq!(reply.body["data"]["f63"], json!("Query"));
}

/// Documents are parsed once and kept by their text: a kept document still
/// answers each request by its own variables and operation name, and a
/// mutation sent over GET is refused however often it comes.
#[tokio::test]
async fn a_document_sent_again_answers_by_its_own_variables_and_operation() {
    let app = spawn_app().await;
    let skip = "query($skip: Boolean!) { __typename me @skip(if: $skip) { id } }";
    for (variables, expected) in [
        (
            json!({ "skip": true }),
            json!({ "data": { "__typename": "Query" } }),
        ),
        (
            json!({ "skip": false }),
            json!({ "data": { "__typename": "Query", "me": null } }),
        ),
        (
            json!({ "skip": true }),
            json!({ "data": { "__typename": "Query" } }),
        ),
    ] {
        assert_eq!(app.gql(skip, variables).await.body, expected);
    }

    let two = "query A { a: __typename } query B { b: __typename }";
    for (name, expected) in [
        ("B", json!({ "b": "Query" })),
        ("A", json!({ "a": "Query" })),
    ] {
        let reply = app
            .post_json(None, &json!({ "query": two, "operationName": name }))
            .await;
        assert_eq!(reply.body, json!({ "data": expected }));
    }

    for _ in 0..2 {
        let reply = app.gql("{ __typename ", Value::Null).await;
        assert_eq!(reply.codes(), vec!["GRAPHQL_PARSE_FAILED"]);
        let reply = Reply::from(
            app.client
                .get(format!("{}/graphql", app.url))
                .query(&[("query", "mutation { logout(refreshToken: \"x\") }")])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            (reply.status, reply.codes()),
            (405, vec!["FORBIDDEN".to_owned()])
        );
    }
}
