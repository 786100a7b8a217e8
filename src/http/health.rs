use std::{sync::Arc, time::Duration};

use axum::{extract::State, http::StatusCode};

use super::HttpState;

/// 200 while the process runs.
pub async fn live() -> &'static str {
    "ok"
}

/// 200 when the database answers within a second, 503 otherwise.
pub async fn ready(State(state): State<Arc<HttpState>>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(Duration::from_secs(1), state.app.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok"),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
    }
}
