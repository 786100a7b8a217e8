//! Webhook figures against real `roster serve` processes and a receiver on
//! loopback: what writing events (and queuing deliveries) adds to a
//! mutation's latency, the delay from a mutation's answer to its delivery,
//! and how fast one process drains a queue. Not a test: it asserts
//! nothing and prints figures.
//!
//!     cargo build --release && cargo bench --bench webhook_delivery
//!
//! `ROSTER_BENCH_BIN` (default `target/release/roster`) is measured;
//! `ROSTER_BENCH_BASELINE`, an older binary, is measured beside it for
//! mutation latency; `ROSTER_BENCH_DATABASE_URL` (a PostgreSQL URL) runs on
//! fresh schemas of it instead of temporary SQLite files;
//! `ROSTER_BENCH_EVENTS` (1000) sets the number of events.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::State, routing::post};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

const PASSWORD: &str = "Vq7#pL2m!xZ-roster";

/// A running server, killed when dropped.
struct Server {
    child: Child,
    url: String,
    client: reqwest::Client,
    token: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn fresh_database(tag: &str) -> String {
    match std::env::var("ROSTER_BENCH_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let name = format!("bench_webhooks_{tag}");
            let admin = Database::connect(&base).await.unwrap();
            admin
                .execute_unprepared(&format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
                ))
                .await
                .unwrap();
            let separator = if base.contains('?') { '&' } else { '?' };
            format!("{base}{separator}options=-c%20search_path%3D{name}")
        }
        _ => {
            let path = std::env::temp_dir().join(format!(
                "roster-bench-webhooks-{}-{tag}.db",
                std::process::id()
            ));
            let _ = std::fs::remove_file(&path);
            format!("sqlite://{}?mode=rwc", path.display())
        }
    }
}

async fn start(binary: &str, tag: &str) -> Server {
    let database_url = fresh_database(tag).await;
    let status = Command::new(binary)
        .env("ROSTER_DATABASE_URL", &database_url)
        .env("ROSTER_SUPERUSER_PASSWORD", PASSWORD)
        .args([
            "create-superuser",
            "--username",
            "root",
            "--email",
            "root@example.com",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut child = Command::new(binary)
        .env("ROSTER_DATABASE_URL", &database_url)
        .env("ROSTER_WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
        .env("ROSTER_LOG", "warn,roster=info")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or_default();
                let _ = sender.send(url.trim_end_matches('/').to_owned());
            }
        }
    });
    let url = receiver.recv_timeout(Duration::from_secs(30)).unwrap();
    let mut server = Server {
        child,
        url,
        client: reqwest::Client::new(),
        token: String::new(),
    };
    let login = "mutation($p: String!) { login(input: {username: \"root\", password: $p}) { accessToken } }";
    let reply = server.gql(login, json!({ "p": PASSWORD })).await;
    server.token = reply["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    server
}

impl Server {
    async fn gql(&self, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        request.send().await.unwrap().json().await.unwrap()
    }

    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

/// When each delivery arrived, by the division name it carries.
type Arrivals = Arc<Mutex<Vec<(String, Instant)>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let at = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    let name = body["data"]["division"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    arrivals.lock().unwrap().push((name, at));
    ""
}

async fn receiver() -> (String, Arrivals) {
    let arrivals = Arrivals::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, arrivals)
}

const CREATE_DIVISION: &str =
    "mutation($n: String!) { createDivision(input: {name: $n, divisionType: MAIN}) { id } }";

/// `count` divisions created one after another: each name with when its
/// request was sent and when its answer came.
async fn mutations(server: &Server, tag: &str, count: usize) -> Vec<(String, Instant, Instant)> {
    paced(server, tag, count, Duration::ZERO).await
}

/// [`mutations`], one every `interval` at most.
async fn paced(
    server: &Server,
    tag: &str,
    count: usize,
    interval: Duration,
) -> Vec<(String, Instant, Instant)> {
    let mut done = Vec::with_capacity(count);
    let started = Instant::now();
    for i in 0..count {
        tokio::time::sleep_until((started + interval * i as u32).into()).await;
        let name = format!("{tag}-{i}");
        let sent = Instant::now();
        let reply = server.gql(CREATE_DIVISION, json!({ "n": name })).await;
        assert!(reply["errors"].is_null(), "{reply}");
        done.push((name, sent, Instant::now()));
    }
    done
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn summary(label: &str, mut values: Vec<Duration>) {
    values.sort();
    println!(
        "{label}: median {:.2} ms, p99 {:.2} ms (n = {})",
        percentile(&values, 0.5).as_secs_f64() * 1e3,
        percentile(&values, 0.99).as_secs_f64() * 1e3,
        values.len()
    );
}

async fn register(server: &Server, url: &str, active: bool) -> String {
    let create =
        "mutation($i: CreateWebhookInput!) { createWebhook(input: $i) { webhook { id } } }";
    let input = json!({ "url": url, "eventTypes": ["DIVISION_CREATED"], "isActive": active });
    let reply = server.gql(create, json!({ "i": input })).await;
    reply["data"]["createWebhook"]["webhook"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{reply}"))
        .to_owned()
}

async fn wait_for(arrivals: &Arrivals, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while arrivals.lock().unwrap().len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn report_latency(done: &[(String, Instant, Instant)], arrivals: &Arrivals, how: &str) {
    let arrived: std::collections::HashMap<String, Instant> =
        arrivals.lock().unwrap().iter().cloned().collect();
    let latencies: Vec<Duration> = done
        .iter()
        .filter_map(|(name, _, answered)| {
            arrived
                .get(name)
                .map(|at| at.saturating_duration_since(*answered))
        })
        .collect();
    println!("delivered {} of {}", latencies.len(), done.len());
    summary(
        &format!("delivery latency, answer to receiver, {how}"),
        latencies,
    );
}

#[tokio::main]
async fn main() {
    let binary =
        std::env::var("ROSTER_BENCH_BIN").unwrap_or_else(|_| "target/release/roster".into());
    let events: usize = std::env::var("ROSTER_BENCH_EVENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000);
    let database = match std::env::var("ROSTER_BENCH_DATABASE_URL") {
        Ok(url) if !url.is_empty() => "PostgreSQL",
        _ => "SQLite",
    };
    println!("webhook figures on {database}, {events} events, one client, one process");

    // 1. A mutation's latency: before events existed (the baseline), with
    //    its event and no endpoint, and with an endpoint that takes it.
    if let Ok(baseline) = std::env::var("ROSTER_BENCH_BASELINE") {
        let server = start(&baseline, "baseline").await;
        mutations(&server, "warm", 100).await;
        let done = mutations(&server, "base", events).await;
        summary(
            "createDivision, baseline (no events)",
            done.iter()
                .map(|(_, sent, answered)| *answered - *sent)
                .collect(),
        );
    }
    let server = start(&binary, "events").await;
    mutations(&server, "warm", 100).await;
    let done = mutations(&server, "plain", events).await;
    summary(
        "createDivision, its event, no endpoint",
        done.iter()
            .map(|(_, sent, answered)| *answered - *sent)
            .collect(),
    );
    let (url, arrivals) = receiver().await;
    let first = register(&server, &url, true).await;
    let done = mutations(&server, "hooked", events).await;
    summary(
        "createDivision, its event and a delivery",
        done.iter()
            .map(|(_, sent, answered)| *answered - *sent)
            .collect(),
    );

    // 2. From the mutation's answer (its commit came before) to the
    //    receiver: as fast as one client goes (above), and at 100 events a
    //    second.
    wait_for(&arrivals, events).await;
    report_latency(&done, &arrivals, "back to back");
    arrivals.lock().unwrap().clear();
    let done = paced(&server, "paced", events, Duration::from_millis(10)).await;
    wait_for(&arrivals, events).await;
    report_latency(&done, &arrivals, "100 events/s");

    // 3. Draining a queue: events written while the endpoint was off,
    //    then replayed at once (the first endpoint is off meanwhile).
    let off = "mutation($id: ID!) { updateWebhook(id: $id, input: {isActive: false}) { id } }";
    server.gql(off, json!({ "id": first })).await;
    let (url, arrivals) = receiver().await;
    let id = register(&server, &url, false).await;
    for batch in 0..events.div_ceil(50) {
        let fields: String = (0..50)
            .map(|i| format!("d{i}: createDivision(input: {{name: \"q{batch}-{i}\", divisionType: MAIN}}) {{ id }} "))
            .collect();
        let reply = server
            .gql(&format!("mutation {{ {fields} }}"), json!({}))
            .await;
        assert!(reply["errors"].is_null(), "{reply}");
    }
    let queued = events.div_ceil(50) * 50;
    let on = "mutation($id: ID!) { updateWebhook(id: $id, input: {isActive: true}) { id } }";
    server.gql(on, json!({ "id": id })).await;
    let started = Instant::now();
    let replay = "mutation($id: ID!) { replayWebhookEvents(webhookId: $id, since: \"2000-01-01T00:00:00Z\") }";
    let reply = server.gql(replay, json!({ "id": id })).await;
    let replayed = reply["data"]["replayWebhookEvents"].as_u64().unwrap_or(0) as usize;
    wait_for(&arrivals, replayed).await;
    let elapsed = started.elapsed();
    let received = arrivals.lock().unwrap().len();
    println!(
        "drain: {replayed} deliveries queued by one replay ({queued} of them the division events), \
         {received} received in {:.2} s: {:.0} deliveries/s (concurrency 16, 8 to one endpoint)",
        elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64()
    );
    println!("server peak RSS: {} KiB", server.peak_rss_kib());
}
