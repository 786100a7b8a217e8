//! `POST /graphql` and `GET /graphql`.
use std::{
    collections::{BTreeMap, HashMap},
    net::SocketAddr,
    sync::Arc,
};

use async_graphql::{
    BatchRequest, ErrorExtensions, ParseRequestError, PathSegment, Response as GqlResponse,
    ServerError, Value, parser::types::DocumentOperations,
};
use async_graphql_axum::GraphQLBatchRequest;
use axum::{
    extract::{ConnectInfo, RawQuery, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{
    HttpState, JSON, MAX_BATCH, auth, error_reply,
    persisted_queries::{self, Resolved, Trust},
    request_id,
};
use crate::{
    error::Error,
    graphql::{
        ClientAddr,
        analysis::{self, Refusal, RequestBudget},
        error_codes::take_executed_mark,
        loaders::Loaders,
    },
    services::reads::Reader,
};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

pub async fn handle(
    State(state): State<Arc<HttpState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    request: GraphQLBatchRequest<Rejection>,
) -> Response {
    let content_type = response_content_type(&headers);
    let (mut requests, batched) = match request.into_inner() {
        BatchRequest::Single(request) => (vec![request], false),
        BatchRequest::Batch(requests) => (requests, true),
    };
    if requests.len() > MAX_BATCH {
        let message = format!("A batch may hold at most {MAX_BATCH} operations.");
        return error_reply(StatusCode::OK, content_type, &message, "QUERY_TOO_COMPLEX");
    }
    // A document named by its hash (or by a trusted manifest's id) is
    // filled in before anything else reads the request.
    let resolved: Vec<_> = requests
        .iter_mut()
        .map(|request| state.persisted.resolve(request))
        .collect();
    let sent_nothing = |(request, resolved): (&async_graphql::Request, &Result<_, _>)| {
        resolved.is_ok() && request.query.trim().is_empty()
    };
    if requests.iter().zip(&resolved).any(sent_nothing) {
        let message = "A request must carry a query.";
        return error_reply(
            StatusCode::BAD_REQUEST,
            content_type,
            message,
            "GRAPHQL_PARSE_FAILED",
        );
    }
    if method == Method::GET {
        // async-graphql reads `operation_name` from a query string; GraphQL
        // over HTTP names it `operationName`.
        let name = query
            .and_then(|query| serde_urlencoded::from_str::<HashMap<String, String>>(&query).ok())
            .and_then(|mut params| params.remove("operationName"));
        for request in &mut requests {
            if request.operation_name.is_none() {
                request.operation_name.clone_from(&name);
            }
        }
    }
    // When only trusted documents run, staff may be let through: the only
    // case in which the token is read before the documents are.
    let untrusted = resolved.iter().any(|r| {
        matches!(
            r,
            Ok(Resolved {
                trust: Trust::Untrusted,
                ..
            })
        )
    });
    let mut viewer = None;
    let mut staff = false;
    let bypass = state.persisted.policy().staff_bypass;
    if untrusted && bypass {
        let read = auth::viewer(&state.app, &headers).await;
        staff = read
            .as_ref()
            .is_ok_and(|access| access.may_send_untrusted_documents(bypass));
        viewer = Some(read);
    }
    // Each document is parsed and measured before anything else walks it,
    // and async-graphql gets only the operation that runs and the fragments
    // it reaches; a request the limits refuse never reaches async-graphql,
    // and an untrusted one is not even parsed.
    let mut mutates = false;
    let mut budget = RequestBudget::default();
    let mut not_found = false;
    let plans: Vec<Plan> = requests
        .iter_mut()
        .zip(&resolved)
        .map(|(request, resolved)| match resolved {
            Err(refusal) => {
                not_found |= refusal.code == persisted_queries::NOT_FOUND;
                Plan::Refused(refusal.clone())
            }
            Ok(Resolved {
                trust: Trust::Untrusted,
                ..
            }) if !staff => Plan::Refused(persisted_queries::untrusted()),
            Ok(_) => plan(&state, request, &mut budget, &mut mutates),
        })
        .collect();
    if method == Method::GET && mutates {
        let message = "Mutations are not allowed over GET; use POST.";
        return error_reply(
            StatusCode::METHOD_NOT_ALLOWED,
            content_type,
            message,
            "FORBIDDEN",
        );
    }
    let viewer = match viewer {
        Some(read) => read,
        None => auth::viewer(&state.app, &headers).await,
    };
    let viewer = match viewer {
        Ok(viewer) => viewer,
        Err(error) => {
            let answers = requests
                .iter()
                .map(|_| Answer::unexecuted(&error))
                .collect();
            return respond(content_type, batched, answers, not_found);
        }
    };
    // A batch with a mutation reads past the caches, so that what it returns
    // (and what its later operations read) shows what it changed.
    let caches = (!mutates).then_some(&state.app.caches);
    // After a mutation that may have written, this process forgets every
    // cached read, so the very next request sees the change: when the batch
    // has run, or when the deadline drops it. One that wrote nothing (it
    // was refused, selected only `__typename` or `logout`, or each of its
    // writing fields was refused before writing) forgets nothing, so that
    // cheap anonymous mutations cannot empty the caches for everyone.
    let may_write = plans.iter().any(Plan::may_write);
    let client = ClientAddr(state.app.config.trusted_proxies.client(peer.ip(), &headers));
    let mut forget = may_write.then(|| state.app.caches.forget_all_on_drop());
    // The operations of a batch run concurrently, each with fresh loaders.
    let answers = requests.into_iter().zip(plans).zip(&resolved);
    let answers = answers.map(|((request, plan), resolved)| {
        // A document sent with its hash is kept once it has run: it passed
        // every check and validated.
        let to_keep = resolved.as_ref().ok().and_then(|r| r.to_keep(&request));
        let request = request
            .data(viewer.clone().asking_from(client.0))
            .data(Loaders::new(Reader::new(
                &state.app.db,
                caches,
                &state.app.config,
            )))
            .data(client);
        async {
            match plan {
                Plan::Refused(refusal) => (Answer::refused(refusal), Wrote::Nothing),
                Plan::Run {
                    writers,
                    announcers,
                    measured,
                } => {
                    let started = std::time::Instant::now();
                    let answer = Answer::from(state.schema.execute(request).await);
                    // Labelled once it ran: only names of operations that
                    // exist take the bounded set's places.
                    if let Some(Measured { kind, name }) = measured.filter(|_| answer.executed) {
                        let took = started.elapsed();
                        state.operation_names.record(kind, name.as_deref(), took);
                    }
                    if let Some(to_keep) = to_keep.filter(|_| answer.executed) {
                        state.persisted.keep(to_keep);
                    }
                    let wrote = if answer.may_have_written(&announcers) {
                        Wrote::WhatOthersCheck
                    } else if answer.may_have_written(&writers) {
                        Wrote::Something
                    } else {
                        Wrote::Nothing
                    };
                    (answer, wrote)
                }
            }
        }
    });
    let (answers, wrote): (Vec<Answer>, Vec<Wrote>) = futures_util::future::join_all(answers)
        .await
        .into_iter()
        .unzip();
    if wrote.contains(&Wrote::WhatOthersCheck) {
        // Other processes learn of the change before the client does.
        state.app.caches.await_own_changes(&state.app.db).await;
    }
    if wrote.iter().all(|w| *w == Wrote::Nothing) {
        if let Some(forget) = forget.as_mut() {
            forget.disarm();
        }
    } else {
        // What it queued has committed: the webhook worker may send it.
        state.app.deliverer.look_now();
    }
    respond(content_type, batched, answers, not_found)
}

/// Checks one operation of the request and gives async-graphql the pruned
/// document to run; notes in `mutates` whether it is a mutation.
fn plan(
    state: &HttpState,
    request: &mut async_graphql::Request,
    budget: &mut RequestBudget,
    mutates: &mut bool,
) -> Plan {
    if let Err(refusal) = analysis::check_text(&request.query) {
        return Plan::Refused(refusal);
    }
    let Some(document) = state.documents.prepare(request) else {
        // It does not parse: async-graphql says why.
        return Plan::Run {
            writers: Vec::new(),
            announcers: Vec::new(),
            measured: None,
        };
    };
    let operation = request.operation_name.as_deref();
    let named = operation.or_else(|| match &document.operations {
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            operations.keys().next().map(|name| name.as_str())
        }
        _ => None,
    });
    // Only a name as GraphQL spells names reaches a log line or a label:
    // `operationName` is the client's text until an operation answers to it.
    let named = named.filter(|name| request_id::is_operation_name(name));
    if let Some(name) = named {
        request_id::record_operation(name);
    }
    let mutation = analysis::is_mutation(&document, operation);
    *mutates |= mutation;
    let measured = crate::measures::enabled().then(|| Measured {
        kind: if mutation { "mutation" } else { "query" },
        name: named.map(str::to_owned),
    });
    match state
        .limits
        .check(&document, operation, &request.variables, budget)
    {
        Err(refusal) => Plan::Refused(refusal),
        Ok(pruned) => {
            let writers = analysis::writers(&pruned);
            let announcers = analysis::announcers(&pruned);
            request.set_parsed_query(pruned);
            Plan::Run {
                writers,
                announcers,
                measured,
            }
        }
    }
}

/// What the handler does with one operation of the request.
enum Plan {
    Refused(Refusal),
    /// Run it; `writers`: the response keys of its root fields that may
    /// write, if it is a mutation; `announcers`: those of them that may
    /// write what other processes check (`analysis::announcers`).
    Run {
        writers: Vec<String>,
        announcers: Vec<String>,
        measured: Option<Measured>,
    },
}

/// How `/metrics` counts an operation that runs (when metrics are on).
struct Measured {
    kind: &'static str,
    /// Its name, when it has one spelled as GraphQL names are.
    name: Option<String>,
}

impl Plan {
    fn may_write(&self) -> bool {
        matches!(self, Plan::Run { writers, .. } if !writers.is_empty())
    }
}

/// What one operation may have written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wrote {
    Nothing,
    /// Only what no other process needs to hear of at once.
    Something,
    /// What other processes cache and check tokens against.
    WhatOthersCheck,
}

/// One operation's response, and whether it ran: a request error (the
/// document does not parse or validate, a variable is missing, a limit is
/// passed) runs nothing and has no `data` key.
struct Answer {
    response: GqlResponse,
    executed: bool,
}

impl Answer {
    fn from(mut response: GqlResponse) -> Self {
        let executed = take_executed_mark(&mut response);
        if !executed {
            // Such as "Unknown operation named ...", which async-graphql
            // raises after validation, with no code.
            for error in &mut response.errors {
                let extensions = error.extensions.get_or_insert_with(Default::default);
                if extensions.get("code").is_none() {
                    extensions.set("code", Value::from("GRAPHQL_VALIDATION_FAILED"));
                }
            }
        }
        Self { response, executed }
    }

    /// Whether an operation whose root fields `writers` may write did
    /// write: one of them has a value, or an error says something ran that
    /// may have committed. Only an error at a writing field itself, with a
    /// code raised before anything is written (a refusal), shows that field
    /// wrote nothing; an error below a field (its child failed after it
    /// resolved, nulling the answer up to the root), one at no field, or an
    /// internal or database error may follow a commit.
    fn may_have_written(&self, writers: &[String]) -> bool {
        if writers.is_empty() || !self.executed {
            return false;
        }
        let is_writer = |key: &str| writers.iter().any(|writer| writer == key);
        let wrote_value = match &self.response.data {
            Value::Object(fields) => fields
                .iter()
                .any(|(key, value)| *value != Value::Null && is_writer(key.as_str())),
            _ => false,
        };
        wrote_value
            || self
                .response
                .errors
                .iter()
                .any(|error| match error.path.as_slice() {
                    [PathSegment::Field(key)] => is_writer(key) && !refused_before_writing(error),
                    _ => true,
                })
    }

    fn refused(refusal: Refusal) -> Self {
        let mut error = ServerError::new(refusal.message.clone(), None);
        let extensions = error.extensions.get_or_insert_with(Default::default);
        extensions.set("code", Value::from(refusal.code));
        if let Some(field) = refusal.field {
            let messages = Value::List(vec![Value::from(refusal.message)]);
            let fields = [(async_graphql::Name::new(field), messages)];
            extensions.set("fields", Value::Object(fields.into_iter().collect()));
        }
        Self {
            response: GqlResponse::from_errors(vec![error]),
            executed: false,
        }
    }

    /// An error raised before any operation ran that is not a request error
    /// (a bad token): `data` is null.
    fn unexecuted(error: &Error) -> Self {
        Self {
            response: GqlResponse::from_errors(vec![to_server_error(error)]),
            executed: true,
        }
    }
}

/// A response as sent: `data` only when the operation ran.
#[derive(Serialize)]
struct Sent<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [ServerError],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    extensions: &'a BTreeMap<String, Value>,
}

impl<'a> From<&'a Answer> for Sent<'a> {
    fn from(answer: &'a Answer) -> Self {
        Sent {
            data: answer.executed.then_some(&answer.response.data),
            errors: &answer.response.errors,
            extensions: &answer.response.extensions,
        }
    }
}

/// A GraphQL result is 200, whatever its errors, so clients keep `data`;
/// a request error is 400 to clients that asked for
/// `application/graphql-response+json` (GraphQL over HTTP).
/// `not_found`: an operation's persisted query was not found; a cache
/// between client and server must not keep that answer, which the client's
/// next request (with the document) makes untrue.
fn respond(
    content_type: &'static str,
    batched: bool,
    answers: Vec<Answer>,
    not_found: bool,
) -> Response {
    if crate::measures::enabled() {
        let codes = answers.iter().flat_map(|answer| &answer.response.errors);
        for error in codes {
            if let Some(Value::String(code)) = error.extensions.as_ref().and_then(|e| e.get("code"))
            {
                crate::measures::error(code);
            }
        }
    }
    let body = if batched {
        let bodies: Vec<Sent> = answers.iter().map(Sent::from).collect();
        serde_json::to_vec(&bodies)
    } else {
        answers.first().map_or(Ok(Vec::new()), |answer| {
            serde_json::to_vec(&Sent::from(answer))
        })
    };
    let request_error = !batched && answers.first().is_some_and(|answer| !answer.executed);
    let status = if request_error && content_type == GRAPHQL_RESPONSE_JSON {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    match body {
        Ok(body) => {
            let mut response =
                (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
            if not_found {
                response.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, no-cache, must-revalidate"),
                );
            }
            response
        }
        Err(_) => error_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            JSON,
            "Internal error.",
            "INTERNAL_SERVER_ERROR",
        ),
    }
}

/// Whether `error` is a refusal, which a service raises before it writes.
fn refused_before_writing(error: &ServerError) -> bool {
    let extensions = error.extensions.as_ref();
    let code = extensions.and_then(|e| e.get("code"));
    // SERVICE_UNAVAILABLE with `retryAfter` is the password hasher's
    // refusal, which comes before anything is written; without it, the
    // database failed, perhaps after a commit.
    let busy = extensions.is_some_and(|e| e.get("retryAfter").is_some());
    matches!(
        code,
        Some(Value::String(code)) if matches!(
            code.as_str(),
            "UNAUTHENTICATED" | "FORBIDDEN" | "NOT_FOUND" | "BAD_USER_INPUT" | "CONFLICT"
                | "DIVISION_INACTIVE" | "RATE_LIMITED"
        ) || (code == "SERVICE_UNAVAILABLE" && busy)
    )
}

/// An error raised before any field ran: no location, no path.
fn to_server_error(error: &Error) -> ServerError {
    let extended = error.extend();
    let mut server_error = ServerError::new(extended.message, None);
    server_error.extensions = extended.extensions;
    server_error
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
        JSON
    }
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
        // A body that paused longer than ROSTER_BODY_READ_TIMEOUT_SECS.
        if let ParseRequestError::Io(e) = &self.0
            && e.to_string().contains("not received within")
        {
            let message = "The request body was not received in time.";
            return error_reply(StatusCode::REQUEST_TIMEOUT, JSON, message, "BAD_USER_INPUT");
        }
        if too_large {
            let message = "The request body is larger than 1 MiB.";
            return error_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                JSON,
                message,
                "BAD_USER_INPUT",
            );
        }
        let message = match &self.0 {
            ParseRequestError::InvalidRequest(_) => "The body is not a GraphQL request in JSON.",
            ParseRequestError::UnsupportedBatch => "Batches are not supported here.",
            _ => "The request could not be read as GraphQL over HTTP.",
        };
        error_reply(
            StatusCode::BAD_REQUEST,
            JSON,
            message,
            "GRAPHQL_PARSE_FAILED",
        )
    }
}
