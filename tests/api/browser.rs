//! GraphiQL in a real headless Chromium, driven over WebDriver, with every
//! host but loopback unresolvable: the page must load from roster alone,
//! run `{ me { id } }` and show the result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{process::Stdio, time::Duration};

use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_graphiql_page_names_no_outside_host() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(
        !page.contains("http:") && !page.contains("https:") && !page.contains("//cdn"),
        "{page}"
    );
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
        "init.js",
    ] {
        assert!(
            page.contains(&format!("/graphiql/{asset}"))
                || asset == "graphiql.min.css" && page.contains("graphiql.min.css")
        );
        let response = app
            .client
            .get(format!("{}/graphiql/{asset}", app.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{asset}");
    }
    let missing = app
        .client
        .get(format!("{}/graphiql/nope.js", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
}

struct Driver {
    process: std::process::Child,
    base: String,
    client: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = std::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) must be installed");
        let driver = Driver {
            process,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        for _ in 0..100 {
            if driver
                .client
                .get(format!("{}/status", driver.base))
                .send()
                .await
                .is_ok()
            {
                return driver;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start");
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        response.json::<Value>().await.unwrap()["value"].clone()
    }
}

#[tokio::test]
#[ignore = "needs Debian's chromium and chromium-driver; .ci/run installs them and runs it"]
async fn graphiql_runs_a_query_in_a_headless_browser_without_internet() {
    let app = spawn_app().await;
    let driver = Driver::start().await;
    let capabilities = json!({ "capabilities": { "alwaysMatch": {
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic",
                // No network but loopback: an asset from anywhere else would fail.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"
            ]
        }
    } } });
    let session = driver
        .call(reqwest::Method::POST, "/session", capabilities)
        .await;
    let id = session["sessionId"]
        .as_str()
        .expect("a WebDriver session")
        .to_owned();
    let page = format!("{}/?query={}", app.url, "%7B%20me%20%7B%20id%20%7D%20%7D");
    driver
        .call(
            reqwest::Method::POST,
            &format!("/session/{id}/url"),
            json!({ "url": page }),
        )
        .await;

    let script = |source: &str| json!({ "script": source, "args": [] });
    let execute = format!("/session/{id}/execute/sync");
    // Wait for GraphiQL to render its run button, then click it.
    let mut clicked = false;
    for _ in 0..100 {
        let done = driver
            .call(reqwest::Method::POST, &execute, script(
                "var b = document.querySelector('.graphiql-execute-button'); if (b) { b.click(); return true; } return false;",
            ))
            .await;
        if done == json!(true) {
            clicked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(clicked, "GraphiQL did not render");
    let mut result = Value::Null;
    for _ in 0..100 {
        result = driver
            .call(reqwest::Method::POST, &execute, script(
                "var r = document.querySelector('.result-window'); return r ? r.innerText : null;",
            ))
            .await;
        if result
            .as_str()
            .is_some_and(|text| text.contains("\"me\": null"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resources = driver
        .call(reqwest::Method::POST, &execute, script(
            "return performance.getEntriesByType('resource').map(function (e) { return e.name; });",
        ))
        .await;
    driver
        .call(
            reqwest::Method::DELETE,
            &format!("/session/{id}"),
            json!({}),
        )
        .await;

    let text = result.as_str().unwrap_or_default();
    assert!(
        text.contains("\"data\"") && text.contains("\"me\": null"),
        "result window: {result}"
    );
    for resource in resources.as_array().unwrap() {
        assert!(
            resource.as_str().unwrap().starts_with(&app.url),
            "loaded from elsewhere: {resource}"
        );
    }
}
