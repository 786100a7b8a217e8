//! The webhook mutations: superusers register endpoints and manage their
//! deliveries.
use async_graphql::{Context, ID, InputObject, Object};

use crate::{
    graphql::{
        guards::access,
        parse_id,
        scalars::DateTime,
        state,
        types::{AuditEventType, Webhook, WebhookDelivery, WebhookSecretPayload},
    },
    services::webhooks::{self, NewWebhook, WebhookChanges},
};

/// A new webhook endpoint.
#[derive(InputObject)]
pub struct CreateWebhookInput {
    /// Where deliveries are POSTed: http or https, no credentials, at most
    /// 2,048 characters; loopback, private and link-local addresses are
    /// refused unless ROSTER_WEBHOOK_ALLOW_PRIVATE_TARGETS is set.
    pub url: String,
    /// The event types to deliver; empty or absent: every type.
    pub event_types: Option<Vec<AuditEventType>>,
    /// What it is for; at most 500 characters.
    pub description: Option<String>,
    /// Whether events are delivered; default true.
    #[graphql(default_with = "Some(true)")]
    pub is_active: Option<bool>,
}

/// The fields of an endpoint to change; absent ones are kept.
#[derive(InputObject)]
pub struct UpdateWebhookInput {
    /// Where deliveries are POSTed (checked as on create).
    pub url: Option<String>,
    /// The event types to deliver; empty: every type.
    pub event_types: Option<Vec<AuditEventType>>,
    /// What it is for; at most 500 characters.
    pub description: Option<String>,
    /// Whether events are delivered; true again clears `disabledReason`
    /// and resumes its pending deliveries.
    pub is_active: Option<bool>,
}

fn types(types: Option<Vec<AuditEventType>>) -> Vec<crate::domain::EventType> {
    types.into_iter().flatten().map(Into::into).collect()
}

#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// A superuser registers an endpoint; its signing secret is in the
    /// answer, and only there.
    async fn create_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new endpoint.")] input: CreateWebhookInput,
    ) -> async_graphql::Result<WebhookSecretPayload> {
        let state = state(ctx)?;
        let new = NewWebhook {
            url: input.url,
            event_types: types(input.event_types),
            description: input.description,
            is_active: input.is_active.unwrap_or(true),
        };
        let (webhook, secret) =
            webhooks::create(&state.db, &state.config.webhooks, access(ctx), new).await?;
        Ok(WebhookSecretPayload {
            webhook: Webhook(webhook),
            secret,
        })
    }

    /// A superuser changes an endpoint.
    async fn update_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateWebhookInput,
    ) -> async_graphql::Result<Webhook> {
        let state = state(ctx)?;
        let id = parse_id(&id, "id")?;
        let changes = WebhookChanges {
            url: input.url,
            event_types: input.event_types.map(|t| types(Some(t))),
            description: input.description,
            is_active: input.is_active,
        };
        let webhook =
            webhooks::update(&state.db, &state.config.webhooks, access(ctx), id, changes).await?;
        Ok(Webhook(webhook))
    }

    /// A superuser removes an endpoint and its deliveries.
    async fn delete_webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let id = parse_id(&id, "id")?;
        let deleted = webhooks::delete(&state(ctx)?.db, access(ctx), id).await?;
        Ok(ID(deleted.to_string()))
    }

    /// A superuser replaces an endpoint's signing secret; the new one is in
    /// the answer, and only there.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] id: ID,
    ) -> async_graphql::Result<WebhookSecretPayload> {
        let id = parse_id(&id, "id")?;
        let (webhook, secret) = webhooks::rotate_secret(&state(ctx)?.db, access(ctx), id).await?;
        Ok(WebhookSecretPayload {
            webhook: Webhook(webhook),
            secret,
        })
    }

    /// A superuser sends a delivery again now, with a fresh schedule (same
    /// `webhook-id`, so the receiver can tell).
    async fn redeliver_webhook_delivery(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The delivery.")] id: ID,
    ) -> async_graphql::Result<WebhookDelivery> {
        let state = state(ctx)?;
        let now = state.deliverer.now_ms();
        let delivery = webhooks::redeliver(&state.db, access(ctx), now, id.as_str()).await?;
        Ok(WebhookDelivery(delivery))
    }

    /// A superuser queues for an endpoint every event since `since` that it
    /// takes and missed (no delivery of it pending or succeeded), oldest
    /// first, at most ROSTER_WEBHOOK_REPLAY_LIMIT; returns how many.
    async fn replay_webhook_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] webhook_id: ID,
        #[graphql(desc = "The oldest event to send again.")] since: DateTime,
    ) -> async_graphql::Result<i64> {
        let state = state(ctx)?;
        let id = parse_id(&webhook_id, "webhookId")?;
        let settings = &state.config.webhooks;
        let queued = webhooks::replay(&state.db, settings, access(ctx), id, since.0).await?;
        Ok(i64::try_from(queued).unwrap_or(i64::MAX))
    }
}
