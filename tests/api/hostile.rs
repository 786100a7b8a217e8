//! Hostile clients: documents, filters, bodies and connections built to be
//! expensive are refused with the contract's codes, and nothing they send
//! yields a panic, a 5xx or `INTERNAL_SERVER_ERROR`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

/// `query{...F0}` where each of `levels` fragments spreads the next three
/// times: tiny, but 3^levels selections once expanded.
pub(crate) fn fragment_bomb(levels: usize) -> String {
    let mut document = String::from("query { ...F0 }\n");
    for i in 0..levels {
        let next = i + 1;
        document.push_str(&format!(
            "fragment F{i} on Query {{ ...F{next} ...F{next} ...F{next} }}\n"
        ));
    }
    document.push_str(&format!("fragment F{levels} on Query {{ __typename }}\n"));
    document
}

/// `{__schema{...S}}` where `S` selects `types` under `n` aliases, each
/// `fields` under `n` aliases, each `type` under `n` aliases (2.5 KB at 50).
pub(crate) fn aliased_introspection(n: usize) -> String {
    let aliases = |name: &str, inner: &str| -> String {
        (0..n)
            .map(|i| format!("{name}{i}: {name} {{ {inner} }} "))
            .collect()
    };
    format!(
        "{{ __schema {{ ...S }} }}\nfragment S on __Schema {{ {} }}\nfragment T on __Type {{ {} }}\nfragment F on __Field {{ {} }}",
        aliases("types", "...T"),
        aliases("fields", "...F"),
        aliases("type", "name"),
    )
}

/// A staff user's token on `app`.
async fn staff_token(app: &TestApp) -> String {
    let staff = app.create_user("staff", true, false).await;
    app.token_for(&staff)
}

fn message(reply: &Reply) -> &str {
    reply.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_fragment_bomb_is_refused_before_it_expands() {
    let app = spawn_app().await;
    // Issue 12's 1.3 KB attack: 3^29 root fields once expanded.
    let reply = app.gql(&fragment_bomb(29), Value::Null).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert_eq!(reply.body.get("data"), None);
    // The same below one field: free fields, but too many selections.
    let below = fragment_bomb(29)
        .replace("query { ...F0 }", "query { me { ...F0 } }")
        .replace("on Query", "on User");
    let reply = app.gql(&below, Value::Null).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert_eq!(
        message(&reply),
        "A document may expand to at most 10000 selections."
    );
    // Under a leaf, where only validation would look.
    let under_typename =
        fragment_bomb(29).replace("query { ...F0 }", "query { __typename { ...F0 } }");
    let reply = app.gql(&under_typename, Value::Null).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    // Small enough, it runs.
    let reply = app.gql(&fragment_bomb(3), Value::Null).await;
    assert_eq!(reply.body, json!({ "data": { "__typename": "Query" } }));
}

#[tokio::test]
async fn fragment_cycles_are_refused_however_deep() {
    let app = spawn_app().await;
    let reply = app
        .gql("{ ...A } fragment A on Query { ...A }", Value::Null)
        .await;
    assert_eq!(reply.codes(), vec!["GRAPHQL_VALIDATION_FAILED"]);
    assert_eq!(
        message(&reply),
        "Cannot spread fragment \"A\" within itself."
    );
    let mut deep = String::from("{ ...F0 }\n");
    for i in 0..50 {
        deep.push_str(&format!(
            "fragment F{i} on Query {{ __typename ...F{} }}\n",
            i + 1
        ));
    }
    deep.push_str("fragment F50 on Query { ...F0 }\n");
    let reply = app.gql(&deep, Value::Null).await;
    assert_eq!(reply.codes(), vec!["GRAPHQL_VALIDATION_FAILED"]);
    assert_eq!(
        message(&reply),
        "Cannot spread fragment \"F0\" within itself."
    );
}

#[tokio::test]
async fn more_fragments_or_directives_than_allowed_are_refused() {
    let app = spawn_app().await;
    let fragments: String = (0..129)
        .map(|i| format!("fragment F{i} on Query {{ __typename }}\n"))
        .collect();
    let reply = app
        .gql(&format!("{{ ...F0 }}\n{fragments}"), Value::Null)
        .await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert_eq!(
        message(&reply),
        "A document may define at most 128 fragments."
    );
    let directives = "@include(if: true) ".repeat(129);
    let reply = app
        .gql(&format!("{{ me {directives} {{ id }} }}"), Value::Null)
        .await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert_eq!(
        message(&reply),
        "A document may use at most 128 directives."
    );
}

/// What GraphiQL, graphql-js (v15 and v16), Apollo's Rover and Apollo
/// Client Devtools send, as they send it.
const STANDARD_INTROSPECTION_QUERIES: [(&str, &str); 6] = [
    (
        "graphiql",
        include_str!("introspection/graphiql-3.8.3.graphql"),
    ),
    (
        "graphql-js 15",
        include_str!("introspection/graphql-js-v15-default.graphql"),
    ),
    (
        "graphql-js 16",
        include_str!("introspection/graphql-js-v16-default.graphql"),
    ),
    (
        "rover",
        include_str!("introspection/rover-graph-introspect.graphql"),
    ),
    (
        "rover legacy",
        include_str!("introspection/rover-graph-introspect-legacy.graphql"),
    ),
    (
        "apollo devtools",
        include_str!("introspection/apollo-client-devtools.graphql"),
    ),
];

#[tokio::test]
async fn every_standard_introspection_query_passes_whatever_the_limits() {
    for (max_depth, max_complexity) in [(12, 10_000), (2, 1)] {
        let app = spawn_app_with(|config| {
            config.max_depth = max_depth;
            config.max_complexity = max_complexity;
        })
        .await;
        for (tool, document) in STANDARD_INTROSPECTION_QUERIES {
            let reply = app.gql(document, Value::Null).await;
            assert_eq!(reply.body.get("errors"), None, "{tool}: {}", reply.body);
            assert!(
                reply.body["data"]["__schema"]["types"]
                    .as_array()
                    .is_some_and(|types| types.len() > 20),
                "{tool}"
            );
        }
    }
}

#[tokio::test]
async fn introspection_repeated_under_aliases_is_refused() {
    let app = spawn_app().await;
    // The attack of issue 12: 50 × 50 × 50 aliases.
    let reply = app.gql(&aliased_introspection(50), Value::Null).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    // Few aliases, each a whole introspection: over the free size.
    let full = STANDARD_INTROSPECTION_QUERIES[2].1;
    let twice = full.replacen("types {", "again: types { ...FullType } types {", 1);
    let reply = app.gql(&twice, Value::Null).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    assert!(
        message(&reply).starts_with("The query's complexity "),
        "{}",
        reply.body
    );
    // Deep ofType chains are bounded too.
    let of_type = "ofType { ".repeat(20) + &"} ".repeat(20);
    let reply = app
        .gql(
            &format!("{{ __type(name: \"User\") {{ {of_type} }} }}")
                .replace("ofType { }", "ofType { name }"),
            Value::Null,
        )
        .await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
}

#[tokio::test]
async fn deeply_nested_filters_are_refused_without_a_stack_overflow() {
    let app = spawn_app().await;
    let token = staff_token(&app).await;
    // In the document itself: refused before it is parsed, or, when the
    // parser would take it, before anything coerces it.
    for (depth, code) in [
        (3_000, "QUERY_TOO_COMPLEX"),
        (300, "QUERY_TOO_COMPLEX"),
        (40, "BAD_USER_INPUT"),
    ] {
        let nested = "{not: ".repeat(depth) + "{isActive: true}" + &"}".repeat(depth);
        let reply = app
            .gql_as(
                Some(&token),
                &format!("{{ users(filter: {nested}) {{ totalCount }} }}"),
                Value::Null,
            )
            .await;
        assert_eq!(
            (reply.status, reply.codes()),
            (200, vec![code.to_owned()]),
            "{depth}"
        );
    }
    // Brackets after an unterminated block string, which the parser would
    // read as two plain strings and go on.
    let hidden = format!("{{ a(x: [\"\"\"x\" {} ]) }}", "[".repeat(100_000));
    let reply = app.gql(&hidden, Value::Null).await;
    assert_eq!(reply.codes(), vec!["GRAPHQL_PARSE_FAILED"]);
    assert_eq!(message(&reply), "A block string is not closed.");
    // In variables, as deep as JSON goes (built as text: serializing it
    // would need as deep a stack as parsing it).
    let query = "query($f: UserFilter) { users(filter: $f) { totalCount } }";
    for (depth, status, code) in [
        (3_000, 400, "GRAPHQL_PARSE_FAILED"),
        (120, 200, "BAD_USER_INPUT"),
    ] {
        let filter = "{\"not\":".repeat(depth) + "{\"isActive\":true}" + &"}".repeat(depth);
        let body = format!(r#"{{"query":"{query}","variables":{{"f":{filter}}}}}"#);
        let response = app
            .client
            .post(format!("{}/graphql", app.url))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let reply = Reply::from(response).await;
        assert_eq!(
            (reply.status, reply.codes()),
            (status, vec![code.to_owned()]),
            "{depth}"
        );
    }
    // Eleven levels of and/or/not: past the limit, named.
    let mut filter = json!({ "isActive": true });
    for _ in 0..11 {
        filter = json!({ "not": filter });
    }
    let reply = app
        .gql_as(Some(&token), query, json!({ "f": filter }))
        .await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({ "filter": ["Filters may nest and/or/not at most 10 deep."] })
    );
    let reply = app
        .gql_as(Some(&token), query, json!({ "f": filter["not"] }))
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "users": { "totalCount": 1 } } })
    );
    assert_eq!(
        app.client
            .get(format!("{}/healthz", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn oversized_filters_and_searches_are_bad_input_naming_the_limit() {
    let app = spawn_app().await;
    let token = staff_token(&app).await;
    let query =
        "query($f: UserFilter, $s: String) { users(filter: $f, search: $s) { totalCount } }";
    let ids: Vec<String> = (1..=100_000).map(|i| i.to_string()).collect();
    let branches = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|i| json!({ "username": { "exact": format!("u{i}") } }))
            .collect()
    };
    let long = "x".repeat(257);
    let cases = [
        (
            json!({ "f": { "id": { "in": ids.clone() } } }),
            json!({ "filter": ["The in lists of a filter may hold at most 1000 values in all."] }),
        ),
        (
            json!({ "f": { "or": branches(20_000) } }),
            json!({ "filter": ["The input values of a request may hold at most 500 objects."] }),
        ),
        (
            json!({ "f": { "or": branches(150) } }),
            json!({ "filter": ["A filter may hold at most 100 filter objects."] }),
        ),
        (
            json!({ "f": { "username": { "icontains": long } } }),
            json!({ "filter": ["Text in a filter may be at most 256 characters long."] }),
        ),
        (
            json!({ "f": { "email": { "in": ["a@example.com", long] } } }),
            json!({ "filter": ["Text in a filter may be at most 256 characters long."] }),
        ),
        (
            json!({ "s": long }),
            json!({ "search": ["Text in a search may be at most 256 characters long."] }),
        ),
    ];
    for (variables, fields) in cases {
        let reply = app.gql_as(Some(&token), query, variables).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"], "{fields}");
        assert_eq!(reply.body["errors"][0]["extensions"]["fields"], fields);
    }
    // The same 100,000 ids in two places: past what a request's arguments
    // may hold, before async-graphql walks them twice.
    let twice = "query($f: UserFilter) { a: users(filter: $f) { totalCount } b: users(filter: $f) { totalCount } }";
    let reply = app
        .gql_as(
            Some(&token),
            twice,
            json!({ "f": { "id": { "in": ids.clone() } } }),
        )
        .await;
    assert_eq!(
        reply.body["errors"][0]["extensions"]["fields"],
        json!({ "filter": ["The arguments of a request may hold at most 200000 values, counted as fragments expand and rows multiply."] })
    );
    // At the limits, the same requests run.
    let ids: Vec<String> = (1..=1_000).map(|i| i.to_string()).collect();
    let most = "é".repeat(256);
    for (variables, count) in [
        (json!({ "f": { "id": { "in": ids } } }), 1),
        (
            json!({ "f": { "username": { "icontains": most } }, "s": most }),
            0,
        ),
    ] {
        let reply = app.gql_as(Some(&token), query, variables).await;
        assert_eq!(
            reply.body,
            json!({ "data": { "users": { "totalCount": count } } })
        );
    }
}

#[tokio::test]
async fn count_cache_keys_hold_no_client_text() {
    // Complexity would refuse 64 counts in one document; let them through
    // to see what the cache keeps.
    let app = spawn_app_with(|config| config.max_complexity = 100_000).await;
    let token = staff_token(&app).await;
    app.settle().await;
    // `first: 0`: a page that shows nothing, so each count is read (and kept).
    let aliases: String = (0..64)
        .map(|i| format!("a{i}: users(search: $s, filter: {{id: {{gt: \"{i}\"}}}}, first: 0) {{ totalCount }} "))
        .collect();
    let query = format!("query($s: String) {{ {aliases} }}");
    for round in 0..3 {
        let search = format!("{round}{}", "s".repeat(255));
        let reply = app
            .gql_as(Some(&token), &query, json!({ "s": search }))
            .await;
        assert_eq!(
            reply.body["data"]["a63"]["totalCount"],
            json!(0),
            "{}",
            reply.body
        );
    }
    // Up to 192 counts kept (fewer if a second passed and the oldest were
    // swept), each the same few hundred bytes, whatever its text.
    let (kept, bytes) = (
        app.state.caches.counts.len(),
        app.state.caches.counts.bytes(),
    );
    assert!((64..=192).contains(&kept), "{kept}");
    assert!(bytes <= kept * 256, "{bytes} for {kept}");
}

#[tokio::test]
async fn only_json_posts_run_so_web_pages_cannot_send_simple_requests() {
    let app = spawn_app().await;
    let register = r#"{"query":"mutation { register(input: {username: \"victim\", email: \"v@example.com\", password: \"Vq7#pL2m!xZ-roster\"}) { id } }"}"#;
    for content_type in [
        Some("text/plain"),
        Some("text/plain;charset=UTF-8"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/graphql"),
        None,
    ] {
        let mut request = app
            .client
            .post(format!("{}/graphql", app.url))
            .body(register);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let reply = Reply::from(request.send().await.unwrap()).await;
        assert_eq!(reply.status, 415, "{content_type:?}");
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    }
    let reply = app
        .gql_as(None, "{ users { totalCount } }", Value::Null)
        .await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
    let staff = staff_token(&app).await;
    let reply = app
        .gql_as(
            Some(&staff),
            "{ users(filter: {username: {exact: \"victim\"}}) { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(reply.body["data"]["users"]["totalCount"], json!(0));
    // A charset parameter is fine.
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("content-type", "Application/JSON; charset=utf-8")
        .body(r#"{"query":"{ __typename }"}"#)
        .send()
        .await
        .unwrap();
    let reply = Reply::from(response).await;
    assert_eq!(reply.body, json!({ "data": { "__typename": "Query" } }));
}

/// POSTs `body` asking for `accept`.
async fn post_accepting(app: &TestApp, accept: &str, body: Value) -> Reply {
    let response = app
        .client
        .post(format!("{}/graphql", app.url))
        .header("accept", accept)
        .json(&body)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

#[tokio::test]
async fn request_errors_have_no_data_and_are_400_under_graphql_response_json() {
    let app = spawn_app().await;
    let cases = [
        (json!({ "query": "{" }), "GRAPHQL_PARSE_FAILED"),
        (
            json!({ "query": "{ nothing }" }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            json!({ "query": "query($id: ID!) { user(id: $id) { id } }" }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "query": "query($id: ID!) { user(id: $id) { id } }", "variables": { "id": null } }),
            "BAD_USER_INPUT",
        ),
        (
            json!({ "query": "query($n: Int) { users(first: $n) { totalCount } }", "variables": { "n": "many" } }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            json!({ "query": "query A { me { id } } query B { me { id } }", "operationName": "C" }),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (json!({ "query": fragment_bomb(29) }), "QUERY_TOO_COMPLEX"),
    ];
    for (body, code) in cases.clone() {
        for (accept, status) in [
            ("application/graphql-response+json", 400),
            ("application/json", 200),
        ] {
            let reply = post_accepting(&app, accept, body.clone()).await;
            assert_eq!(
                (reply.status, reply.codes()),
                (status, vec![code.to_owned()]),
                "{body} {accept}"
            );
            assert_eq!(reply.body.get("data"), None, "{body} {accept}");
        }
    }
    assert_eq!(
        message(&post_accepting(&app, "application/json", cases[2].0.clone()).await),
        "Variable \"$id\" of required type \"ID!\" was not provided."
    );
    // A field error is not a request error: 200 and data, under both.
    for accept in ["application/graphql-response+json", "application/json"] {
        let reply =
            post_accepting(&app, accept, json!({ "query": "{ users { totalCount } }" })).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body["data"], Value::Null);
        assert!(reply.body.as_object().unwrap().contains_key("data"));
        assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
    }
    // No query at all is not GraphQL over HTTP.
    let reply = post_accepting(&app, "*/*", json!({ "qeury": "{ __typename }" })).await;
    assert_eq!(
        (reply.status, reply.codes()),
        (400, vec!["GRAPHQL_PARSE_FAILED".to_owned()])
    );
}

#[tokio::test]
async fn mixed_page_styles_report_only_the_arguments_given() {
    let app = spawn_app().await;
    let token = staff_token(&app).await;
    let query = "query($first: Int, $last: Int, $limit: Int, $after: String) { users(first: $first, last: $last, limit: $limit, after: $after) { totalCount } }";
    for (variables, given) in [
        (json!({ "first": 2, "limit": 2 }), vec!["first", "limit"]),
        (json!({ "last": 2, "limit": 2 }), vec!["last", "limit"]),
        (json!({ "first": 2, "last": 2 }), vec!["first", "last"]),
    ] {
        let reply = app.gql_as(Some(&token), query, variables.clone()).await;
        assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
        let fields = reply.body["errors"][0]["extensions"]["fields"]
            .as_object()
            .unwrap();
        let mut named: Vec<&str> = fields.keys().map(String::as_str).collect();
        named.sort_unstable();
        assert_eq!(named, given, "{variables}");
    }
}

/// Reads until the server closes the connection (or `limit` passes) and
/// says how long that took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(start + limit),
            stream.read(&mut buffer),
        )
        .await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn headers_that_never_end_and_idle_connections_are_cut_off() {
    let app = spawn_app_with(|config| {
        config.header_read_timeout = Duration::from_secs(1);
        config.idle_timeout = Duration::from_secs(2);
    })
    .await;
    // Headers trickled forever.
    let mut slow = TcpStream::connect(app.address).await.unwrap();
    slow.write_all(b"POST /graphql HTTP/1.1\r\nHost: roster\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if slow
                .write_all(format!("X-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(3), trickle)
        .await
        .ok();
    let closed = closed_within(&mut slow, Duration::from_secs(3)).await;
    assert!(closed.is_some(), "the trickling connection stayed open");
    // A connection that never sends anything.
    let mut silent = TcpStream::connect(app.address).await.unwrap();
    let closed = closed_within(&mut silent, Duration::from_secs(4)).await;
    assert!(
        closed.is_some_and(|t| t >= Duration::from_millis(900)),
        "{closed:?}"
    );
    // A keep-alive connection, idle after its answer.
    let mut idle = TcpStream::connect(app.address).await.unwrap();
    assert!(ask(&mut idle).await.starts_with("HTTP/1.1 200"));
    let closed = closed_within(&mut idle, Duration::from_secs(4)).await;
    assert!(closed.is_some(), "the idle connection stayed open");
}

#[tokio::test]
async fn a_body_that_stops_coming_is_refused_with_408() {
    let app = spawn_app_with(|config| config.body_read_timeout = Duration::from_secs(1)).await;
    let mut stream = TcpStream::connect(app.address).await.unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: roster\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"query\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buffer[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer to a stalled body");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// Asks for /healthz on `stream` and gives the answer's first bytes.
async fn ask(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: roster\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 512];
    let n = stream.read(&mut buffer).await.unwrap();
    String::from_utf8_lossy(&buffer[..n]).into_owned()
}

#[tokio::test]
async fn connections_over_the_cap_wait_without_hurting_those_served() {
    let app = spawn_app_with(|config| {
        config.max_connections = 2;
        config.idle_timeout = Duration::from_secs(30);
        config.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let mut first = TcpStream::connect(app.address).await.unwrap();
    let mut second = TcpStream::connect(app.address).await.unwrap();
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(ask(&mut second).await.starts_with("HTTP/1.1 200"));
    // A third waits, unaccepted, while the two are open.
    let third = tokio::spawn({
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", app.url);
        async move { client.get(url).send().await.map(|r| r.status().as_u16()) }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished());
    // Those open are still served.
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    drop(second);
    let status = tokio::time::timeout(Duration::from_secs(5), third).await;
    assert!(matches!(status, Ok(Ok(Ok(200)))), "{status:?}");
}

#[tokio::test]
async fn every_document_and_filter_limit_is_a_setting() {
    let app = spawn_app_with(|config| {
        config.max_root_fields = 2;
        config.max_aliases = 1;
        config.max_directives = 1;
        config.max_fragments = 1;
        config.max_selections = 6;
        config.scan_cost = 1_000;
        config.max_input_objects = 3;
        config.filter_limits.max_nodes = 2;
        config.filter_limits.max_depth = 1;
        config.filter_limits.max_in_values = 2;
        config.filter_limits.max_text_length = 3;
    })
    .await;
    let token = staff_token(&app).await;
    let refused = [
        (
            "{ a: __typename b: __typename c: __typename }",
            "An operation may select at most 2 root fields.",
        ),
        (
            "{ me { a: id b: id } }",
            "A document may hold at most 1 aliases.",
        ),
        (
            "{ me @include(if: true) { id @skip(if: false) } }",
            "A document may use at most 1 directives.",
        ),
        (
            "{ ...A ...B } fragment A on Query { __typename } fragment B on Query { __typename }",
            "A document may define at most 1 fragments.",
        ),
        (
            "{ me { id username firstName lastName email isActive } }",
            "A document may expand to at most 6 selections.",
        ),
        (
            "{ users { totalCount } }",
            "The query's complexity 1001 is above the limit of 10000 (ROSTER_MAX_COMPLEXITY).",
        ),
        (
            "{ users(filter: {and: [{isActive: true}, {isActive: true}, {isActive: true}]}) { totalCount } }",
            "The input values of a request may hold at most 3 objects.",
        ),
    ];
    for (document, expected) in refused {
        let reply = app.gql_as(Some(&token), document, Value::Null).await;
        if expected.starts_with("The query's complexity") {
            // 1,001 passes the default complexity: the setting shows in the cost.
            let reply = spawn_app_with(|c| {
                c.scan_cost = 1_000;
                c.max_complexity = 1_000;
            })
            .await
            .gql(document, Value::Null)
            .await;
            assert_eq!(
                message(&reply),
                "The query's complexity 1001 is above the limit of 1000 (ROSTER_MAX_COMPLEXITY)."
            );
            continue;
        }
        assert_eq!(message(&reply), expected, "{document}");
    }
    let query =
        "query($f: UserFilter, $s: String) { users(filter: $f, search: $s) { totalCount } }";
    for (variables, fields) in [
        (
            json!({ "f": { "id": { "exact": "1" }, "username": { "exact": "a" } } }),
            json!({ "filter": ["A filter may hold at most 2 filter objects."] }),
        ),
        (
            json!({ "f": { "not": { "not": {} } } }),
            json!({ "filter": ["Filters may nest and/or/not at most 1 deep."] }),
        ),
        (
            json!({ "f": { "id": { "in": ["1", "2", "3"] } } }),
            json!({ "filter": ["The in lists of a filter may hold at most 2 values in all."] }),
        ),
        (
            json!({ "s": "abcd" }),
            json!({ "search": ["Text in a search may be at most 3 characters long."] }),
        ),
    ] {
        let reply = app.gql_as(Some(&token), query, variables.clone()).await;
        assert_eq!(
            reply.body["errors"][0]["extensions"]["fields"], fields,
            "{variables}"
        );
    }
}

#[tokio::test]
async fn async_graphql_sees_only_the_operation_that_runs_and_its_fragments() {
    let app = spawn_app().await;
    let bomb = fragment_bomb(30).replace("query { ...F0 }", "query Bomb { ...F0 }");
    // The bomb in an operation that does not run: pruned, never walked.
    let document = format!("query Small {{ __typename }}\n{bomb}");
    let body = json!({ "query": document, "operationName": "Small" });
    let reply = app.post_json(None, &body).await;
    assert_eq!(reply.body, json!({ "data": { "__typename": "Query" } }));
    // An operation that cannot be found, or cannot be chosen: refused
    // before async-graphql walks anything.
    for (body, expected) in [
        (
            json!({ "query": document, "operationName": "Nope" }),
            "Unknown operation named \"Nope\".",
        ),
        (
            json!({ "query": document }),
            "Operation name required in request.",
        ),
        (
            json!({ "query": format!("{{ __typename }} fragment Unused on Query {{ ...F0 }}\n{}", bomb.replace("query Bomb { ...F0 }", "")) }),
            "Fragment \"Unused\" is never used.",
        ),
    ] {
        let reply = app.post_json(None, &body).await;
        assert_eq!(
            reply.codes(),
            vec!["GRAPHQL_VALIDATION_FAILED"],
            "{expected}"
        );
        assert_eq!(message(&reply), expected);
        assert_eq!(reply.body.get("data"), None);
    }
    // Over GET too, with GraphQL over HTTP's `operationName`.
    let response = app
        .client
        .get(format!("{}/graphql", app.url))
        .query(&[("query", document.as_str()), ("operationName", "Small")])
        .send()
        .await
        .unwrap();
    let reply = Reply::from(response).await;
    assert_eq!(reply.body, json!({ "data": { "__typename": "Query" } }));
}

#[tokio::test]
async fn pages_hidden_in_fragments_and_lists_still_count() {
    let app = spawn_app().await;
    let token = staff_token(&app).await;
    let complexity = |document: &str| {
        let app = &app;
        let token = token.clone();
        let document = document.to_owned();
        async move {
            let reply = app.gql_as(Some(&token), &document, Value::Null).await;
            message(&reply).to_owned()
        }
    };
    let plain = "{ groups { nodes { users { nodes { groups { users { nodes { id } } } } } } } }";
    let hidden = "{ groups { ...{ nodes { users { ...{ nodes { groups { users { ...{ nodes { id } } } } } } } } } } }";
    assert!(
        complexity(plain)
            .await
            .starts_with("The query's complexity ")
    );
    assert_eq!(complexity(hidden).await, complexity(plain).await);
}

#[tokio::test]
async fn a_batch_shares_one_complexity_budget_and_one_introspection() {
    let app = spawn_app().await;
    let token = staff_token(&app).await;
    // A search and a count cost 250 each: 19 of them, 9,519.
    let counts: String = (0..19)
        .map(|i| format!("c{i}: users(search: \"{i}\") {{ totalCount }} "))
        .collect();
    let one = json!({ "query": format!("{{ {counts} }}") });
    let reply = app.post_json(Some(&token), &one).await;
    assert_eq!(reply.body["data"]["c18"]["totalCount"], json!(0));
    // Two of them in one batch: 19,038 together.
    let reply = app.post_json(Some(&token), &json!([one, one])).await;
    assert_eq!(reply.body[0]["data"]["c18"]["totalCount"], json!(0));
    assert_eq!(
        reply.body[1]["errors"][0]["extensions"]["code"],
        json!("QUERY_TOO_COMPLEX")
    );
    let schema = json!({ "query": "{ __schema { types { name } } }" });
    let reply = app.post_json(None, &json!([schema, schema])).await;
    assert!(reply.body[0]["data"]["__schema"]["types"].is_array());
    assert_eq!(
        reply.body[1]["errors"][0]["message"],
        json!("A request may select __schema at most once.")
    );
    let twice = json!({ "query": "{ a: __schema { queryType { name } } b: __schema { queryType { name } } }" });
    let reply = app.post_json(None, &twice).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
}

#[tokio::test]
async fn a_mutation_that_writes_nothing_leaves_the_caches_alone() {
    let app = spawn_app().await;
    let token = staff_token(&app).await;
    app.settle().await;
    // `first: 0`: a page that shows nothing, so the count is read (and kept).
    let count = "{ users(first: 0) { totalCount } }";
    app.gql_as(Some(&token), count, Value::Null).await;
    assert_eq!(app.state.caches.counts.len(), 1);
    for cheap in [
        "mutation { __typename }",
        "mutation { logout(refreshToken: \"nothing\") }",
        "mutation { login(input: {username: \"nobody\", password: \"wrong-password\"}) { tokenType } }",
    ] {
        app.gql(cheap, Value::Null).await;
        assert_eq!(app.state.caches.counts.len(), 1, "{cheap}");
    }
    for cheap in [
        "mutation { a b }",
        "mutation { deleteUser(id: \"1\") deleteUser(id: \"1\") }",
        "mutation { a: deleteUser(id: \"1\") __typename logout(refreshToken: \"x\") }",
        "mutation { a: deleteUser(id: \"1\") @skip(if: true) }",
    ] {
        app.gql(cheap, Value::Null).await;
        assert_eq!(app.state.caches.counts.len(), 1, "{cheap}");
    }
    // One that writes forgets them.
    let create = "mutation { createGroup(input: {name: \"Fresh\"}) { id } }";
    let reply = app.gql_as(Some(&token), create, Value::Null).await;
    assert_eq!(reply.body.get("errors"), None);
    assert_eq!(app.state.caches.counts.len(), 0);
    // One that writes and then fails below its field, nulling the answer.
    app.settle().await;
    app.gql_as(Some(&token), count, Value::Null).await;
    assert_eq!(app.state.caches.counts.len(), 1);
    let create =
        "mutation { createGroup(input: {name: \"Later\"}) { users(first: -1) { totalCount } } }";
    let reply = app.gql_as(Some(&token), create, Value::Null).await;
    assert_eq!(reply.body["data"]["createGroup"], Value::Null);
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    assert_eq!(app.state.caches.counts.len(), 0);
    // A second field failing after a first that wrote.
    app.settle().await;
    app.gql_as(Some(&token), count, Value::Null).await;
    assert_eq!(app.state.caches.counts.len(), 1);
    let twice = "mutation { a: createGroup(input: {name: \"Twice\"}) { id } b: createGroup(input: {name: \"Twice\"}) { id } }";
    let reply = app.gql_as(Some(&token), twice, Value::Null).await;
    assert_eq!(reply.codes(), vec!["CONFLICT"]);
    assert_eq!(app.state.caches.counts.len(), 0);
}

#[tokio::test]
async fn only_get_and_post_reach_the_endpoint() {
    let app = spawn_app().await;
    let response = app
        .client
        .head(format!("{}/graphql", app.url))
        .header("content-type", "text/plain")
        .body(r#"{"query":"mutation { register(input: {username: \"h\", email: \"h@example.com\", password: \"Vq7#pL2m!xZ-roster\"}) { id } }"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    let response = app
        .client
        .put(format!("{}/graphql", app.url))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn one_client_gets_at_most_its_share_of_connections() {
    let app = spawn_app_with(|config| config.max_connections_per_client = 2).await;
    let mut first = TcpStream::connect(app.address).await.unwrap();
    let mut second = TcpStream::connect(app.address).await.unwrap();
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(ask(&mut second).await.starts_with("HTTP/1.1 200"));
    let mut third = TcpStream::connect(app.address).await.unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(2))
            .await
            .is_some()
    );
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    drop(second);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fourth = TcpStream::connect(app.address).await.unwrap();
    assert!(ask(&mut fourth).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn a_trusted_proxy_is_held_only_to_the_overall_cap() {
    let app = spawn_app_with(|config| {
        config.max_connections_per_client = 2;
        config.trusted_proxies.networks = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let mut connections = Vec::new();
    for _ in 0..4 {
        connections.push(TcpStream::connect(app.address).await.unwrap());
    }
    for connection in &mut connections {
        assert!(ask(connection).await.starts_with("HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn a_login_name_longer_than_any_account_costs_nothing() {
    let app = spawn_app().await;
    let query = "mutation($u: String!) { login(input: {username: $u, password: \"Vq7#pL2m!xZ-roster\"}) { tokenType } }";
    let reply = app.gql(query, json!({ "u": "x".repeat(900_000) })).await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);
    let rows = app
        .db()
        .query_one_raw(sea_orm::Statement::from_string(
            app.db().get_database_backend(),
            "SELECT COUNT(*) AS n FROM login_failures",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn a_client_that_stops_reading_gives_its_connection_back() {
    let app = spawn_app_with(|config| {
        config.max_connections = 1;
        config.idle_timeout = Duration::from_secs(1);
    })
    .await;
    // Asks for megabytes on a small receive window and never reads them.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(app.address).await.unwrap();
    let request = "GET /graphiql/graphiql.min.js HTTP/1.1\r\nHost: roster\r\n\r\n".repeat(20);
    stalled.write_all(request.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        app.client.get(format!("{}/healthz", app.url)).send(),
    )
    .await;
    assert!(
        matches!(&response, Ok(Ok(r)) if r.status() == 200),
        "{response:?}"
    );
    // Dropped after two idle periods of nothing moving, not at once.
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
}

#[tokio::test]
async fn a_long_answer_read_slowly_is_not_cut_off() {
    let app = spawn_app_with(|config| {
        config.header_read_timeout = Duration::from_secs(1);
        config.idle_timeout = Duration::from_secs(5);
    })
    .await;
    let asset = format!("{}/graphiql/graphiql.min.js", app.url);
    let one = app
        .client
        .get(&asset)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    // Two answers asked at once, more than the kernel's buffers hold, read
    // a little at a time for longer than the header deadline.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    let mut slow = socket.connect(app.address).await.unwrap();
    let request = "GET /graphiql/graphiql.min.js HTTP/1.1\r\nHost: roster\r\n\r\n".repeat(2);
    slow.write_all(request.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    let mut buffer = vec![0u8; 8 * 1024];
    let mut received = 0;
    while received < 2 * one {
        let n = slow.read(&mut buffer).await.unwrap();
        assert!(
            n > 0,
            "cut off after {received} of {} bytes, {:?}",
            10 * one,
            started.elapsed()
        );
        received += n;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
