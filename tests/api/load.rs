//! 1,000 concurrent keep-alive connections issuing `me` for 20 s against one
//! roster process: no errors, bounded memory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{helpers::fresh_database, processes::start_with};

const CONNECTIONS: usize = 1_000;
const DURATION: Duration = Duration::from_secs(20);

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "20 s of load; .ci/run runs it"]
async fn a_thousand_keep_alive_connections_for_twenty_seconds() {
    let (database_url, _dir) = fresh_database().await;
    // A thousand clients, all on one loopback address.
    let settings = [("ROSTER_MAX_CONNECTIONS_PER_CLIENT", "2048")];
    let server = tokio::task::spawn_blocking(move || start_with(&database_url, &settings))
        .await
        .unwrap();
    let pid = server.child.id();
    let register = json!({ "query": "mutation { register(input: {username: \"loader\", email: \"loader@example.com\", password: \"Vq7#pL2m!xZ-roster\"}) { id } }" });
    let client = reqwest::Client::new();
    client
        .post(format!("{}/graphql", server.url))
        .json(&register)
        .send()
        .await
        .unwrap();
    let login = json!({ "query": "mutation { login(input: {username: \"loader\", password: \"Vq7#pL2m!xZ-roster\"}) { accessToken } }" });
    let reply: serde_json::Value = client
        .post(format!("{}/graphql", server.url))
        .json(&login)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = reply["data"]["login"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let deadline = Instant::now() + DURATION;
    let body = json!({ "query": "{ me { id username } }" }).to_string();
    let mut workers = Vec::new();
    for _ in 0..CONNECTIONS {
        // One client each: one keep-alive connection each.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let (url, token, body, ok, failed) = (
            format!("{}/graphql", server.url),
            token.clone(),
            body.clone(),
            ok.clone(),
            failed.clone(),
        );
        workers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let sent = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let good = match sent {
                    Ok(response) if response.status().is_success() => response
                        .text()
                        .await
                        .is_ok_and(|text| text.contains("\"username\":\"loader\"")),
                    _ => false,
                };
                if good {
                    ok.fetch_add(1, Ordering::Relaxed)
                } else {
                    failed.fetch_add(1, Ordering::Relaxed)
                };
            }
        }));
    }
    let mut peak_rss = 0;
    while Instant::now() < deadline {
        peak_rss = peak_rss.max(rss_kib(pid, "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for worker in workers {
        worker.await.unwrap();
    }
    let high_water = rss_kib(pid, "VmHWM:");
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    eprintln!(
        "{CONNECTIONS} connections, {DURATION:?}: {ok} ok ({:.0} req/s), {failed} failed; roster peak RSS {} KiB (VmHWM {} KiB)",
        ok as f64 / DURATION.as_secs_f64(),
        peak_rss,
        high_water
    );
    assert_eq!(failed, 0);
    assert!(ok >= CONNECTIONS as u64, "every connection was served");
    assert!(high_water < 256 * 1024, "bounded memory: {high_water} KiB");
}
