//! Two `roster serve` processes over one database behave as one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Reply, fresh_database};

/// A running `roster serve`, killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) url: String,
    client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn roster_command(database_url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_roster"));
    for (name, _) in std::env::vars() {
        if name.starts_with("ROSTER_") {
            command.env_remove(name);
        }
    }
    command
        .env("ROSTER_DATABASE_URL", database_url)
        .env("ROSTER_LOG", "info");
    command
}

/// Starts a server on an ephemeral port and waits until it listens.
pub(crate) fn start(database_url: &str) -> Server {
    let mut child = roster_command(database_url)
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
                let _ = sender.send(
                    rest.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches('/')
                        .to_owned(),
                );
            }
        }
    });
    let url = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("the server did not start");
    Server {
        child,
        url,
        client: reqwest::Client::new(),
    }
}

impl Server {
    async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Reply {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.url))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Reply::from(request.send().await.unwrap()).await
    }

    async fn login(&self, username: &str, password: &str) -> Reply {
        let query = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken refreshToken user { id } } }";
        self.gql(None, query, json!({ "u": username, "p": password }))
            .await
    }
}

#[tokio::test]
async fn two_processes_on_one_database_behave_as_one() {
    let (database_url, _dir) = fresh_database().await;
    let url = database_url.clone();
    let (a, b) = tokio::task::spawn_blocking(move || {
        // One migration first, as the README's operations section says.
        let status = roster_command(&url)
            .args([
                "create-superuser",
                "--username",
                "root",
                "--email",
                "root@example.com",
            ])
            .env("ROSTER_SUPERUSER_PASSWORD", PASSWORD)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        // Both start at once: they race to generate the JWT secret.
        let a_url = url.clone();
        let a = std::thread::spawn(move || start(&a_url));
        let b = start(&url);
        (a.join().unwrap(), b)
    })
    .await
    .unwrap();

    // The secret is shared: a token from one works on the other.
    let root = a.login("root", PASSWORD).await;
    let root_token = root.body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = b
        .gql(Some(&root_token), "{ me { username } }", Value::Null)
        .await;
    assert_eq!(me.body, json!({ "data": { "me": { "username": "root" } } }));

    // A user deactivated through one is refused by the other at once.
    let create = "mutation { createUser(input: {username: \"alice\", email: \"alice@example.com\", password: \"Vq7#pL2m!xZ-roster\"}) { id } }";
    let alice_id =
        a.gql(Some(&root_token), create, Value::Null).await.body["data"]["createUser"]["id"]
            .clone();
    let alice = b.login("alice", PASSWORD).await;
    let alice_token = alice.body["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_refresh = alice.body["data"]["login"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        b.gql(Some(&alice_token), "{ me { username } }", Value::Null)
            .await
            .codes(),
        Vec::<String>::new()
    );

    // A refresh token rotated on one is retired on the other.
    let refresh = "mutation($t: String!) { refreshToken(refreshToken: $t) { refreshToken } }";
    let rotated = a.gql(None, refresh, json!({ "t": alice_refresh })).await;
    assert_eq!(rotated.codes(), Vec::<String>::new());
    assert_eq!(
        b.gql(None, refresh, json!({ "t": alice_refresh }))
            .await
            .codes(),
        vec!["UNAUTHENTICATED"]
    );

    let deactivate = "mutation($id: ID!) { deactivateUser(id: $id) { isActive } }";
    a.gql(Some(&root_token), deactivate, json!({ "id": alice_id }))
        .await;
    assert_eq!(
        b.gql(Some(&alice_token), "{ me { username } }", Value::Null)
            .await
            .codes(),
        vec!["UNAUTHENTICATED"]
    );

    // Failed logins spread over both hit the one limit (5).
    for server in [&a, &b, &a, &b, &a] {
        assert_eq!(
            server.login("root", "wrong-password").await.codes(),
            vec!["UNAUTHENTICATED"]
        );
    }
    assert_eq!(
        b.login("root", PASSWORD).await.codes(),
        vec!["RATE_LIMITED"]
    );
    assert_eq!(
        a.login("root", PASSWORD).await.codes(),
        vec!["RATE_LIMITED"]
    );
}

#[tokio::test]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let (database_url, _dir) = fresh_database().await;
    let url = database_url.clone();
    let mut server = tokio::task::spawn_blocking(move || start(&url))
        .await
        .unwrap();
    // Five logins in one mutation run one after another: over 100 ms of
    // password hashing, still running when the signal arrives.
    let logins: String = (0..5)
        .map(|i| format!("a{i}: login(input: {{username: \"nobody{i}\", password: \"guess\"}}) {{ tokenType }} "))
        .collect();
    let document = format!("mutation {{ {logins} }}");
    let (client, endpoint) = (server.client.clone(), format!("{}/graphql", server.url));
    let in_flight = tokio::spawn(async move {
        let response = client
            .post(endpoint)
            .json(&json!({ "query": document }))
            .send()
            .await
            .unwrap();
        Reply::from(response).await
    });
    tokio::time::sleep(Duration::from_millis(40)).await;
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());

    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.codes(),
        vec!["UNAUTHENTICATED"; 5],
        "every login of the document ran: {}",
        reply.body
    );

    let exit = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().unwrap() {
                return (status, server);
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "roster did not exit"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert_eq!(exit.0.code(), Some(0));
    // Nothing listens any more.
    let refused = exit
        .1
        .client
        .get(format!("{}/healthz", exit.1.url))
        .send()
        .await;
    assert!(refused.is_err());
}
