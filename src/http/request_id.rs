//! Every request's id: the client's `x-request-id` when it is sane,
//! otherwise a new one. It is returned in the response's `x-request-id`
//! and carried by the span every log line of the request is written in.
use axum::{
    extract::Request,
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use rand::Rng;
use tracing::Instrument;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id taken from a client.
const MAX_LENGTH: usize = 128;

/// Runs the request in a span holding its id, method and path (the
/// GraphQL handler adds the operation's name), and answers with the id.
pub async fn assign(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_sane(id))
        .map_or_else(new_id, str::to_owned);
    let path = request.uri().path();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %&path[..path.floor_char_boundary(MAX_LENGTH)],
        operation = tracing::field::Empty,
    );
    let route = super::route_of(path);
    let started = std::time::Instant::now();
    let run = RECORDED.scope(std::cell::Cell::new(false), next.run(request));
    let mut response = run.instrument(span.clone()).await;
    crate::measures::http_request(route, response.status().as_u16());
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// Names the operation of the request on its span (the first of a batch
/// that has a name); `name` must pass [`is_operation_name`].
pub fn record_operation(name: &str) {
    let span = tracing::Span::current();
    if span.has_field("operation") && !RECORDED.try_with(|r| r.get()).unwrap_or(true) {
        span.record("operation", tracing::field::display(name));
        let _ = RECORDED.try_with(|r| r.set(true));
    }
}

tokio::task_local! {
    /// Whether the request's span has its operation's name yet.
    static RECORDED: std::cell::Cell<bool>;
}

/// A GraphQL name (`[_A-Za-z][_0-9A-Za-z]*`) of at most 64 characters: what
/// may go into a log line or a metric label.
pub fn is_operation_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b == b'_' || b.is_ascii_alphabetic())
        && name.len() <= 64
        && bytes.all(|b| b == b'_' || b.is_ascii_alphanumeric())
}

/// What a log line can carry safely: letters, digits and `-_.:/+=`, at
/// most 128 of them (a UUID, a trace id, a load balancer's id).
fn is_sane(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LENGTH
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b))
}

fn new_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_taken_from_clients() {
        for sane in [
            "a",
            "3f2c-11aa",
            "Root=1-5759e988-bd862e3fe1be46a994272793",
            "x".repeat(128).as_str(),
        ] {
            assert!(is_sane(sane), "{sane}");
        }
        for insane in [
            "",
            "a b",
            "a\"b",
            "line\nbreak",
            "é",
            "x".repeat(129).as_str(),
            "{\"json\":1}",
        ] {
            assert!(!is_sane(insane), "{insane}");
        }
        let id = new_id();
        assert_eq!(id.len(), 32);
        for name in ["Me", "_x", "LogIn2", "a".repeat(64).as_str()] {
            assert!(is_operation_name(name), "{name}");
        }
        for name in ["", "2fa", "a b", "x\n", "é", "a".repeat(65).as_str()] {
            assert!(!is_operation_name(name), "{name}");
        }
        assert!(is_sane(&id) && id != new_id());
    }
}
