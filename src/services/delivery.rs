//! The delivery worker: sends the outbox's due deliveries to their
//! endpoints as the Standard Webhooks specification says (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "id.timestamp.body">`), retries failures on the configured schedule, and
//! settles each delivery after each attempt.
//!
//! What bounds it: `concurrency` deliveries in flight per process (half
//! of them at most to one endpoint, and a quarter kept for endpoints with
//! none in flight, so that dead endpoints cannot hold up the others'
//! deliveries), each
//! within `timeout` (connecting, sending and reading the answer), an
//! answer read up to `max_response_bytes`; redirects are not followed and
//! no proxy is used; names that resolve only to loopback, private or
//! link-local addresses are refused unless private targets are allowed.
use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, PoisonError, Weak,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use chrono::{DateTime, SecondsFormat, Utc};
use entity::{event, user, webhook, webhook_attempt};
use hmac::{Hmac, Mac};
use rand::{Rng, RngExt};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Notify, Semaphore};

use super::{
    events::{self, Actor, Target},
    outbox::{self, Claimed, Room, Settled},
    read_cache::ReadCaches,
    webhooks,
};
use crate::{
    config::WebhookSettings,
    domain::{EventType, fold, parse_remote_id, webhook_url},
    error::{Error, Result},
};

/// How many times the worker looks again soon after a notice.
const QUICK_LOOKS: u32 = 4;

/// What a claim's lease adds to twice the timeout.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// The actor of what the worker itself changes (an endpoint turned off).
pub const ROSTER: &str = "roster";

/// The prefix of a signing secret, as Standard Webhooks' libraries expect.
pub const SECRET_PREFIX: &str = "whsec_";

/// `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", BASE64.encode(key))
}

/// The `webhook-signature` header of `body` sent as message `id` at
/// `timestamp` (seconds since the epoch).
pub fn signature(secret: &str, id: &str, timestamp: i64, body: &str) -> Result<String> {
    let key = secret
        .strip_prefix(SECRET_PREFIX)
        .and_then(|key| BASE64.decode(key).ok())
        .ok_or_else(|| Error::internal(anyhow::anyhow!("a webhook's secret is malformed")))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(Error::internal)?;
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    Ok(format!("v1,{}", BASE64.encode(mac.finalize().into_bytes())))
}

/// The `webhook-id` of event `id`: the same for every attempt, endpoint,
/// redelivery and replay, so receivers can deduplicate by it.
pub fn message_id(event_id: i64) -> String {
    format!("evt_{event_id}")
}

/// The body of event `event`'s deliveries: `{type, timestamp, data}`.
pub fn body(event: &event::Model) -> String {
    let data: Value = serde_json::from_str(&event.payload).unwrap_or_default();
    json!({
        "type": event.event_type,
        "timestamp": event.occurred_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "data": data,
    })
    .to_string()
}

/// Resolves names to their public addresses only (and refuses a name with
/// none), so that neither a name nor its re-resolution (DNS rebinding)
/// leads a delivery into the private network.
struct PublicAddresses;

/// The refusal of a name that resolves to no public address.
#[derive(Debug, thiserror::Error)]
#[error("refused: not a public address")]
struct NotPublic;

impl Resolve for PublicAddresses {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let public: Vec<SocketAddr> = found
                .filter(|address| webhook_url::is_public(address.ip()))
                .collect();
            if public.is_empty() {
                return Err(Box::new(NotPublic) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The delivery worker's state, shared by its tasks; one per process.
pub struct Deliverer {
    db: DatabaseConnection,
    /// Weak: the worker ends when the app's state (and its caches) go.
    caches: Weak<ReadCaches>,
    settings: WebhookSettings,
    client: reqwest::Client,
    /// Added to the system clock: tests and simulations move time on.
    offset_ms: AtomicI64,
    /// Rings when a delivery task ends (a slot is free) or time moved on.
    freed: Notify,
    /// Deliveries in flight here, by endpoint.
    in_flight: std::sync::Mutex<HashMap<i64, usize>>,
    /// The earliest retry this process scheduled and has not claimed yet
    /// (milliseconds since the epoch; `i64::MAX`: none), so that a retry
    /// due before the next poll is not late.
    next_due: AtomicI64,
}

/// The endpoints and the events of claimed deliveries, by id.
type Loaded = (
    HashMap<i64, Arc<webhook::Model>>,
    HashMap<i64, event::Model>,
);

/// Held by a delivery task: when it ends, however it ends, its endpoint's
/// count goes down, its slot is free, and the worker hears of it.
struct SlotGuard {
    worker: Arc<Deliverer>,
    endpoint: i64,
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.worker.free_slot(self.endpoint);
        // The slot is free before the worker hears of it, or it could look
        // on another thread, find none, and wait for the next poll.
        drop(self.slot.take());
        self.worker.freed.notify_one();
    }
}

/// What one attempt got.
struct Answer {
    status: Option<u16>,
    retry_after: Option<Duration>,
    body: Vec<u8>,
    error: Option<String>,
    duration: Duration,
}

impl Deliverer {
    pub fn new(
        db: DatabaseConnection,
        caches: Weak<ReadCaches>,
        settings: WebhookSettings,
    ) -> anyhow::Result<Self> {
        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .user_agent(concat!("roster-webhooks/", env!("CARGO_PKG_VERSION")));
        if !settings.allow_private_targets {
            client = client.dns_resolver(Arc::new(PublicAddresses));
        }
        Ok(Self {
            db,
            caches,
            client: client.build()?,
            settings,
            offset_ms: AtomicI64::new(0),
            freed: Notify::new(),
            next_due: AtomicI64::new(i64::MAX),
            in_flight: std::sync::Mutex::default(),
        })
    }

    /// Now, in milliseconds since the epoch, as the worker sees it.
    pub fn now_ms(&self) -> i64 {
        Utc::now()
            .timestamp_millis()
            .saturating_add(self.offset_ms.load(Ordering::Acquire))
    }

    /// Moves the worker's clock on by `by` and wakes it: how tests and
    /// simulations run a schedule of hours in moments.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(by, Ordering::AcqRel);
        self.freed.notify_one();
    }

    /// Has the worker look for due deliveries now: after a change that may
    /// have queued some has committed (the notice from the outbox comes
    /// before the commit, and on a busy machine the quick looks after it
    /// can all come too soon).
    pub fn look_now(&self) {
        self.freed.notify_one();
    }

    /// The longest an endpoint's `Retry-After` may put an attempt off: the
    /// schedule's longest wait, or an hour if that is shorter.
    fn longest_wait(&self) -> Duration {
        self.settings
            .schedule
            .longest()
            .max(Duration::from_secs(3_600))
    }

    /// How long a claim holds a delivery: past any attempt's end (the
    /// timeout, and waits for database connections before and after it),
    /// so that only a dead worker's claims lapse.
    fn lease(&self) -> i64 {
        let lease = self.settings.timeout.saturating_mul(2) + LEASE_MARGIN;
        i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// The most deliveries to one endpoint in flight here at once.
    fn per_endpoint(&self) -> usize {
        (self.settings.concurrency / 2).max(1)
    }

    /// How many more deliveries each endpoint may have in flight here
    /// (`only_idle`: none for an endpoint with any in flight).
    fn room(&self, only_idle: bool) -> Room {
        let cap = self.per_endpoint();
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let left = |n: usize| match only_idle {
            true => 0,
            false => cap.saturating_sub(n) as u64,
        };
        Room {
            each: cap as u64,
            left: in_flight
                .iter()
                .map(|(id, n)| (*id, *n as u64, left(*n)))
                .collect(),
        }
    }

    /// The slots only endpoints with nothing in flight here may take: a
    /// quarter, so that however many endpoints hang, the others go on.
    fn reserve(&self) -> u64 {
        (self.settings.concurrency / 4) as u64
    }

    /// Loads what `claimed` send and sends each on a task of its own.
    async fn start(self: &Arc<Self>, claimed: Vec<Claimed>, slots: &Arc<Semaphore>) {
        // What the claimed deliveries send, in two statements for all;
        // when it cannot be read, they go back to the queue.
        let Some((endpoints, events)) = self.load_for(&claimed).await else {
            for delivery in &claimed {
                let _ = outbox::settle(&self.db, delivery, Settled::Released).await;
            }
            return;
        };
        for delivery in claimed {
            let slot = slots.clone().try_acquire_owned();
            let endpoint = delivery.webhook_id;
            let Ok(slot) = slot
                .map_err(drop)
                .and_then(|slot| match self.take_slot(endpoint) {
                    true => Ok(slot),
                    false => Err(()),
                })
            else {
                // Its endpoint has its share in flight: back to the queue.
                if let Err(error) = outbox::settle(&self.db, &delivery, Settled::Released).await {
                    tracing::warn!(%error, "cannot release a webhook delivery");
                }
                continue;
            };
            let worker = self.clone();
            let endpoint_row = endpoints.get(&endpoint).cloned();
            let event = events.get(&delivery.event_id).cloned();
            tokio::spawn(async move {
                let _done = SlotGuard {
                    worker: worker.clone(),
                    endpoint,
                    slot: Some(slot),
                };
                worker.deliver(delivery, endpoint_row, event).await;
            });
        }
    }

    /// Counts a delivery to `endpoint` in, when it has room.
    fn take_slot(&self, endpoint: i64) -> bool {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = in_flight.entry(endpoint).or_default();
        if *count >= self.per_endpoint() {
            return false;
        }
        *count += 1;
        true
    }

    /// Counts a delivery to `endpoint` out.
    fn free_slot(&self, endpoint: i64) {
        let mut in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = in_flight.get_mut(&endpoint) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&endpoint);
            }
        }
    }

    /// Sends due deliveries until `gone` changes (the app's state is
    /// dropped). Does nothing when the concurrency is 0.
    pub async fn run(self: Arc<Self>, mut gone: tokio::sync::watch::Receiver<()>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        // A notice comes as deliveries are queued, moments before their
        // transaction commits: look again at 1, 4, 16 and 64 ms before
        // waiting for the next poll.
        let mut soon: u32 = 0;
        loop {
            let seen = outbox::queued_so_far();
            let notice = outbox::next_queued();
            tokio::pin!(notice);
            notice.as_mut().enable();
            let free = slots.available_permits() as u64;
            let now = self.now_ms();
            let due = self.next_due.load(Ordering::Acquire);
            if due <= now && free > 0 {
                let _ = self.next_due.compare_exchange(
                    due,
                    i64::MAX,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                );
            }
            // First what endpoints with nothing in flight here have due;
            // then, leaving a quarter of the slots to them, the others.
            let mut full = false;
            for only_idle in [true, false] {
                let free = slots.available_permits() as u64;
                let limit = match only_idle {
                    true => free,
                    false => free.saturating_sub(self.reserve()),
                };
                if limit == 0 {
                    continue;
                }
                let lease = now.saturating_add(self.lease());
                let room = self.room(only_idle);
                let claimed = outbox::claim(&self.db, now, lease, limit, &room)
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(%error, "cannot claim webhook deliveries");
                        Vec::new()
                    });
                full |= claimed.len() as u64 == limit;
                self.start(claimed, &slots).await;
            }
            if full || outbox::queued_so_far() != seen {
                soon = QUICK_LOOKS;
                continue;
            }
            // With every slot taken, a retry that is due waits for a slot.
            let until_due = match slots.available_permits() {
                0 => i64::MAX,
                _ => self.next_due.load(Ordering::Acquire).saturating_sub(now),
            };
            let until_due = Duration::from_millis(u64::try_from(until_due).unwrap_or(0));
            let wait = match soon {
                0 => self.settings.poll.min(until_due),
                n => Duration::from_millis(1 << ((QUICK_LOOKS - n.min(QUICK_LOOKS)) * 2))
                    .min(self.settings.poll),
            };
            soon = soon.saturating_sub(1);
            tokio::select! {
                _ = gone.changed() => return,
                () = &mut notice => soon = QUICK_LOOKS,
                () = self.freed.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// The endpoints and events of `claimed`, by id; none when they
    /// cannot be read.
    async fn load_for(&self, claimed: &[Claimed]) -> Option<Loaded> {
        if claimed.is_empty() {
            return Some(Default::default());
        }
        let endpoint_ids: Vec<i64> = claimed.iter().map(|c| c.webhook_id).collect();
        let event_ids: Vec<i64> = claimed.iter().map(|c| c.event_id).collect();
        let endpoints = webhook::Entity::find()
            .filter(webhook::Column::Id.is_in(endpoint_ids))
            .all(&self.db)
            .await;
        let events = event::Entity::find()
            .filter(event::Column::Id.is_in(event_ids))
            .all(&self.db)
            .await;
        match (endpoints, events) {
            (Ok(endpoints), Ok(events)) => Some((
                endpoints.into_iter().map(|e| (e.id, Arc::new(e))).collect(),
                events.into_iter().map(|e| (e.id, e)).collect(),
            )),
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, "cannot read what webhook deliveries send");
                None
            }
        }
    }

    /// Attempts one claimed delivery and settles it.
    async fn deliver(
        &self,
        claimed: Claimed,
        endpoint: Option<Arc<webhook::Model>>,
        event: Option<event::Model>,
    ) {
        if let Err(error) = self.try_deliver(&claimed, endpoint, event).await {
            // The claim lapses and the delivery is tried again.
            tracing::warn!(%error, delivery = claimed.id, "cannot settle a webhook delivery");
        }
    }

    async fn try_deliver(
        &self,
        claimed: &Claimed,
        endpoint: Option<Arc<webhook::Model>>,
        event: Option<event::Model>,
    ) -> Result<()> {
        let (Some(endpoint), Some(event)) = (endpoint, event) else {
            // Deleted since (or not loaded): its claim lapses.
            return Ok(());
        };
        if !endpoint.is_active {
            outbox::settle(&self.db, claimed, Settled::Released).await?;
            return Ok(());
        }
        let attempted_at = self.now_ms();
        let answer = self.send(&endpoint, &event, attempted_at).await;
        let attempts = claimed.attempt_count.saturating_add(1);
        let gone = answer.status == Some(410);
        let succeeded = answer.status.is_some_and(|code| (200..300).contains(&code));
        let settled = if succeeded {
            Settled::Succeeded
        } else if gone {
            Settled::Failed
        } else {
            let jitter = rand::rng().random_range(-1.0..=1.0);
            match self.settings.schedule.wait_after(attempts, jitter) {
                None => Settled::Failed,
                Some(wait) => {
                    let asked = answer
                        .retry_after
                        .map(|asked| asked.min(self.longest_wait()));
                    let wait = asked.map_or(wait, |asked| wait.max(asked));
                    let wait = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
                    let at = self.now_ms().saturating_add(wait);
                    self.next_due.fetch_min(at, Ordering::AcqRel);
                    Settled::RetryAt(at)
                }
            }
        };
        let outcome = match settled {
            Settled::Succeeded => "succeeded",
            Settled::RetryAt(_) => "retried",
            _ => "failed",
        };
        crate::measures::webhook_attempt(outcome, answer.duration);
        let mut note = answer.error.clone();
        let remote_id = match succeeded {
            true => remote_id_in(&event, &answer.body, &mut note),
            false => None,
        };
        let txn = super::begin_write(&self.db).await?;
        webhook_attempt::ActiveModel {
            delivery_id: Set(claimed.id),
            attempted_at: Set(time_of(attempted_at)),
            status_code: Set(answer.status.map(i32::from)),
            duration_ms: Set(i64::try_from(answer.duration.as_millis()).unwrap_or(i64::MAX)),
            error: Set(note.map(|note| note.chars().take(200).collect())),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        if !outbox::settle(&txn, claimed, settled).await? {
            // The claim lapsed and another worker holds the delivery now.
            return Ok(());
        }
        if gone {
            let reason = format!(
                "The endpoint answered 410 Gone at {}.",
                time_of(attempted_at).to_rfc3339_opts(SecondsFormat::Secs, true)
            );
            // Only while it is on: several 410s in flight turn it off
            // once, and one that was in flight when it was turned on again
            // does not undo that.
            let turned_off = webhook::Entity::update_many()
                .col_expr(webhook::Column::IsActive, Expr::value(false))
                .col_expr(webhook::Column::DisabledReason, Expr::value(reason.clone()))
                .col_expr(webhook::Column::UpdatedAt, Expr::value(crate::clock::now()))
                .filter(webhook::Column::Id.eq(endpoint.id))
                .filter(webhook::Column::IsActive.eq(true))
                .exec(&txn)
                .await?
                .rows_affected;
            if turned_off == 1 {
                let mut off = (*endpoint).clone();
                off.is_active = false;
                off.disabled_reason = Some(reason);
                let payload =
                    json!({ "before": webhooks::view(&endpoint), "after": webhooks::view(&off) });
                let actor = Actor {
                    name: Some(ROSTER.to_owned()),
                    ..Actor::default()
                };
                events::record(
                    &txn,
                    &actor,
                    EventType::WebhookUpdated,
                    Target::default(),
                    payload,
                )
                .await?;
            }
        }
        let synced = match (remote_id, event.target_user_id) {
            (Some(remote_id), Some(user_id)) => {
                let known = event_remote_id(&event);
                store_remote_id(&txn, user_id, known, remote_id, endpoint.id).await?
            }
            _ => false,
        };
        txn.commit().await?;
        if synced
            && let Some(user_id) = event.target_user_id
            && let Some(caches) = self.caches.upgrade()
        {
            caches.user_changed(user_id);
        }
        Ok(())
    }

    /// Sends `event` to `endpoint` once.
    async fn send(&self, endpoint: &webhook::Model, event: &event::Model, now_ms: i64) -> Answer {
        let started = Instant::now();
        let refused = |error: &str| Answer {
            status: None,
            retry_after: None,
            body: Vec::new(),
            error: Some(error.to_owned()),
            duration: started.elapsed(),
        };
        let Ok(url) = url::Url::parse(&endpoint.url) else {
            return refused("invalid URL");
        };
        // Literal addresses are not resolved: check them here.
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        let private = literal.is_some_and(|ip| !webhook_url::is_public(ip));
        if private && !self.settings.allow_private_targets {
            return refused("refused: not a public address");
        }
        let id = message_id(event.id);
        let timestamp = now_ms.div_euclid(1000);
        let body = body(event);
        let Ok(signature) = signature(&endpoint.secret, &id, timestamp, &body) else {
            return refused("the signing secret is malformed");
        };
        let request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body);
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) => return refused(&describe(&error)),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, now_ms));
        let mut body = Vec::new();
        let mut error = (!(200..300).contains(&status)).then(|| format!("HTTP {status}"));
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = self.settings.max_response_bytes.saturating_sub(body.len());
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if chunk.len() >= room {
                        break;
                    }
                }
                Ok(None) => break,
                Err(failed) => {
                    error.get_or_insert_with(|| describe(&failed));
                    break;
                }
            }
        }
        Answer {
            status: Some(status),
            retry_after,
            body,
            error,
            duration: started.elapsed(),
        }
    }
}

/// A transport failure in a few words, without addresses or internals.
fn describe(error: &reqwest::Error) -> String {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(current) = source {
        if current.is::<NotPublic>() {
            return NotPublic.to_string();
        }
        source = current.source();
    }
    let what = if error.is_timeout() {
        "timeout"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    what.to_owned()
}

/// `Retry-After` as seconds or an HTTP date, from now.
fn parse_retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    if let Ok(seconds) = value.trim().parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value.trim()).ok()?;
    let wait = at.timestamp_millis().saturating_sub(now_ms);
    Some(Duration::from_millis(u64::try_from(wait).unwrap_or(0)))
}

fn time_of(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms.div_euclid(1000) * 1000).unwrap_or_default()
}

/// The remote id an endpoint answered a `user.created` or
/// `user.sync_requested` delivery with (`{"remoteId": "..."}`); a note in
/// `note` when it is not a valid one.
fn remote_id_in(event: &event::Model, body: &[u8], note: &mut Option<String>) -> Option<String> {
    let kind = EventType::from_name(&event.event_type)?;
    if !matches!(kind, EventType::UserCreated | EventType::UserSyncRequested) {
        return None;
    }
    let answer: Value = serde_json::from_slice(body).ok()?;
    let given = answer.get("remoteId")?;
    match given.as_str().map(parse_remote_id) {
        Some(Ok(Some(id))) => Some(id),
        _ => {
            *note = Some("the answer's remoteId was not a valid id; ignored".to_owned());
            None
        }
    }
}

/// The user's remote id as event `event` carried it.
fn event_remote_id(event: &event::Model) -> Option<String> {
    let payload: Value = serde_json::from_str(&event.payload).ok()?;
    payload["user"]["remoteId"].as_str().map(str::to_owned)
}

/// Stores `remote_id` on user `user_id` when the user is still there and
/// still has the id `known` that the event carried, and records
/// `user.remote_id_synced`. Returns whether it changed.
async fn store_remote_id(
    txn: &impl sea_orm::ConnectionTrait,
    user_id: i64,
    known: Option<String>,
    remote_id: String,
    webhook_id: i64,
) -> Result<bool> {
    let Some(found) = user::Entity::find_by_id(user_id).one(txn).await? else {
        return Ok(false);
    };
    // Only over the id the event carried: an answer to an old event (a
    // late retry, a redelivery, a replay) never undoes a newer id.
    if found.remote_id == Some(remote_id.clone()) || found.remote_id != known {
        return Ok(false);
    }
    // Written only if it is still so (on PostgreSQL another transaction
    // may change it after the read above).
    let still = match &known {
        Some(id) => user::Column::RemoteId.eq(id.clone()),
        None => user::Column::RemoteId.is_null(),
    };
    let written = user::Entity::update_many()
        .col_expr(user::Column::RemoteId, Expr::value(remote_id.clone()))
        .col_expr(user::Column::RemoteIdFolded, Expr::value(fold(&remote_id)))
        .filter(user::Column::Id.eq(user_id))
        .filter(still)
        .exec(txn)
        .await?
        .rows_affected;
    if written != 1 {
        return Ok(false);
    }
    let before = known;
    let actor = Actor {
        name: Some(format!("webhook {webhook_id}")),
        ..Actor::default()
    };
    let payload = json!({
        "remoteId": { "before": before, "after": remote_id },
        "webhookId": webhook_id.to_string(),
    });
    events::record(
        txn,
        &actor,
        EventType::UserRemoteIdSynced,
        Target::user(user_id),
        payload,
    )
    .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date() {
        let now = 1_000_000_000_000;
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let date = "Sun, 09 Sep 2001 01:46:40 GMT";
        assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(0)));
        assert_eq!(
            parse_retry_after("Sun, 09 Sep 2001 01:47:40 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn a_signature_is_hmac_sha256_of_id_timestamp_and_body() {
        // The example of the Standard Webhooks specification's libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).ok(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_owned())
        );
        assert!(signature("nope", "id", 1, "").is_err());
    }
}
