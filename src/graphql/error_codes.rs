//! Shapes errors as the contract wants them:
//! - every error async-graphql raises by itself (parse, validation,
//!   argument coercion) gets the contract's `extensions.code`;
//! - a nullable field whose resolver fails resolves to `null` (async-graphql
//!   would leave the key out, or null the whole `data` at the root), and its
//!   error, path included, is added to the response;
//! - an error a resolver returned as roster's own [`Error`] (converted by
//!   `?`, which keeps it as the error's source) gets its code, fields and
//!   `retryAfter` here, at the schema's edge, so that no resolver can lose
//!   them;
//! - a response that comes from running the operation is marked, so that
//!   the HTTP layer can tell it from a request error (one that stopped the
//!   request before anything ran), which has no `data` at all.
use std::sync::{Arc, Mutex};

use async_graphql::{
    Response, ServerError, ServerResult, ValidationResult, Value, Variables,
    extensions::{
        Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextResolve,
        NextValidation, ResolveInfo,
    },
    parser::types::ExecutableDocument,
};

use crate::error::Error;

/// The (never sent) header that marks a response whose operation ran.
const EXECUTED: &str = "x-roster-executed";

/// Whether the operation of `response` ran, as opposed to a request error
/// (parse, validation, an unknown operation) that stopped it first. Removes
/// the mark.
pub fn take_executed_mark(response: &mut Response) -> bool {
    response.http_headers.remove(EXECUTED).is_some()
}

/// One per request: holds the errors of the nullable fields it nulled.
#[derive(Default)]
pub struct ErrorCodes {
    nulled: Mutex<Vec<ServerError>>,
}

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes::default())
    }
}

fn has_code(error: &ServerError) -> bool {
    error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some())
}

fn set_code(error: &mut ServerError, code: &str) {
    if !has_code(error) {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", Value::from(code));
    }
}

/// The code of an error a resolver passed on with `?`: roster's own error
/// knows its code; any other source (a database or library error that
/// should have become one) is internal, logged and shown as such.
fn give_code(error: &mut ServerError) {
    if has_code(error) {
        return;
    }
    let Some(source) = error.source.clone() else {
        return;
    };
    let ours = match source.downcast_ref::<Error>() {
        Some(ours) => ours,
        None => {
            let internal = Error::internal(anyhow::anyhow!("{}", error.message));
            error.message = internal.to_string();
            error.source = None;
            let ext = error.extensions.get_or_insert_with(Default::default);
            return internal.extend_values(ext);
        }
    };
    ours.extend_values(error.extensions.get_or_insert_with(Default::default));
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        next.run(ctx, query, variables).await.map_err(|mut error| {
            set_code(&mut error, "GRAPHQL_PARSE_FAILED");
            error
        })
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for error in &mut errors {
                set_code(error, "GRAPHQL_VALIDATION_FAILED");
            }
            errors
        })
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let nullable = !info.return_type.ends_with('!');
        let result = next.run(ctx, info).await.map_err(|mut error| {
            // At once, so that an internal error is logged even when the
            // request is dropped before it ends.
            give_code(&mut error);
            error
        });
        match result {
            Err(error) if nullable => {
                if let Ok(mut nulled) = self.nulled.lock() {
                    nulled.push(error);
                }
                Ok(Some(Value::Null))
            }
            other => other,
        }
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        if let Ok(mut nulled) = self.nulled.lock() {
            response.errors.append(&mut nulled);
        }
        for error in &mut response.errors {
            give_code(error);
            // What is left comes from coercing arguments (a malformed
            // DateTime, say).
            set_code(error, "BAD_USER_INPUT");
        }
        response
            .http_headers
            .insert(EXECUTED, axum::http::HeaderValue::from_static("1"));
        response
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
    use serde_json::json;

    use super::ErrorCodes;
    use crate::error::Error;

    struct Query;

    #[Object]
    impl Query {
        async fn ours(&self) -> async_graphql::Result<i32> {
            Err(Error::bad_input("name", "Too long.").into())
        }

        async fn foreign(&self) -> async_graphql::Result<Option<i32>> {
            Err(std::io::Error::other("the disk /dev/sda1 is on fire").into())
        }
    }

    async fn errors_of(query: &str) -> serde_json::Value {
        let schema = Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(ErrorCodes::default())
            .finish();
        let response = schema.execute(query).await;
        serde_json::to_value(&response.errors).unwrap_or_default()
    }

    #[tokio::test]
    async fn an_error_passed_on_with_a_question_mark_gets_its_code_at_the_edge() {
        let errors = errors_of("{ ours }").await;
        assert_eq!(errors[0]["extensions"]["code"], "BAD_USER_INPUT");
        assert_eq!(
            errors[0]["extensions"]["fields"],
            json!({ "name": ["Too long."] })
        );
        // Not ours: internal, with nothing of its text.
        let errors = errors_of("{ foreign }").await;
        assert_eq!(errors[0]["extensions"]["code"], "INTERNAL_SERVER_ERROR");
        assert_eq!(errors[0]["message"], "Internal error.");
    }
}
