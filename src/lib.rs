//! roster: a GraphQL server for user management.
//!
//! Data flows one way: HTTP (`http`) → GraphQL resolver (`graphql`) →
//! service (`services`) → entity/database; errors flow back as [`Error`].
pub mod bounded_map;
pub mod checkpoints;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod graphql;
pub mod http;
pub mod measures;
pub mod request_deadline;
pub mod services;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use error::{Error, Result};
