//! The GraphQL schema: thin resolvers over the services.
mod error_codes;
pub mod guards;
pub mod limits;
pub mod loaders;
mod no_introspection;
mod query;
pub mod scalars;
pub mod types;
pub mod viewer;

use async_graphql::{EmptyMutation, EmptySubscription, Schema, SchemaBuilder};

pub use error_codes::ErrorCodes;
pub use query::Query;
pub use viewer::Viewer;

use crate::state::AppState;

pub type RosterSchema = Schema<Query, EmptyMutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, EmptyMutation, EmptySubscription> {
    Schema::build(Query, EmptyMutation, EmptySubscription)
}

/// The schema the server runs, with the configured limits and its state.
pub fn build_schema(state: AppState) -> RosterSchema {
    let config = state.config.clone();
    let mut builder = builder()
        .data(state)
        .extension(ErrorCodes)
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
