//! What an operator sees of a running `roster serve`: request ids and log
//! lines, as text and as JSON.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    helpers::{PASSWORD, fresh_database},
    processes::{Server, create_superuser, start_with},
};

/// POSTs `query` with an `x-request-id` when given; the answer's id and
/// body.
async fn send(server: &Server, id: Option<&str>, query: &str, variables: Value) -> (String, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", server.url))
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let response = request.send().await.unwrap();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    (id, response.json().await.unwrap())
}

/// The lines logged once the server has written `count` lines that
/// contain `needle` (it writes them after answering).
async fn lines_with(server: &Server, needle: &str, count: usize) -> Vec<String> {
    for _ in 0..100 {
        let lines = server.log_lines();
        if lines.iter().filter(|l| l.contains(needle)).count() >= count {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "fewer than {count} lines with {needle}: {:#?}",
        server.log_lines()
    );
}

fn is_new_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn every_request_has_an_id_on_its_answer_and_on_each_of_its_json_log_lines() {
    let (url, _dir) = fresh_database().await;
    create_superuser(&url, "root");
    let server = start_with(
        &url,
        &[
            ("ROSTER_LOG_FORMAT", "json"),
            ("ROSTER_LOG", "info,roster::http=debug,roster::sql=trace"),
        ],
    );
    let login = "mutation LogIn($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken } }";
    let (id, body) = send(
        &server,
        Some("client-id-42"),
        login,
        json!({ "u": "root", "p": PASSWORD }),
    )
    .await;
    assert_eq!(id, "client-id-42");
    let token = body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = "Not-The-Password-31337";
    let (id, body) = send(
        &server,
        Some("a b"),
        login,
        json!({ "u": "root", "p": wrong }),
    )
    .await;
    assert!(is_new_id(&id), "{id}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED")
    );
    let (other, _) = send(&server, None, "{ __typename }", Value::Null).await;
    assert!(is_new_id(&other) && other != id, "{other}");

    let lines = lines_with(&server, "request finished", 3).await;
    let parsed: Vec<Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    for line in &parsed {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(line[key].is_string(), "{key}: {line}");
        }
    }
    // The login's lines: its statements and its end, each with its id,
    // method, path and operation.
    let of_login: Vec<&Value> = parsed
        .iter()
        .filter(|l| l["span"]["request_id"] == json!("client-id-42"))
        .collect();
    assert!(
        of_login.iter().any(|l| l["target"] == json!("roster::sql")),
        "{of_login:#?}"
    );
    let finished = of_login
        .iter()
        .find(|l| l["message"] == json!("request finished"))
        .unwrap();
    assert_eq!(finished["status"], json!(200));
    assert_eq!(
        (
            &finished["span"]["method"],
            &finished["span"]["path"],
            &finished["span"]["operation"]
        ),
        (&json!("POST"), &json!("/graphql"), &json!("LogIn"))
    );
    // Never a password, a token or a hash.
    let all = lines.join("\n");
    for secret in [PASSWORD, wrong, token.as_str(), "$argon2id$"] {
        assert!(!all.contains(secret), "{secret} in the log");
    }
}

#[tokio::test]
async fn text_log_lines_carry_the_request_id_too() {
    let (url, _dir) = fresh_database().await;
    let server = start_with(&url, &[("ROSTER_LOG", "info,roster::http=debug")]);
    // A name that is not a GraphQL name never reaches a line.
    let forged = json!({ "query": "query Ping { __typename }", "operationName": "Ping\n2026-12-02T00:00:00Z ERROR forged" });
    let response = reqwest::Client::new()
        .post(format!("{}/graphql", server.url))
        .header("x-request-id", "text-id-6")
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (id, _) = send(
        &server,
        Some("text-id-7"),
        "query Ping { __typename }",
        Value::Null,
    )
    .await;
    assert_eq!(id, "text-id-7");
    let lines = lines_with(&server, "request_id=text-id-7", 1).await;
    let finished = lines
        .iter()
        .find(|l| l.contains("request_id=text-id-7"))
        .unwrap();
    assert!(finished.contains("operation=Ping"), "{finished}");
    assert!(serde_json::from_str::<Value>(finished).is_err());
    assert!(!lines.iter().any(|l| l.contains("forged")), "{lines:#?}");
    let refused = lines
        .iter()
        .find(|l| l.contains("request_id=text-id-6"))
        .unwrap();
    assert!(!refused.contains("operation="), "{refused}");
}

#[tokio::test]
async fn a_first_start_says_how_to_create_the_first_superuser_and_notices_stay_quiet() {
    let (url, _dir) = fresh_database().await;
    let hint = "no users yet: create the first superuser with `roster create-superuser --username admin --email admin@example.com`";
    let first = start_with(&url, &[]);
    let lines = lines_with(&first, "no users yet", 1).await;
    assert_eq!(
        lines.iter().filter(|l| l.contains(hint)).count(),
        1,
        "{lines:#?}"
    );
    drop(first);
    create_superuser(&url, "root");
    // Started again on a database that has users and is migrated: no hint,
    // and none of PostgreSQL's "already exists, skipping" notices.
    let again = start_with(&url, &[]);
    let (_, body) = send(&again, None, "{ __typename }", Value::Null).await;
    assert_eq!(body, json!({ "data": { "__typename": "Query" } }));
    let lines = again.log_lines();
    assert!(
        lines.iter().any(|l| l.contains("listening on")),
        "{lines:#?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("no users yet") || l.contains("skipping")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn graphiql_welcomes_with_the_login_mutation() {
    let app = crate::helpers::spawn_app().await;
    let script = app
        .client
        .get(format!("{}/graphiql/init.js", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        script.contains(r#"login(input: {username: "admin", password: "..."})"#),
        "{script}"
    );
}

/// The samples of a text exposition, by name and labels sorted by name
/// (`name{a="1",b="2"}`).
fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let key = match series.split_once('{') {
                Some((name, labels)) => {
                    let mut labels: Vec<&str> = labels.trim_end_matches('}').split(',').collect();
                    labels.sort_unstable();
                    format!("{name}{{{}}}", labels.join(","))
                }
                None => series.to_owned(),
            };
            (key, value.parse().unwrap())
        })
        .collect()
}

async fn scrape(url: &str) -> (u16, String) {
    let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_exactly_what_was_asked_and_name_every_family() {
    let (url, _dir) = fresh_database().await;
    create_superuser(&url, "root");
    let server = start_with(&url, &[("ROSTER_METRICS", "true")]);
    let login = "mutation LogIn($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken } }";
    let (_, body) = send(&server, None, login, json!({ "u": "root", "p": PASSWORD })).await;
    let token = body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    send(
        &server,
        None,
        login,
        json!({ "u": "root", "p": "wrong-password" }),
    )
    .await;
    for _ in 0..2 {
        let reply = reqwest::Client::new()
            .post(format!("{}/graphql", server.url))
            .bearer_auth(&token)
            .json(&json!({ "query": "query Me { me { username } }" }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    send(&server, None, "{ __typename }", Value::Null).await;
    assert_eq!(
        reqwest::get(format!("{}/healthz", server.url))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{}/nope/1", server.url))
            .await
            .unwrap()
            .status(),
        404
    );

    let (status, text) = scrape(&server.url).await;
    assert_eq!(status, 200);
    let samples = samples(&text);
    let expected = [
        (
            r#"roster_http_requests_total{route="/graphql",status="200"}"#,
            5.0,
        ),
        (
            r#"roster_http_requests_total{route="/healthz",status="200"}"#,
            1.0,
        ),
        (
            r#"roster_http_requests_total{route="other",status="404"}"#,
            1.0,
        ),
        (
            r#"roster_graphql_operations_total{operation="LogIn",type="mutation"}"#,
            2.0,
        ),
        (
            r#"roster_graphql_operations_total{operation="Me",type="query"}"#,
            2.0,
        ),
        (
            r#"roster_graphql_operations_total{operation="(anonymous)",type="query"}"#,
            1.0,
        ),
        (
            r#"roster_graphql_operation_duration_seconds_count{operation="Me",type="query"}"#,
            2.0,
        ),
        (
            r#"roster_graphql_errors_total{code="UNAUTHENTICATED"}"#,
            1.0,
        ),
        ("roster_login_failures_total", 1.0),
        (r#"roster_password_hashes{state="queued"}"#, 0.0),
        (r#"roster_password_hashes{state="in_flight"}"#, 0.0),
        ("roster_webhook_queue_depth", 0.0),
        (r#"roster_webhook_attempts_total{outcome="succeeded"}"#, 0.0),
        ("roster_db_statement_failures_total", 0.0),
    ];
    for (series, value) in expected {
        assert_eq!(samples.get(series), Some(&value), "{series}\n{text}");
    }
    for family in [
        "# TYPE roster_graphql_operation_duration_seconds histogram",
        "# TYPE roster_db_statement_duration_seconds histogram",
        "roster_db_pool_connections{state=\"in_use\"}",
        "roster_db_pool_connections{state=\"max\"}",
        "roster_cache_hits_total{cache=\"users\"}",
        "roster_cache_misses_total{cache=\"counts\"}",
        "roster_cache_entries{cache=\"groups\"}",
        "roster_cache_bytes{cache=\"divisions\"}",
    ] {
        assert!(text.contains(family), "{family}\n{text}");
    }
    assert!(
        samples[r#"roster_db_statement_duration_seconds_count"#] >= 5.0,
        "{text}"
    );
    // Each statement's wait for a connection, from sqlx's pool.
    assert!(
        samples.get("roster_db_pool_acquire_seconds_count") >= Some(&5.0),
        "{text}"
    );
    // Nothing secret in it.
    assert!(!text.contains(&token) && !text.contains(PASSWORD));
}

#[tokio::test]
async fn ten_thousand_operation_names_make_a_bounded_number_of_series() {
    let (url, _dir) = fresh_database().await;
    let server = start_with(
        &url,
        &[
            ("ROSTER_METRICS", "true"),
            ("ROSTER_METRICS_MAX_OPERATION_NAMES", "50"),
        ],
    );
    let client = reqwest::Client::new();
    // Names of no operation that runs take no place, nor do names that are
    // not GraphQL names (counted as anonymous when their operation runs).
    for i in 0..60 {
        let junk = json!({ "query": "{ __typename }", "operationName": format!("Junk{i}\n{}", "x".repeat(1_000)) });
        client
            .post(format!("{}/graphql", server.url))
            .json(&junk)
            .send()
            .await
            .unwrap();
        let long = format!("query {} {{ __typename }}", "L".repeat(65 + i));
        let reply = client
            .post(format!("{}/graphql", server.url))
            .json(&json!({ "query": long }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    for batch in 0..1_000 {
        let operations: Vec<Value> = (0..10)
            .map(|i| json!({ "query": format!("query Op{batch}x{i} {{ __typename }}") }))
            .collect();
        let reply = client
            .post(format!("{}/graphql", server.url))
            .json(&operations)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200);
    }
    let (_, text) = scrape(&server.url).await;
    let samples = samples(&text);
    let named = samples
        .keys()
        .filter(|k| k.starts_with("roster_graphql_operations_total{"))
        .count();
    assert_eq!(named, 52, "{text}");
    assert_eq!(
        samples.get(r#"roster_graphql_operations_total{operation="(anonymous)",type="query"}"#),
        Some(&60.0)
    );
    assert_eq!(
        samples.get(r#"roster_graphql_operations_total{operation="(other)",type="query"}"#),
        Some(&(10_000.0 - 50.0))
    );
    // 52 counters and 52 histograms of 17 lines each: under 128 KiB
    // however many names come.
    let lines = text.lines().filter(|l| l.contains("operation=\"")).count();
    assert_eq!(lines, 52 * (1 + 14 + 1 + 2), "{text}");
    assert!(text.len() < 128 * 1024, "{}", text.len());
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own_and_are_off_by_default() {
    let (url, _dir) = fresh_database().await;
    let server = start_with(&url, &[("ROSTER_METRICS_BIND", "127.0.0.1:0")]);
    let lines = lines_with(&server, "metrics at http://", 1).await;
    let metrics_url = lines
        .iter()
        .find_map(|l| l.split("metrics at ").nth(1))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches("/metrics")
        .to_owned();
    send(&server, None, "{ __typename }", Value::Null).await;
    let (status, text) = scrape(&metrics_url).await;
    assert_eq!(status, 200);
    assert!(
        text.contains(r#"roster_http_requests_total{route="/graphql",status="200"} 1"#),
        "{text}"
    );
    // Not on the public port.
    assert_eq!(scrape(&server.url).await.0, 404);
    let off = start_with(&url, &[]);
    assert_eq!(scrape(&off.url).await.0, 404);
}
