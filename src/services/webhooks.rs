//! Webhook endpoints: registered, changed and removed by superusers, with
//! a signing secret shown once; their deliveries listed, sent again, or
//! replayed from the audit log.
use entity::{event, webhook, webhook_attempt, webhook_delivery};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, Set, Statement,
};
use serde_json::{Value, json};

use super::{
    access::Access,
    begin_write,
    events::{self, Actor, Target},
    outbox::{self, EVERY_TYPE},
};
use crate::{
    clock,
    config::WebhookSettings,
    domain::{EventType, WebhookUrl},
    error::{Error, Result},
};

/// The longest description accepted.
pub const DESCRIPTION_MAX_LENGTH: usize = 500;

/// A new endpoint.
pub struct NewWebhook {
    pub url: String,
    /// The event types it takes; none: every type.
    pub event_types: Vec<EventType>,
    pub description: Option<String>,
    pub is_active: bool,
}

/// The fields of an endpoint to change (`None`: keep).
#[derive(Default)]
pub struct WebhookChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<EventType>>,
    pub description: Option<String>,
    pub is_active: Option<bool>,
}

/// The event types an endpoint takes; none: every type.
pub fn event_types_of(endpoint: &webhook::Model) -> Vec<EventType> {
    endpoint
        .event_types
        .split(',')
        .filter_map(EventType::from_name)
        .collect()
}

fn stored_types(types: &[EventType]) -> String {
    if types.is_empty() {
        return EVERY_TYPE.to_owned();
    }
    let mut names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    names.sort_unstable();
    names.dedup();
    format!(",{},", names.join(","))
}

fn not_found() -> Error {
    Error::NotFound("No webhook with that id.".into())
}

fn parse_url(url: &str, settings: &WebhookSettings) -> Result<String> {
    WebhookUrl::parse(url, settings.allow_private_targets)
        .map(|url| url.as_str().to_owned())
        .map_err(|problems| {
            let mut errors = crate::error::FieldErrors::new();
            errors.extend("url", problems);
            Error::BadUserInput(errors)
        })
}

fn parse_description(description: &str) -> Result<String> {
    let description = description.trim();
    if description.chars().count() > DESCRIPTION_MAX_LENGTH {
        return Err(Error::bad_input(
            "description",
            format!("Ensure this field has no more than {DESCRIPTION_MAX_LENGTH} characters."),
        ));
    }
    Ok(description.to_owned())
}

/// An endpoint as the audit log shows it: never its secret, and of its
/// URL only the origin (a path or query often works as a credential, and
/// the log is read by more than superusers, and sent to endpoints).
pub fn view(endpoint: &webhook::Model) -> Value {
    let types: Vec<&str> = event_types_of(endpoint).iter().map(|t| t.name()).collect();
    let origin = url::Url::parse(&endpoint.url)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    // A change of path or query still shows, as a change of fingerprint.
    let fingerprint = {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(endpoint.url.as_bytes());
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    json!({
        "id": endpoint.id.to_string(),
        "origin": origin,
        "urlFingerprint": fingerprint,
        "description": endpoint.description,
        "eventTypes": types,
        "isActive": endpoint.is_active,
    })
}

async fn record(
    txn: &impl ConnectionTrait,
    access: &Access,
    kind: EventType,
    payload: Value,
) -> Result<()> {
    events::record(txn, &Actor::of(access), kind, Target::default(), payload).await
}

/// `createWebhook`: the endpoint and its signing secret (shown this once).
pub async fn create(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    access: &Access,
    new: NewWebhook,
) -> Result<(webhook::Model, String)> {
    access.may_manage_webhooks()?;
    let url = parse_url(&new.url, settings)?;
    let description = parse_description(new.description.as_deref().unwrap_or_default())?;
    let txn = begin_write(db).await?;
    super::lock_on_postgres(&txn, "webhooks".to_owned()).await?;
    if webhook::Entity::find().count(&txn).await? >= settings.max_endpoints {
        return Err(Error::bad_input(
            "url",
            format!(
                "No more than {} webhooks may exist (ROSTER_WEBHOOK_MAX_ENDPOINTS); delete one first.",
                settings.max_endpoints
            ),
        ));
    }
    let secret = super::delivery::new_secret();
    let now = clock::now();
    let endpoint = webhook::ActiveModel {
        url: Set(url),
        description: Set(description),
        event_types: Set(stored_types(&new.event_types)),
        is_active: Set(new.is_active),
        disabled_reason: Set(None),
        secret: Set(secret.clone()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let payload = json!({ "webhook": view(&endpoint) });
    record(&txn, access, EventType::WebhookCreated, payload).await?;
    txn.commit().await?;
    Ok((endpoint, secret))
}

async fn find(db: &impl ConnectionTrait, id: i64) -> Result<webhook::Model> {
    webhook::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(not_found)
}

/// `updateWebhook`. Turning an endpoint on again clears why it was turned
/// off; its pending deliveries resume.
pub async fn update(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    access: &Access,
    id: i64,
    changes: WebhookChanges,
) -> Result<webhook::Model> {
    access.may_manage_webhooks()?;
    let url = changes
        .url
        .as_deref()
        .map(|url| parse_url(url, settings))
        .transpose()?;
    let description = changes
        .description
        .as_deref()
        .map(parse_description)
        .transpose()?;
    let txn = begin_write(db).await?;
    let before = find(&txn, id).await?;
    let mut row = before.clone().into_active_model();
    if let Some(url) = url {
        row.url = Set(url);
    }
    if let Some(description) = description {
        row.description = Set(description);
    }
    if let Some(types) = &changes.event_types {
        row.event_types = Set(stored_types(types));
    }
    if let Some(active) = changes.is_active {
        row.is_active = Set(active);
        if active {
            row.disabled_reason = Set(None);
        }
    }
    if !row.is_changed() {
        return Ok(before);
    }
    row.updated_at = Set(clock::now());
    let after = row.update(&txn).await?;
    let payload = json!({ "before": view(&before), "after": view(&after) });
    record(&txn, access, EventType::WebhookUpdated, payload).await?;
    txn.commit().await?;
    outbox::announce();
    Ok(after)
}

/// `deleteWebhook`: the endpoint and its deliveries.
pub async fn delete(db: &DatabaseConnection, access: &Access, id: i64) -> Result<i64> {
    access.may_manage_webhooks()?;
    let txn = begin_write(db).await?;
    let endpoint = find(&txn, id).await?;
    webhook::Entity::delete_by_id(id).exec(&txn).await?;
    let payload = json!({ "webhook": view(&endpoint) });
    record(&txn, access, EventType::WebhookDeleted, payload).await?;
    txn.commit().await?;
    Ok(id)
}

/// `rotateWebhookSecret`: a new signing secret (shown this once); the old
/// one stops signing at once.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    access: &Access,
    id: i64,
) -> Result<(webhook::Model, String)> {
    access.may_manage_webhooks()?;
    let txn = begin_write(db).await?;
    let mut row = find(&txn, id).await?.into_active_model();
    let secret = super::delivery::new_secret();
    row.secret = Set(secret.clone());
    row.updated_at = Set(clock::now());
    let endpoint = row.update(&txn).await?;
    let payload = json!({ "webhook": view(&endpoint) });
    record(&txn, access, EventType::WebhookSecretRotated, payload).await?;
    txn.commit().await?;
    Ok((endpoint, secret))
}

/// `webhooks`: every endpoint (at most `ROSTER_WEBHOOK_MAX_ENDPOINTS`).
pub async fn list(db: &DatabaseConnection, access: &Access) -> Result<Vec<webhook::Model>> {
    access.may_manage_webhooks()?;
    Ok(webhook::Entity::find()
        .order_by_asc(webhook::Column::Id)
        .all(db)
        .await?)
}

/// `webhook(id)`: NOT_FOUND when there is none.
pub async fn get(db: &DatabaseConnection, access: &Access, id: &str) -> Result<webhook::Model> {
    access.may_manage_webhooks()?;
    find(db, super::parse_id(id, "id")?).await
}

/// A delivery with its event and its attempts (oldest first).
#[derive(Debug, Clone)]
pub struct DeliveryView {
    pub delivery: webhook_delivery::Model,
    pub event: Option<event::Model>,
    pub attempts: Vec<webhook_attempt::Model>,
}

/// The events and attempts of a page of deliveries: two statements
/// whatever the page's size.
pub async fn with_details(
    db: &impl ConnectionTrait,
    deliveries: Vec<webhook_delivery::Model>,
) -> Result<Vec<DeliveryView>> {
    let event_ids: Vec<i64> = deliveries.iter().map(|d| d.event_id).collect();
    let delivery_ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
    let events = event::Entity::find()
        .filter(event::Column::Id.is_in(event_ids))
        .all(db)
        .await?;
    let attempts = webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::DeliveryId.is_in(delivery_ids))
        .order_by_asc(webhook_attempt::Column::Id)
        .all(db)
        .await?;
    Ok(deliveries
        .into_iter()
        .map(|delivery| DeliveryView {
            event: events.iter().find(|e| e.id == delivery.event_id).cloned(),
            attempts: attempts
                .iter()
                .filter(|a| a.delivery_id == delivery.id)
                .cloned()
                .collect(),
            delivery,
        })
        .collect())
}

/// `redeliverWebhookDelivery`: sends a delivery again now, with a fresh
/// schedule (a delivery in flight is left to finish).
pub async fn redeliver(
    db: &DatabaseConnection,
    access: &Access,
    now_ms: i64,
    id: &str,
) -> Result<DeliveryView> {
    access.may_manage_webhooks()?;
    let id = super::parse_id(id, "id")?;
    // A lapsed claim is taken over (its worker, if alive, settles nothing).
    let requeued = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE webhook_deliveries SET status = 'pending', attempt_count = 0, \
             next_attempt_at = $1, locked_until = 0 WHERE id = $2 AND locked_until <= $1",
            [now_ms.into(), id.into()],
        ))
        .await?
        .rows_affected();
    let delivery = webhook_delivery::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound("No webhook delivery with that id.".into()))?;
    if requeued == 0 {
        return Err(Error::bad_input(
            "id",
            "The delivery is being sent; ask again once it has settled.",
        ));
    }
    outbox::announce();
    let mut viewed = with_details(db, vec![delivery]).await?;
    viewed.pop().ok_or_else(not_found)
}

/// `replayWebhookEvents`: queues for endpoint `id` every event since
/// `since` that it takes and missed: that has no delivery to it pending
/// or succeeded (oldest first, at most `ROSTER_WEBHOOK_REPLAY_LIMIT`).
/// Returns how many.
pub async fn replay(
    db: &DatabaseConnection,
    settings: &WebhookSettings,
    access: &Access,
    id: i64,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<u64> {
    access.may_manage_webhooks()?;
    let txn = begin_write(db).await?;
    // Two replays at once would both find no pending delivery of an event.
    super::lock_on_postgres(&txn, format!("webhook replay {id}")).await?;
    let endpoint = find(&txn, id).await?;
    let now = clock::now();
    let limit = i64::try_from(settings.replay_limit).unwrap_or(i64::MAX);
    let queued = txn
        .execute_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "INSERT INTO webhook_deliveries \
             (webhook_id, event_id, status, attempt_count, next_attempt_at, locked_until, created_at) \
             SELECT $1, e.id, 'pending', 0, $2, 0, $3 FROM events e \
             WHERE e.occurred_at >= $4 \
             AND ($5 = $6 OR $5 LIKE ('%,' || e.event_type || ',%')) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d \
                 WHERE d.webhook_id = $1 AND d.event_id = e.id \
                 AND d.status IN ('pending', 'succeeded')) \
             ORDER BY e.id LIMIT $7",
            [
                endpoint.id.into(),
                now.timestamp_millis().into(),
                now.into(),
                since.into(),
                endpoint.event_types.clone().into(),
                EVERY_TYPE.into(),
                limit.into(),
            ],
        ))
        .await?
        .rows_affected();
    let payload = json!({ "webhook": view(&endpoint), "since": since, "queued": queued });
    record(&txn, access, EventType::WebhookEventsReplayed, payload).await?;
    txn.commit().await?;
    outbox::announce();
    Ok(queued)
}
