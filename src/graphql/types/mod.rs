//! GraphQL output types, built from entities.
mod audit_event;
mod division;
mod group;
mod permission;
mod user;
mod webhook;

pub use audit_event::{AuditEvent, AuditEventType};
pub use division::{Division, DivisionType};
pub use group::Group;
pub use permission::{Permission, listed as listed_permissions};
pub use user::User;
pub use webhook::{
    Webhook, WebhookDelivery, WebhookDeliveryFilter, WebhookDeliveryStatus, WebhookSecretPayload,
};
