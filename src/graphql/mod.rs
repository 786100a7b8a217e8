//! The GraphQL schema: thin resolvers over the services.
pub mod analysis;
mod connection;
pub mod error_codes;
pub mod fuzzing;
pub mod guards;
pub mod hot_paths;
mod inputs;
mod lists;
pub mod loaders;
mod mutation;
mod no_introspection;
pub mod parsed_documents;
mod query;
pub mod scalars;
pub mod types;

use async_graphql::{Context, EmptySubscription, ErrorExtensions, ID, Schema, SchemaBuilder};

pub use error_codes::ErrorCodes;
pub use mutation::Mutation;
pub use query::Query;

use crate::{error::Error, state::AppState};

pub type RosterSchema = Schema<Query, Mutation, EmptySubscription>;

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query, Mutation::default(), EmptySubscription)
}

/// The schema the server runs, with its state. The limits on documents are
/// checked before a request reaches it ([`analysis`]).
pub fn build_schema(state: AppState) -> RosterSchema {
    let config = state.config.clone();
    let mut builder = builder().data(state).extension(ErrorCodes::default());
    if !config.introspection {
        builder = builder
            .disable_introspection()
            .extension(no_introspection::NoIntrospection);
    }
    builder.finish()
}

/// The limits documents are held to under `config`, with this schema's
/// introspection lists measured by answering the full introspection query.
pub async fn document_limits(config: &crate::config::Config) -> analysis::Limits {
    let answer = builder()
        .finish()
        .execute(analysis::FULL_INTROSPECTION)
        .await;
    let data = serde_json::to_value(&answer.data).unwrap_or_default();
    analysis::Limits::new(config, analysis::IntrospectionSizes::from_answer(&data))
}

/// The schema's SDL, as `roster export-schema` prints it.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The client's IP address (the TCP peer, or what a trusted proxy says),
/// for the login limit and the client budget.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub std::net::IpAddr);

impl ClientAddr {
    /// The client's network as the limits key it: its IPv4 address or its
    /// IPv6 /64.
    pub fn network_key(&self) -> String {
        crate::http::client_address::network_key(self.0)
    }
}

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
    crate::services::parse_id(id.as_str(), field)
}
