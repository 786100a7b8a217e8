//! GraphQL output types, built from entities.
mod division;
mod group;
mod user;

pub use division::{Division, DivisionType};
pub use group::Group;
pub use user::User;
