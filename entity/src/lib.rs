//! SeaORM entities of roster's database: plain data, no GraphQL and no hashing.
//!
//! Every `*_folded` column holds the full Unicode case fold of its source
//! column, computed in Rust on write, so that case-insensitive uniqueness and
//! lookups behave the same on SQLite and PostgreSQL.

pub mod division;
pub mod event;
pub mod group;
pub mod group_permission;
pub mod login_failure;
pub mod membership;
pub mod refresh_token;
pub mod setting;
pub mod user;
pub mod webhook;
pub mod webhook_attempt;
pub mod webhook_delivery;

pub mod prelude {
    pub use super::division::Entity as Division;
    pub use super::event::Entity as Event;
    pub use super::group::Entity as Group;
    pub use super::group_permission::Entity as GroupPermission;
    pub use super::login_failure::Entity as LoginFailure;
    pub use super::membership::Entity as Membership;
    pub use super::refresh_token::Entity as RefreshToken;
    pub use super::setting::Entity as Setting;
    pub use super::user::Entity as User;
    pub use super::webhook::Entity as Webhook;
    pub use super::webhook_attempt::Entity as WebhookAttempt;
    pub use super::webhook_delivery::Entity as WebhookDelivery;
}
