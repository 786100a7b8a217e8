//! `POST /graphql` and `GET /graphql`.
use std::{net::SocketAddr, sync::Arc};

use async_graphql::{
    BatchRequest, BatchResponse, ErrorExtensions, ParseRequestError, Response as GqlResponse,
    ServerError,
    parser::types::{ExecutableDocument, OperationType},
};
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse};
use axum::{
    body::Body,
    extract::{ConnectInfo, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::{HttpState, MAX_BATCH, auth};
use crate::{
    error::Error,
    graphql::{ClientAddr, loaders::Loaders},
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

pub async fn handle(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    request: GraphQLBatchRequest<Rejection>,
) -> Response {
    let mut batch = request.into_inner();
    let content_type = response_content_type(&headers);
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > MAX_BATCH
    {
        let message = format!("A batch may hold at most {MAX_BATCH} operations.");
        return json(
            StatusCode::OK,
            content_type,
            &single_error(&message, "QUERY_TOO_COMPLEX"),
        );
    }
    let mut mutates = false;
    for request in batch.iter_mut() {
        if let Some(document) = state.documents.prepare(request) {
            mutates |= is_mutation(&document, request.operation_name.as_deref());
        }
    }
    if method == Method::GET && mutates {
        let error = single_error("Mutations are not allowed over GET; use POST.", "FORBIDDEN");
        return json(StatusCode::METHOD_NOT_ALLOWED, content_type, &error);
    }
    let viewer = match auth::viewer(&state.app, &headers).await {
        Ok(viewer) => viewer,
        Err(error) => {
            return respond(content_type, each(&batch, &error));
        }
    };
    // A batch with a mutation reads past the caches, so that what it returns
    // (and what its later operations read) shows what it changed.
    let caches = (!mutates).then_some(&state.app.caches);
    // Each operation gets fresh loaders.
    let with_data = |request: async_graphql::Request| {
        request
            .data(viewer.clone())
            .data(Loaders::new(&state.app.db, caches))
            .data(ClientAddr(peer.ip()))
    };
    let batch = match batch {
        BatchRequest::Single(request) => BatchRequest::Single(with_data(request)),
        BatchRequest::Batch(requests) => {
            BatchRequest::Batch(requests.into_iter().map(with_data).collect())
        }
    };
    // After a mutation, this process forgets every cached read, so the very
    // next request sees the change: when the batch has run, or when the
    // deadline drops it.
    let _forget = mutates.then(|| state.app.caches.forget_all_on_drop());
    respond(content_type, state.schema.execute_batch(batch).await)
}

/// Whether the operation a request runs is a mutation: the one it names, or
/// else the document's first (async-graphql refuses a document of several
/// with none named, so that one never runs).
fn is_mutation(document: &ExecutableDocument, operation_name: Option<&str>) -> bool {
    let operation = match operation_name {
        Some(name) => document
            .operations
            .iter()
            .find(|(n, _)| n.is_some_and(|n| n.as_str() == name))
            .map(|(_, op)| op),
        None => document.operations.iter().next().map(|(_, op)| op),
    };
    operation.is_some_and(|op| op.node.ty == OperationType::Mutation)
}

/// The same error, unexecuted, for every operation of the batch.
fn each(batch: &BatchRequest, error: &Error) -> BatchResponse {
    let response = || GqlResponse::from_errors(vec![to_server_error(error)]);
    match batch {
        BatchRequest::Single(_) => BatchResponse::Single(response()),
        BatchRequest::Batch(requests) => {
            BatchResponse::Batch(requests.iter().map(|_| response()).collect())
        }
    }
}

/// An error raised before any field ran: no location, no path.
fn to_server_error(error: &Error) -> ServerError {
    let extended = error.extend();
    let mut server_error = ServerError::new(extended.message, None);
    server_error.extensions = extended.extensions;
    server_error
}

fn single_error(message: &str, code: &str) -> serde_json::Value {
    serde_json::json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
}

/// Clients asking for `application/graphql-response+json` get it; everyone
/// else gets `application/json`.
fn response_content_type(headers: &HeaderMap) -> &'static str {
    let accepts = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accepts.contains(GRAPHQL_RESPONSE_JSON) {
        GRAPHQL_RESPONSE_JSON
    } else {
        "application/json"
    }
}

/// Every GraphQL result is 200, whatever its errors, so clients keep `data`.
fn respond(content_type: &'static str, response: BatchResponse) -> Response {
    let mut response = GraphQLResponse(response).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json(status: StatusCode, content_type: &'static str, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, content_type)],
        Body::from(body.to_string()),
    )
        .into_response()
}

/// A request that is not GraphQL over HTTP at all: 413 when too large, else
/// 400 with `GRAPHQL_PARSE_FAILED`.
pub struct Rejection(ParseRequestError);

impl From<ParseRequestError> for Rejection {
    fn from(error: ParseRequestError) -> Self {
        Rejection(error)
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let too_large = match &self.0 {
            ParseRequestError::PayloadTooLarge => true,
            // The body limit surfaces as an I/O error of the body stream.
            ParseRequestError::Io(e) => e.to_string().contains("length limit exceeded"),
            _ => false,
        };
        if too_large {
            let body = single_error("The request body is larger than 1 MiB.", "BAD_USER_INPUT");
            return json(StatusCode::PAYLOAD_TOO_LARGE, "application/json", &body);
        }
        let message = match &self.0 {
            ParseRequestError::InvalidRequest(_) => "The body is not a GraphQL request in JSON.",
            ParseRequestError::UnsupportedBatch => "Batches are not supported here.",
            _ => "The request could not be read as GraphQL over HTTP.",
        };
        json(
            StatusCode::BAD_REQUEST,
            "application/json",
            &single_error(message, "GRAPHQL_PARSE_FAILED"),
        )
    }
}
