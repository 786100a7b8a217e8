//! The attacks of issue 12, each sent to a real `roster serve` process:
//! what it answers, how long it takes and the process's peak memory (from
//! `/proc/<pid>/status`) while it runs. `--nocapture` prints the figures;
//! `ROSTER_TEST_BIN=target/release/roster` measures a release build.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    helpers::{PASSWORD, Reply, fresh_database},
    hostile::{aliased_introspection, fragment_bomb},
    processes::{Server, start_with},
};

/// The process's peak resident memory, in KiB (`VmHWM`).
pub(crate) fn peak_kib(server: &Server) -> u64 {
    status_kib(server, "VmHWM:")
}

/// A memory figure of the server process (`/proc/<pid>/status`), in KiB.
fn status_kib(server: &Server, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Sends `body` as JSON, or as `content_type` when given.
async fn post(server: &Server, token: Option<&str>, body: String, content_type: &str) -> Reply {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", server.url))
        .header("content-type", content_type)
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    Reply::from(request.send().await.unwrap()).await
}

/// Checks the answer, prints what it cost, and holds it to `MAX_SECONDS`.
fn report(server: &Server, attack: &str, started: Instant, answer: &str) {
    let elapsed = started.elapsed();
    let peak = peak_kib(server);
    eprintln!(
        "{attack}: {answer} in {} ms; peak RSS {} MiB",
        elapsed.as_millis(),
        peak / 1024
    );
    assert!(
        elapsed < Duration::from_secs(MAX_SECONDS),
        "{attack}: {elapsed:?}"
    );
    assert!(peak < MAX_PEAK_KIB, "{attack}: peak {peak} KiB");
}

/// Generous bounds: each attack is answered in milliseconds and the
/// process stays near its idle size; these catch a regression of orders of
/// magnitude (minutes, gibibytes), not noise.
const MAX_SECONDS: u64 = 15;
const MAX_PEAK_KIB: u64 = 256 * 1024;

#[tokio::test]
async fn the_attacks_of_issue_12_cost_a_real_server_milliseconds_and_mebibytes() {
    let (database_url, _dir) = fresh_database().await;
    let server = start_with(&database_url, &[("ROSTER_HEADER_READ_TIMEOUT_SECS", "2")]);
    let register = "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { id } }";
    let reply = server
        .gql(
            None,
            register,
            json!({ "u": "mallory", "e": "m@example.com", "p": PASSWORD }),
        )
        .await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    let token = server.login("mallory", PASSWORD).await.body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let json = "application/json";
    let query = |document: String| json!({ "query": document }).to_string();

    let started = Instant::now();
    let reply = post(&server, None, query(fragment_bomb(29)), json).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    report(
        &server,
        "fragment bomb (1.3 KB, anonymous)",
        started,
        "QUERY_TOO_COMPLEX",
    );

    let started = Instant::now();
    let reply = post(&server, None, query(aliased_introspection(50)), json).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    report(
        &server,
        "aliased introspection (2.5 KB, anonymous)",
        started,
        "QUERY_TOO_COMPLEX",
    );

    // The same bomb where the analysis once did not look: an operation
    // that does not run, an unused fragment.
    let started = Instant::now();
    let bomb = fragment_bomb(30).replace("query {", "query Bomb {");
    let body =
        json!({ "query": format!("query A {{ __typename }}\n{bomb}"), "operationName": "A" });
    let reply = post(&server, None, body.to_string(), json).await;
    assert_eq!(reply.body, json!({ "data": { "__typename": "Query" } }));
    report(
        &server,
        "fragment bomb in an operation that does not run",
        started,
        "the other operation's answer",
    );
    let started = Instant::now();
    let repeated = "me ".repeat(2_000);
    let spreads = "...{ ...B } ".repeat(2_000);
    let document = format!(
        "{{ __typename }} fragment B on Query {{ me: __typename {repeated} }} fragment X on Query {{ {spreads} }}"
    );
    let reply = post(&server, None, query(document), json).await;
    assert_eq!(reply.codes(), vec!["GRAPHQL_VALIDATION_FAILED"]);
    report(
        &server,
        "conflicting fields in unused fragments (26 KB)",
        started,
        "GRAPHQL_VALIDATION_FAILED",
    );
    let started = Instant::now();
    let fields = "a(first: $v) { b } ".repeat(5_000);
    let body = json!({ "query": format!("query($v: [Int]) {{ {fields} }}"), "variables": { "v": vec![1; 10_000] } });
    let reply = post(&server, None, body.to_string(), json).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    report(
        &server,
        "a 10,000-item variable used by 5,000 fields",
        started,
        "QUERY_TOO_COMPLEX",
    );
    // The same, as large as a body may be: a variable's values are counted
    // once, not once for every field that uses it (2·10⁹ steps otherwise).
    let started = Instant::now();
    let fields = "a(first:$v){b} ".repeat(30_000);
    let body = json!({ "query": format!("query($v: [Int]) {{ {fields} }}"), "variables": { "v": vec![1; 100_000] } });
    let reply = post(&server, None, body.to_string(), json).await;
    assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
    report(
        &server,
        "a 100,000-item variable used by 30,000 fields (650 KB)",
        started,
        "QUERY_TOO_COMPLEX",
    );

    let aliases: String = (0..64)
        .map(|i| format!("a{i}: users(search: $s, filter: {{id: {{gt: \"{i}\"}}}}, first: 1) {{ totalCount }} "))
        .collect();
    let document = format!("query($s: String) {{ {aliases} }}");
    for round in 0..3 {
        let started = Instant::now();
        let search = format!("{round}{}", "s".repeat(300_000));
        let body = json!({ "query": document, "variables": { "s": search } }).to_string();
        let reply = post(&server, Some(&token), body, json).await;
        assert_eq!(reply.codes(), vec!["QUERY_TOO_COMPLEX"]);
        report(
            &server,
            "64 totalCounts searching 300,000 characters",
            started,
            "QUERY_TOO_COMPLEX",
        );
    }
    let started = Instant::now();
    let search = "s".repeat(300_000);
    let body = json!({ "query": "query($s: String) { users(search: $s) { totalCount } }", "variables": { "s": search } }).to_string();
    let reply = post(&server, Some(&token), body, json).await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    report(
        &server,
        "one totalCount searching 300,000 characters",
        started,
        "BAD_USER_INPUT",
    );

    // The widest filter the limits allow, each branch a different long
    // substring lookup, with a search: the trigram indexes weigh at most
    // 32 patterns of 24 trigrams each (one statement), and the rest scan.
    let started = Instant::now();
    let lookups: Vec<Value> = (0..49)
        .map(|i| json!({ "username": { "icontains": format!("{i:02}{}", "ab".repeat(127)) } }))
        .collect();
    let search = "xyz".repeat(85);
    let body = json!({ "query": "query($f: UserFilter, $s: String) { users(filter: $f, search: $s) { totalCount } }", "variables": { "f": { "or": lookups }, "s": search } }).to_string();
    let reply = post(&server, Some(&token), body, json).await;
    assert_eq!(
        reply.body,
        json!({ "data": { "users": { "totalCount": 0 } } })
    );
    report(
        &server,
        "49 lookups of 256 characters and a search, each other text",
        started,
        "totalCount 0",
    );

    let started = Instant::now();
    let branches: Vec<Value> = (0..20_000)
        .map(|i| json!({ "id": { "exact": i.to_string() } }))
        .collect();
    let body = json!({ "query": "query($f: UserFilter) { users(filter: $f) { totalCount } }", "variables": { "f": { "or": branches } } }).to_string();
    let reply = post(&server, Some(&token), body, json).await;
    assert_eq!(reply.codes(), vec!["BAD_USER_INPUT"]);
    report(&server, "or of 20,000 branches", started, "BAD_USER_INPUT");

    let started = Instant::now();
    let address = server.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nHost: roster\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(MAX_SECONDS), async {
        loop {
            let _ = stream.write_all(b"X-More: headers\r\n").await;
            tokio::select! {
                read = stream.read(&mut buffer) => if matches!(read, Ok(0) | Err(_)) { break },
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "headers that never end kept the connection");
    report(
        &server,
        "headers that never end (header timeout 2 s)",
        started,
        "connection closed",
    );

    let started = Instant::now();
    let body = json!({ "query": register, "variables": { "u": "victim", "e": "v@example.com", "p": PASSWORD } }).to_string();
    let reply = post(&server, None, body, "text/plain").await;
    assert_eq!(reply.status, 415);
    report(&server, "cross-site text/plain register", started, "415");
    let reply = server.login("victim", PASSWORD).await;
    assert_eq!(reply.codes(), vec!["UNAUTHENTICATED"]);

    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

/// Registrations sent all at once from `clients` tasks, one connection
/// each; the codes of the answers (`OK` for none), counted.
async fn register_flood(
    server: &Server,
    clients: usize,
    username: impl Fn(usize) -> String,
) -> std::collections::BTreeMap<String, usize> {
    let register = "mutation($u: String!, $e: String!, $p: String!) { register(input: {username: $u, email: $e, password: $p}) { id } }";
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let name = username(i);
            let body = json!({ "query": register, "variables": { "u": name, "e": format!("{name}@example.com"), "p": PASSWORD } });
            let url = format!("{}/graphql", server.url);
            tokio::spawn(async move {
                // A client of its own: a connection of its own.
                let reply = reqwest::Client::new().post(url).json(&body).send().await;
                match reply {
                    Ok(response) => {
                        let reply = Reply::from(response).await;
                        assert!(reply.status == 200, "{}", reply.body);
                        reply.codes().first().cloned().unwrap_or_else(|| "OK".into())
                    }
                    Err(error) => format!("no answer: {error}"),
                }
            })
        })
        .collect();
    let mut counted = std::collections::BTreeMap::new();
    for task in tasks {
        *counted.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    counted
}

/// Issue 13's flood: hundreds of concurrent registrations. Taken names
/// cost no hash at all; fresh names (with the client budget and share
/// lifted, as if they came from as many networks) are hashed two at a time, the rest are
/// refused with `SERVICE_UNAVAILABLE` once the queue is full, and the
/// process's peak memory stays within the bound the README states:
/// the idle process, plus 20 MiB per hashing thread, plus what the
/// connections and answers take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a thousand concurrent registrations; .ci/run runs it"]
async fn a_registration_flood_stays_within_the_hashing_memory_bound() {
    let (database_url, _dir) = fresh_database().await;
    let settings = [
        ("ROSTER_MAX_CONNECTIONS_PER_CLIENT", "2048"),
        ("ROSTER_CLIENT_BUDGET_BURST", "1000000"),
        ("ROSTER_PASSWORD_HASH_PER_CLIENT", "1000000"),
        ("ROSTER_PASSWORD_HASH_CONCURRENCY", "2"),
    ];
    let server = tokio::task::spawn_blocking(move || start_with(&database_url, &settings))
        .await
        .unwrap();
    let taken = register_flood(&server, 1, |_| "taken".into()).await;
    assert_eq!(taken.get("OK"), Some(&1), "{taken:?}");
    let idle = peak_kib(&server);

    let started = Instant::now();
    let counted = register_flood(&server, 300, |_| "taken".into()).await;
    let peak = peak_kib(&server);
    eprintln!(
        "300 registrations of a taken name: {counted:?} in {} ms; peak RSS {} MiB (idle {} MiB)",
        started.elapsed().as_millis(),
        peak / 1024,
        idle / 1024
    );
    assert_eq!(counted.get("CONFLICT"), Some(&300), "{counted:?}");

    for clients in [300, 1000] {
        let started = Instant::now();
        let counted = register_flood(&server, clients, |i| format!("c{clients}n{i}")).await;
        let peak = peak_kib(&server);
        eprintln!(
            "{clients} registrations of fresh names: {counted:?} in {} ms; peak RSS {} MiB (idle {} MiB)",
            started.elapsed().as_millis(),
            peak / 1024,
            idle / 1024
        );
        let answered: usize = ["OK", "SERVICE_UNAVAILABLE"]
            .iter()
            .filter_map(|code| counted.get(*code))
            .sum();
        assert_eq!(answered, clients, "{counted:?}");
        assert!(counted.get("OK").is_some_and(|ok| *ok >= 2), "{counted:?}");
        assert!(
            peak <= idle + 2 * 20 * 1024 + HASH_FLOOD_MARGIN_KIB,
            "peak {peak} KiB, idle {idle} KiB"
        );
    }
}

/// A hashing thread gives Argon2's 19 MiB back once it has waited half a
/// second for another hash: a process that signed someone in holds no
/// more than before, where it used to keep the memory of its last hash
/// for good.
#[tokio::test]
async fn hashing_memory_goes_back_when_no_hash_waits() {
    let (database_url, _dir) = fresh_database().await;
    let server = tokio::task::spawn_blocking(move || start_with(&database_url, &[]))
        .await
        .unwrap();
    let before = status_kib(&server, "RssAnon:");
    let registered = register_flood(&server, 1, |_| "someone".into()).await;
    assert_eq!(registered.get("OK"), Some(&1), "{registered:?}");
    // The peak shows the hash took its memory; the process's mappings,
    // that none holds it any more (the thread frees it as soon as it finds
    // no work).
    let peak = peak_kib(&server);
    assert!(
        peak >= before + 19 * 1024,
        "peak {peak} KiB, before {before} KiB"
    );
    let largest = || {
        let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", server.child.id())).unwrap();
        smaps
            .lines()
            .filter_map(|line| line.strip_prefix("Anonymous:"))
            .filter_map(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .unwrap()
    };
    // Kept while hashes may follow, given back after half a second idle
    // (for each of the threads in turn).
    assert!(largest() >= 19 * 1024, "the hash's memory went at once");
    let started = Instant::now();
    while largest() >= 18 * 1024 && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (largest, waited) = (largest(), started.elapsed());
    eprintln!("largest anonymous mapping {largest} KiB after {waited:?}; peak {peak} KiB");
    assert!(largest < 18 * 1024, "a mapping holds {largest} KiB");
    assert!(
        waited >= Duration::from_millis(300),
        "given back after {waited:?}"
    );
}

/// What a thousand connections and their requests take, beyond the
/// hashing threads (measured: about 70 MiB in a debug build, 40 MiB in a
/// release build).
const HASH_FLOOD_MARGIN_KIB: u64 = 100 * 1024;
