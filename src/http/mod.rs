//! axum glue: the router, the GraphQL endpoint, GraphiQL and health checks.
mod auth;
mod graphiql;
mod graphql;
mod health;

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    trace::TraceLayer,
};

use crate::{
    graphql::{RosterSchema, parsed_documents::ParsedDocuments},
    state::AppState,
};

/// Request bodies above this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most operations in one batched request.
pub const MAX_BATCH: usize = 10;

/// What the handlers share.
pub struct HttpState {
    pub app: AppState,
    pub schema: RosterSchema,
    pub documents: ParsedDocuments,
}

/// The whole HTTP surface of roster.
pub fn router(app: AppState) -> Router {
    let config = app.config.clone();
    let schema = crate::graphql::build_schema(app.clone());
    // Shared behind one Arc: a request's handler clones one pointer, not
    // each of the state's own.
    let state = Arc::new(HttpState {
        app,
        schema,
        documents: ParsedDocuments::default(),
    });
    let mut router = Router::new()
        .route("/graphql", get(graphql::handle).post(graphql::handle))
        .route("/", get(graphiql::page))
        .route("/graphiql/{asset}", get(graphiql::asset))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            deadline,
        ));
    if let Some(cors) = cors_layer(&config.cors_origins) {
        router = router.layer(cors);
    }
    router.layer(TraceLayer::new_for_http())
}

/// Ends a request that outlives its deadline with 503 and a
/// `SERVICE_UNAVAILABLE` error. Dropping the request's future drops any
/// transaction it held, which rolls back, so nothing is left open.
async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?limit, "request deadline passed");
            let body = serde_json::json!({ "errors": [{
                "message": "The request took longer than the server allows; try again.",
                "extensions": { "code": "SERVICE_UNAVAILABLE" }
            }] });
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}
