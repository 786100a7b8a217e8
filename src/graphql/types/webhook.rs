use async_graphql::{Context, Enum, ID, InputObject, Object, SimpleObject};
use entity::{webhook, webhook_attempt};

use super::{AuditEvent, AuditEventType};
use crate::{
    graphql::{connection::WebhookDeliveryConnection, lists, scalars::DateTime},
    services::{
        outbox::DeliveryStatus,
        reads::pagination::PageArgs,
        webhooks::{DeliveryView, event_types_of},
    },
};

/// Where a delivery is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "DeliveryStatus")]
pub enum WebhookDeliveryStatus {
    /// Waiting for its next attempt (or for its endpoint to be active
    /// again).
    Pending,
    /// An attempt got a 2xx answer.
    Succeeded,
    /// Its attempts ran out, or the endpoint answered 410 Gone.
    Failed,
}

/// What the deliveries listed meet.
#[derive(InputObject)]
pub struct WebhookDeliveryFilter {
    /// Only deliveries with this status.
    pub status: Option<WebhookDeliveryStatus>,
}

/// An endpoint that roster delivers events to, signed as the Standard
/// Webhooks specification says. Superusers only.
#[derive(Clone)]
pub struct Webhook(pub webhook::Model);

#[Object]
impl Webhook {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Where deliveries are POSTed.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// What it is for, in a few words.
    async fn description(&self) -> &str {
        &self.0.description
    }

    /// The event types delivered; empty: every type.
    async fn event_types(&self) -> Vec<AuditEventType> {
        event_types_of(&self.0)
            .into_iter()
            .map(Into::into)
            .collect()
    }

    /// Whether events are delivered. Pending deliveries wait while it is
    /// not.
    async fn is_active(&self) -> bool {
        self.0.is_active
    }

    /// Why roster turned it off (it answered 410 Gone); null otherwise.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }

    /// Its deliveries, newest first.
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What every delivery returned meets.")] filter: Option<
            WebhookDeliveryFilter,
        >,
        #[graphql(desc = "Forward page: this many deliveries.")] first: Option<i32>,
        #[graphql(desc = "Forward page: after this cursor.")] after: Option<String>,
        #[graphql(desc = "Backward page: this many deliveries.")] last: Option<i32>,
        #[graphql(desc = "Backward page: before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<WebhookDeliveryConnection> {
        let page = PageArgs::new(first, after, last, before, None, None);
        let status = filter.and_then(|f| f.status).map(Into::into);
        lists::webhook_deliveries(ctx, self.0.id, status, page).await
    }
}

/// One event to send to one endpoint, and its attempts.
#[derive(Clone)]
pub struct WebhookDelivery(pub DeliveryView);

#[Object]
impl WebhookDelivery {
    async fn id(&self) -> ID {
        ID(self.0.delivery.id.to_string())
    }

    /// The event delivered (its `webhook-id` header is `evt_` and the
    /// event's id).
    async fn event(&self) -> Option<AuditEvent> {
        self.0.event.clone().map(AuditEvent)
    }

    async fn status(&self) -> WebhookDeliveryStatus {
        DeliveryStatus::of(&self.0.delivery).into()
    }

    /// Every attempt, oldest first.
    async fn attempts(&self) -> Vec<WebhookAttempt> {
        self.0.attempts.iter().map(WebhookAttempt::from).collect()
    }

    /// When it is next tried, while it is pending.
    async fn next_attempt_at(&self) -> Option<DateTime> {
        if DeliveryStatus::of(&self.0.delivery) != DeliveryStatus::Pending {
            return None;
        }
        chrono::DateTime::from_timestamp_millis(self.0.delivery.next_attempt_at).map(Into::into)
    }

    /// When it was queued.
    async fn created_at(&self) -> DateTime {
        self.0.delivery.created_at.into()
    }
}

/// One try at sending a delivery.
#[derive(SimpleObject, Clone)]
pub struct WebhookAttempt {
    /// When it was made.
    pub at: DateTime,
    /// The endpoint's HTTP status; null when no answer came.
    pub status_code: Option<i32>,
    /// How long it took, in milliseconds.
    pub duration_ms: i64,
    /// Why it failed (`timeout`, `HTTP 500`, `refused: not a public
    /// address`); null when it succeeded.
    pub error: Option<String>,
}

impl From<&webhook_attempt::Model> for WebhookAttempt {
    fn from(attempt: &webhook_attempt::Model) -> Self {
        Self {
            at: attempt.attempted_at.into(),
            status_code: attempt.status_code,
            duration_ms: attempt.duration_ms,
            error: attempt.error.clone(),
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(SimpleObject)]
pub struct WebhookSecretPayload {
    /// The endpoint.
    pub webhook: Webhook,
    /// `whsec_` and the base64 of the signing key: keep it now, it cannot
    /// be read again (`rotateWebhookSecret` makes a new one).
    pub secret: String,
}
