//! The webhook outbox: a delivery is queued in the transaction that writes
//! its event, claimed by a delivery worker when due, and settled after each
//! attempt. Claims are leases: a worker that dies mid-delivery leaves a
//! claim that lapses, and another worker (or the same process, restarted)
//! sends the delivery again. So every delivery is sent at least once; in
//! the normal case exactly once, since a claim is taken in one statement
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the write lock on SQLite).
use std::{
    fmt,
    sync::atomic::{AtomicU64, Ordering},
};

use entity::webhook_delivery;
use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};
use tokio::sync::Notify;

use crate::{clock, domain::EventType, error::Result};

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or for its endpoint to be active
    /// again).
    Pending,
    /// An attempt got a 2xx answer.
    Succeeded,
    /// Its attempts ran out, or the endpoint answered 410 Gone.
    Failed,
}

impl DeliveryStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn of(delivery: &webhook_delivery::Model) -> Self {
        match delivery.status.as_str() {
            "succeeded" => DeliveryStatus::Succeeded,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

impl fmt::Display for DeliveryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts deliveries queued by this process; with [`QUEUED_NOTICE`], how
/// a worker hears of them without waiting for its next poll.
static QUEUED: AtomicU64 = AtomicU64::new(0);
static QUEUED_NOTICE: Notify = Notify::const_new();

/// How many times this process queued deliveries so far.
pub fn queued_so_far() -> u64 {
    QUEUED.load(Ordering::Acquire)
}

/// Resolves when this process next queues deliveries.
pub fn next_queued() -> tokio::sync::futures::Notified<'static> {
    QUEUED_NOTICE.notified()
}

/// The `LIKE` pattern that finds `kind` in a webhook's `event_types`.
fn type_pattern(kind: EventType) -> String {
    format!("%,{},%", kind.name().replace('_', "\\_"))
}

/// The `event_types` value that takes every event type.
pub const EVERY_TYPE: &str = ",*,";

/// Queues event `event_id` (of type `kind`) for every active endpoint that
/// takes its type, in the event's transaction. Returns how many.
pub async fn enqueue(db: &impl ConnectionTrait, event_id: i64, kind: EventType) -> Result<u64> {
    let now = clock::now();
    let queued = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "INSERT INTO webhook_deliveries \
             (webhook_id, event_id, status, attempt_count, next_attempt_at, locked_until, created_at) \
             SELECT id, $1, 'pending', 0, $2, 0, $3 FROM webhooks \
             WHERE is_active AND (event_types = $4 OR event_types LIKE $5 ESCAPE '\\')",
            [
                event_id.into(),
                now.timestamp_millis().into(),
                now.into(),
                EVERY_TYPE.into(),
                type_pattern(kind).into(),
            ],
        ))
        .await?
        .rows_affected();
    if queued > 0 {
        QUEUED.fetch_add(1, Ordering::AcqRel);
        QUEUED_NOTICE.notify_waiters();
    }
    Ok(queued)
}

/// Tells this process's worker that deliveries are due (a redelivery, a
/// replay).
pub fn announce() {
    QUEUED.fetch_add(1, Ordering::AcqRel);
    QUEUED_NOTICE.notify_waiters();
}

/// A delivery a worker claimed.
#[derive(Debug, Clone, FromQueryResult)]
pub struct Claimed {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: i64,
    pub attempt_count: i32,
    /// The claim's lease: the worker holds the delivery until then.
    pub locked_until: i64,
}

/// How many deliveries to each endpoint a worker may still take.
#[derive(Debug, Clone, Default)]
pub struct Room {
    /// For an endpoint with nothing in flight.
    pub each: u64,
    /// The endpoints with deliveries in flight: ids, how many, and the
    /// room left.
    pub left: Vec<(i64, u64, u64)>,
}

/// Claims up to `limit` deliveries due at `now_ms` whose endpoint is
/// active, each until `lease_until_ms`, at most `room` for each endpoint,
/// taking each endpoint's oldest first and the endpoints in turn, those
/// with fewer in flight first (the oldest of an idle endpoint, then the
/// oldest of one with one in flight or the second of the idle one…), so
/// that an endpoint with a backlog does not take the slots of the others.
pub async fn claim(
    db: &impl ConnectionTrait,
    now_ms: i64,
    lease_until_ms: i64,
    limit: u64,
    room: &Room,
) -> Result<Vec<Claimed>> {
    let backend = db.get_database_backend();
    let skip_locked = match backend {
        DbBackend::Postgres => "FOR UPDATE OF d SKIP LOCKED",
        _ => "",
    };
    // Ids and counts the worker holds, not client text.
    let case = |value: fn(&(i64, u64, u64)) -> u64, otherwise: u64| match room.left.is_empty() {
        true => otherwise.to_string(),
        false => {
            let cases: String = room
                .left
                .iter()
                .map(|entry| format!(" WHEN {} THEN {}", entry.0, value(entry)))
                .collect();
            format!("CASE r.webhook_id{cases} ELSE {otherwise} END")
        }
    };
    let room_of = case(|entry| entry.2, room.each);
    let in_flight = case(|entry| entry.1, 0);
    // The ranking reads a snapshot; the conditions are asked again of `d`
    // (and of the row updated), which PostgreSQL checks against the row's
    // latest version once it holds its lock: a row another process claimed
    // meanwhile is passed over, not claimed twice. The choice is a
    // materialized CTE, made once: as a subquery of the UPDATE, PostgreSQL
    // may run it again, and with SKIP LOCKED each run can pick other rows,
    // so that `LIMIT 1` claimed two (a test saw four slots given to two
    // hanging endpoints, the quarter kept for the others taken).
    let sql = format!(
        "WITH picked AS MATERIALIZED ( \
         SELECT d.id FROM webhook_deliveries d JOIN ( \
           SELECT q.id, q.webhook_id, q.next_attempt_at, ROW_NUMBER() OVER ( \
             PARTITION BY q.webhook_id ORDER BY q.next_attempt_at, q.id) AS turn \
           FROM webhook_deliveries q JOIN webhooks w ON w.id = q.webhook_id \
           WHERE q.status = 'pending' AND q.next_attempt_at <= $2 AND q.locked_until <= $2 \
           AND w.is_active) r ON r.id = d.id \
         WHERE r.turn <= {room_of} \
         AND d.status = 'pending' AND d.next_attempt_at <= $2 AND d.locked_until <= $2 \
         ORDER BY r.turn + {in_flight}, r.next_attempt_at, r.id LIMIT $3 {skip_locked}) \
         UPDATE webhook_deliveries SET locked_until = $1 \
         WHERE status = 'pending' AND locked_until <= $2 AND id IN (SELECT id FROM picked) \
         RETURNING id, webhook_id, event_id, attempt_count, locked_until"
    );
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let claimed = Claimed::find_by_statement(Statement::from_sql_and_values(
        backend,
        sql,
        [lease_until_ms.into(), now_ms.into(), limit.into()],
    ))
    .all(db)
    .await?;
    Ok(claimed)
}

/// What became of a claimed delivery after an attempt.
#[derive(Debug, Clone, Copy)]
pub enum Settled {
    Succeeded,
    /// Due again at this time (milliseconds since the epoch).
    RetryAt(i64),
    Failed,
    /// Not attempted (its endpoint is gone or inactive): due again as it
    /// was.
    Released,
}

/// Settles `claimed` as `settled`, unless its lease lapsed and another
/// worker claimed it since (then that worker settles it). Returns whether
/// it was settled here.
pub async fn settle(
    db: &impl ConnectionTrait,
    claimed: &Claimed,
    settled: Settled,
) -> Result<bool> {
    let attempts = claimed.attempt_count.saturating_add(1);
    let (status, attempt_count, next) = match settled {
        Settled::Succeeded => (DeliveryStatus::Succeeded, attempts, None),
        Settled::RetryAt(at) => (DeliveryStatus::Pending, attempts, Some(at)),
        Settled::Failed => (DeliveryStatus::Failed, attempts, None),
        Settled::Released => (DeliveryStatus::Pending, claimed.attempt_count, None),
    };
    let updated = db
        .execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE webhook_deliveries SET status = $1, attempt_count = $2, \
             next_attempt_at = COALESCE($3, next_attempt_at), locked_until = 0 \
             WHERE id = $4 AND locked_until = $5",
            [
                status.as_str().into(),
                attempt_count.into(),
                next.into(),
                claimed.id.into(),
                claimed.locked_until.into(),
            ],
        ))
        .await?
        .rows_affected();
    Ok(updated == 1)
}
