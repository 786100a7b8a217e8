//! Database faults, injected by a TCP proxy between roster and PostgreSQL
//! that the test controls: requests fail fast with SERVICE_UNAVAILABLE,
//! /readyz turns 503, and roster recovers by itself when the database is back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use tokio::{
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};

use crate::helpers::{fresh_database, spawn_app_on};

/// Forwards connections to `upstream` until cut; can hold back every
/// chunk for a while (a slow network or database).
struct Proxy {
    address: String,
    cut: Arc<AtomicBool>,
    delay: Arc<Mutex<Duration>>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

/// Copies `from` to `to`, waiting `delay` (as it is now) before each chunk.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Arc<Mutex<Duration>>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let wait = *delay.lock().unwrap();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let delay: Arc<Mutex<Duration>> = Arc::default();
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (flag, tasks, lag) = (cut.clone(), links.clone(), delay.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    drop(client); // refused: closed at once
                    continue;
                }
                let (upstream, lag) = (upstream.clone(), lag.clone());
                let link = tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        let (client_read, client_write) = client.into_split();
                        let (server_read, server_write) = server.into_split();
                        tokio::join!(
                            pump(client_read, server_write, lag.clone()),
                            pump(server_read, client_write, lag)
                        );
                    }
                });
                tasks.lock().unwrap().push(link);
            }
        });
        Proxy {
            address,
            cut,
            delay,
            links,
        }
    }

    fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// Resets every open connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_lost_database_fails_fast_and_roster_recovers_by_itself() {
    if std::env::var("ROSTER_TEST_DATABASE_URL").is_err() {
        eprintln!(
            "skipped: the proxy stands in front of PostgreSQL (set ROSTER_TEST_DATABASE_URL)"
        );
        return;
    }
    let (direct_url, _) = fresh_database().await;
    // postgres://user@HOST:PORT/db?options=... → the same through the proxy.
    let after_at = direct_url.split('@').nth(1).unwrap();
    let host_port = after_at.split('/').next().unwrap().to_owned();
    let proxy = Proxy::start(host_port.clone()).await;
    let proxied_url = direct_url.replacen(&host_port, &proxy.address, 1);
    let app = spawn_app_on(proxied_url, None, |c| {
        c.request_timeout = Duration::from_secs(2)
    })
    .await;
    let alice = app.create_user("alice", false, false).await;
    let token = app.token_for(&alice);
    // `me` alone may come from the token cache; the list always reads.
    let me = || {
        app.gql_as(
            Some(&token),
            "{ me { username } users(first: 1) { nodes { username } } }",
            Value::Null,
        )
    };
    let answer = json!({ "data": {
        "me": { "username": "alice" },
        "users": { "nodes": [{ "username": "alice" }] }
    } });
    let ready = || async {
        app.client
            .get(format!("{}/readyz", app.url))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(me().await.body, answer);
    assert_eq!(ready().await, 200);

    // A slow database: every chunk held back 3 s, past the 2 s deadline.
    proxy.set_delay(Duration::from_secs(3));
    let started = Instant::now();
    let reply = me().await;
    assert_eq!(
        (reply.status, reply.codes()),
        (503, vec!["SERVICE_UNAVAILABLE".to_owned()]),
        "{}",
        reply.body
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    eprintln!(
        "database slow: 503 SERVICE_UNAVAILABLE at the deadline, after {:?}",
        started.elapsed()
    );
    proxy.set_delay(Duration::ZERO);

    proxy.cut();
    let started = Instant::now();
    let reply = me().await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.codes(), vec!["SERVICE_UNAVAILABLE"], "{}", reply.body);
    assert!(
        !reply.body.to_string().contains("Connection"),
        "no internals: {}",
        reply.body
    );
    assert!(waited < Duration::from_secs(7), "failed fast: {waited:?}");
    eprintln!("database cut: SERVICE_UNAVAILABLE after {waited:?}");
    assert_eq!(ready().await, 503);
    // A mutation fails the same way and changes nothing.
    let reply = app.gql("mutation { register(input: {username: \"bob\", email: \"bob@example.com\", password: \"Vq7#pL2m!xZ-roster\"}) { id } }", Value::Null).await;
    assert_eq!(reply.codes(), vec!["SERVICE_UNAVAILABLE"], "{}", reply.body);

    proxy.restore();
    let started = Instant::now();
    loop {
        let reply = me().await;
        if reply.codes().is_empty() {
            assert_eq!(reply.body, answer);
            eprintln!("database back: recovered after {:?}", started.elapsed());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "roster did not recover: {}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(ready().await, 200);
}

/// Another connection holds the database's write lock; a write through
/// roster waits, the request deadline ends it with 503, and once the lock is
/// gone writes go through: the timed-out request left no transaction open.
#[tokio::test]
async fn the_request_deadline_ends_a_stuck_write_and_leaves_nothing_open() {
    let app = crate::helpers::spawn_app_with(|c| c.request_timeout = Duration::from_secs(1)).await;
    let alice = app.create_user("alice", true, false).await;
    let token = app.token_for(&alice);
    let locker = roster::startup::connect(&app.database_url).await.unwrap();
    let lock = sea_orm::TransactionTrait::begin(&locker).await.unwrap();
    let statement = if app.database_url.starts_with("sqlite:") {
        // Any write takes SQLite's one write lock until the transaction ends.
        "UPDATE settings SET value = value"
    } else {
        // Blocks every write to users, not the reads of the token check.
        "LOCK TABLE users IN EXCLUSIVE MODE"
    };
    sea_orm::ConnectionTrait::execute_unprepared(&lock, statement)
        .await
        .unwrap();

    let create = |name: &str| {
        format!(
            "mutation {{ createUser(input: {{username: \"{name}\", email: \"{name}@example.com\"}}) {{ username }} }}"
        )
    };
    let started = Instant::now();
    let reply = app
        .gql_as(Some(&token), &create("stuck"), Value::Null)
        .await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.codes(), vec!["SERVICE_UNAVAILABLE"]);
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // Reads go on meanwhile.
    assert_eq!(
        app.gql_as(Some(&token), "{ me { username } }", Value::Null)
            .await
            .codes(),
        Vec::<String>::new()
    );

    sea_orm::TransactionSession::rollback(lock).await.unwrap();
    let reply = app
        .gql_as(Some(&token), &create("after"), Value::Null)
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "createUser": { "username": "after" } } })
    );
    let stuck = app
        .gql_as(
            Some(&token),
            "{ users(filter: {username: {exact: \"stuck\"}}) { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        stuck.body["data"]["users"]["totalCount"],
        json!(0),
        "the timed-out write did not land"
    );
}

/// Every pooled connection is held elsewhere: a request waits the acquire
/// timeout, then fails with SERVICE_UNAVAILABLE; freed, the pool serves again.
#[tokio::test]
async fn an_exhausted_pool_fails_after_the_acquire_timeout_and_recovers() {
    let app = crate::helpers::spawn_app().await;
    let alice = app.create_user("alice", false, false).await;
    let token = app.token_for(&alice);
    let pool_size = roster::startup::max_connections(&app.database_url);
    let mut held = Vec::new();
    for _ in 0..pool_size {
        held.push(sea_orm::TransactionTrait::begin(app.db()).await.unwrap());
    }
    let started = Instant::now();
    let reply = app
        .gql_as(Some(&token), "{ me { username } }", Value::Null)
        .await;
    let waited = started.elapsed();
    assert_eq!(reply.codes(), vec!["SERVICE_UNAVAILABLE"], "{}", reply.body);
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    drop(held);
    let reply = app
        .gql_as(Some(&token), "{ me { username } }", Value::Null)
        .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "me": { "username": "alice" } } })
    );
}
