//! axum glue: the router, the GraphQL endpoint, GraphiQL and health checks.
mod auth;
mod body_timeout;
pub mod client_address;
mod graphiql;
mod graphql;
mod health;
pub mod listener;
pub mod persisted_queries;
pub mod request_id;

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
};

use crate::{
    graphql::{RosterSchema, analysis::Limits, parsed_documents::ParsedDocuments},
    request_deadline::RequestDeadline,
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
    pub persisted: persisted_queries::PersistedQueries,
    /// The operation names `/metrics` counts under their own label.
    pub operation_names: crate::measures::OperationNames,
    pub limits: Limits,
}

/// The whole HTTP surface of roster.
pub async fn router(app: AppState) -> Router {
    let config = app.config.clone();
    let schema = crate::graphql::build_schema(app.clone());
    let limits = crate::graphql::document_limits(&config).await;
    // Shared behind one Arc: a request's handler clones one pointer, not
    // each of the state's own.
    let state = Arc::new(HttpState {
        app,
        schema,
        documents: ParsedDocuments::default(),
        persisted: persisted_queries::PersistedQueries::new(config.documents.clone()),
        operation_names: crate::measures::OperationNames::new(config.metrics.max_operation_names),
        limits,
    });
    let graphql = get(graphql::handle)
        .post(graphql::handle)
        .route_layer(middleware::from_fn(require_json_body));
    let mut router = Router::new()
        .route("/graphql", graphql)
        .route("/", get(graphiql::page))
        .route("/graphiql/{asset}", get(graphiql::asset))
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready));
    if config.metrics.on_main {
        let scrape = |State(state): State<Arc<HttpState>>| async move { metrics(&state.app).await };
        router = router.route("/metrics", get(scrape));
    }
    let mut router = router
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            config.request_timeout,
            deadline,
        ));
    if let Some(cors) = cors_layer(&config.cors_origins) {
        router = router.layer(cors);
    }
    router.layer(middleware::from_fn(request_id::assign))
}

/// `/metrics` alone, for `ROSTER_METRICS_BIND`.
pub fn metrics_router(app: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(app): State<AppState>| async move { metrics(&app).await }),
        )
        .with_state(app)
}

/// The Prometheus text exposition; 404 when metrics are off.
async fn metrics(app: &AppState) -> Response {
    match crate::measures::scrape(app).await {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The route label of a request's path for `/metrics`: one of roster's
/// routes, or `other`, whatever path a client sends.
pub fn route_of(path: &str) -> &'static str {
    match path {
        "/graphql" => "/graphql",
        "/" => "/",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        _ if path.starts_with("/graphiql/") => "/graphiql/{asset}",
        _ => "other",
    }
}

/// Ends a request that outlives its deadline with 503 and a
/// `SERVICE_UNAVAILABLE` error. Dropping the request's future drops any
/// transaction it held, which rolls back, so nothing is left open; the
/// statements it runs carry the same deadline and stop with it
/// ([`crate::request_deadline`]).
async fn deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let (deadline, _ends_with_the_request) = RequestDeadline::new(limit);
    let run = deadline.scope(next.run(request));
    match tokio::time::timeout(limit, run).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(?limit, "request deadline passed");
            let message = "The request took longer than the server allows; try again.";
            error_reply(
                StatusCode::SERVICE_UNAVAILABLE,
                JSON,
                message,
                "SERVICE_UNAVAILABLE",
            )
        }
    }
}

/// A POST must say its body is JSON. Anything else, a missing type
/// included, is refused with 415 before the body is read: the content types
/// a web page may send cross-site without a CORS preflight (`text/plain`,
/// forms) never reach the schema. Methods other than GET and POST are 405.
async fn require_json_body(request: Request, next: Next) -> Response {
    let method = request.method();
    if method == Method::GET || (method == Method::POST && is_json(request.headers())) {
        return next.run(request).await;
    }
    if method != Method::POST {
        // HEAD, above all: axum routes it to the GET handler, and
        // async-graphql-axum would read its body as a POST's.
        let message = "Use GET for queries or POST for any operation.";
        return error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            JSON,
            message,
            "BAD_USER_INPUT",
        );
    }
    let message = "A POST to /graphql must have Content-Type: application/json.";
    error_reply(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        JSON,
        message,
        "BAD_USER_INPUT",
    )
}

const JSON: &str = "application/json";

/// An answer carrying one error, with its code, and no data.
fn error_reply(
    status: StatusCode,
    content_type: &'static str,
    message: &str,
    code: &str,
) -> Response {
    crate::measures::error(code);
    let body =
        serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response()
}

/// Whether `Content-Type` is `application/json`, parameters aside.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case(JSON))
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
