//! A webhook receiver the tests control: an axum server on loopback that
//! records every request and answers as scripted (succeed, fail, 410, slow,
//! `Retry-After`, a `remoteId`), and a Standard Webhooks signature check
//! written from the specification, not taken from the server's code.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
    pub delay: Duration,
    /// An answer that never ends: 64 KiB chunks for as long as it is read.
    pub endless: bool,
}

impl Answer {
    pub fn status(status: u16) -> Self {
        Self {
            status,
            body: String::new(),
            retry_after: None,
            delay: Duration::ZERO,
            endless: false,
        }
    }

    pub fn endless() -> Self {
        Self {
            endless: true,
            ..Self::ok()
        }
    }

    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn json(body: Value) -> Self {
        Self {
            body: body.to_string(),
            ..Self::ok()
        }
    }

    pub fn retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inner {
    received: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Answer>>,
    otherwise: Mutex<Option<Answer>>,
}

/// The receiver; it stops when the test ends.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Inner>,
}

async fn receive(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    inner.received.lock().unwrap().push(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    });
    let answer = inner.script.lock().unwrap().pop_front();
    let answer = answer
        .or_else(|| inner.otherwise.lock().unwrap().clone())
        .unwrap_or_else(Answer::ok);
    tokio::time::sleep(answer.delay).await;
    if answer.endless {
        let chunk = Bytes::from(vec![b' '; 64 * 1024]);
        let chunks = futures_util::stream::repeat(Ok::<_, std::convert::Infallible>(chunk));
        return axum::body::Body::from_stream(chunks).into_response();
    }
    let mut response = (
        StatusCode::from_u16(answer.status).unwrap(),
        [("content-type", "application/json")],
        answer.body,
    )
        .into_response();
    if let Some(value) = answer.retry_after {
        response
            .headers_mut()
            .insert("retry-after", value.parse().unwrap());
    }
    response
}

impl Receiver {
    /// Starts a receiver that answers 200 until told otherwise.
    pub async fn start() -> Self {
        let inner = Arc::new(Inner::default());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, inner }
    }

    /// The next requests are answered so, in turn.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// Once the script is spent, every request is answered so.
    pub fn otherwise(&self, answer: Answer) {
        *self.inner.otherwise.lock().unwrap() = Some(answer);
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.received.lock().unwrap().clone()
    }

    /// Waits (up to `within`) until `count` requests have come.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count || Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Whether `received` carries a valid signature by `secret`, as the
/// Standard Webhooks specification defines it: the secret is `whsec_` and
/// the base64 of the key; the signed content is `id.timestamp.body`; the
/// header lists space-separated `v1,<base64 HMAC-SHA256>` signatures.
pub fn signed_by(received: &Received, secret: &str) -> bool {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let content = format!("{}.{}.{}", received.id, received.timestamp, received.body);
    received.signature.split(' ').any(|signature| {
        let Some(encoded) = signature.strip_prefix("v1,") else {
            return false;
        };
        let Ok(expected) = STANDARD.decode(encoded) else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(content.as_bytes());
        mac.verify_slice(&expected).is_ok()
    })
}
