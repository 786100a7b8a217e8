//! The write side of roster, one object per domain, merged.
mod admin;
mod auth;
mod webhooks;

use async_graphql::MergedObject;

/// Every mutation of roster.
#[derive(MergedObject, Default)]
pub struct Mutation(
    auth::AuthMutation,
    admin::AdminMutation,
    webhooks::WebhookMutation,
);
