//! The GraphQL schema: thin resolvers over the services.
mod connection;
mod error_codes;
mod filters;
pub mod fuzzing;
pub mod guards;
pub mod hot_paths;
mod inputs;
pub mod limits;
mod listing;
pub mod loaders;
mod mutation;
mod no_introspection;
mod pagination;
pub mod parsed_documents;
mod query;
pub mod scalars;
pub mod types;
pub mod viewer;

use async_graphql::{Context, EmptySubscription, ErrorExtensions, ID, Schema, SchemaBuilder};

pub use error_codes::ErrorCodes;
pub use mutation::Mutation;
pub use query::Query;
pub use viewer::Viewer;

use crate::{error::Error, state::AppState};

pub type RosterSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation::default(), EmptySubscription)
}

/// The schema the server runs, with the configured limits and its state.
pub fn build_schema(state: AppState) -> RosterSchema {
    let config = state.config.clone();
    let mut builder = builder()
        .data(state)
        .extension(ErrorCodes::default())
        .extension(limits::QueryLimits {
            max_depth: config.max_depth,
            max_complexity: config.max_complexity,
        });
    if !config.introspection {
        builder = builder
            .disable_introspection()
            .extension(no_introspection::NoIntrospection);
    }
    builder.finish()
}

/// The schema's SDL, as `roster export-schema` prints it.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The client's IP address, for the login limit.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

/// The app's state, from the schema's data.
pub fn app_state<'a>(ctx: &Context<'a>) -> Result<&'a AppState, Error> {
    ctx.data::<AppState>()
        .map_err(|_| Error::internal(anyhow::anyhow!("no app state in the schema")))
}

/// [`app_state`], as a GraphQL error.
pub fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a AppState> {
    app_state(ctx).map_err(|e| e.extend())
}

/// A database id given as an `ID`; malformed is `BAD_USER_INPUT` on `field`.
pub fn parse_id(id: &ID, field: &str) -> Result<i64, Error> {
    id.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::bad_input(field, "Not a valid id."))
}
