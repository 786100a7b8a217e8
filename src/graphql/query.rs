use async_graphql::{Context, Object};

use super::{Viewer, guards::viewer, types::User};

/// The read side of roster.
pub struct Query;

#[Object]
impl Query {
    /// The user the request's access token speaks for; null when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        match viewer(ctx) {
            Viewer::User(user) => Some(User::new(user.clone())),
            Viewer::Anonymous => None,
        }
    }
}
