//! The audit log: every change is recorded as an event in the transaction
//! that makes it, so an event exists if and only if its change committed.
//! An event names its actor, client and targets, and holds a JSON payload;
//! never a password, hash or token.
use entity::{division, event, group, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set,
};
use serde_json::{Map, Value, json};

use super::{
    access::Access,
    users::{self, NewUser},
};
use crate::{clock, domain::EventType, error::Result};

/// Who acted, as an event records it.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub client: Option<String>,
}

/// The actor name of changes made with the command line.
pub const COMMAND_LINE: &str = "command line";

impl Actor {
    /// The viewer of a request (anonymous: no id nor name).
    pub fn of(access: &Access) -> Self {
        let user = access.user().ok();
        Self {
            id: user.map(|u| u.id),
            name: user.map(|u| u.username.clone()),
            client: access.client().map(|ip| ip.to_string()),
        }
    }

    /// The command line (`create-superuser`, `demo-data`).
    pub fn command_line() -> Self {
        Self {
            name: Some(COMMAND_LINE.to_owned()),
            ..Self::default()
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target {
    pub user: Option<i64>,
    pub group: Option<i64>,
    pub division: Option<i64>,
}

impl Target {
    pub fn user(id: i64) -> Self {
        Self {
            user: Some(id),
            ..Self::default()
        }
    }

    pub fn group(id: i64) -> Self {
        Self {
            group: Some(id),
            ..Self::default()
        }
    }

    pub fn division(id: i64) -> Self {
        Self {
            division: Some(id),
            ..Self::default()
        }
    }

    pub fn membership(user: i64, group: i64) -> Self {
        Self {
            user: Some(user),
            group: Some(group),
            division: None,
        }
    }
}

impl Actor {
    /// `user` acting for themself (a registration, a password change),
    /// from the viewer's client.
    pub fn themself(user: &user::Model, access: &Access) -> Self {
        Self {
            id: Some(user.id),
            name: Some(user.username.clone()),
            client: access.client().map(|ip| ip.to_string()),
        }
    }
}

/// Creates a user (`users::create`) and records `user.created` by the
/// actor `by` names, in one transaction.
pub async fn create_user(
    db: &DatabaseConnection,
    new: NewUser,
    by: impl FnOnce(&user::Model) -> Actor,
) -> Result<user::Model> {
    let txn = super::begin_write(db).await?;
    let user = users::create(&txn, new).await?;
    let payload = json!({ "user": user_view(&user), "groupIds": [] });
    let actor = by(&user);
    record(
        &txn,
        &actor,
        EventType::UserCreated,
        Target::user(user.id),
        payload,
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}

/// Writes one event, and queues its webhook deliveries, in the caller's
/// transaction.
pub async fn record(
    db: &impl ConnectionTrait,
    actor: &Actor,
    kind: EventType,
    target: Target,
    payload: Value,
) -> Result<()> {
    let event = event::ActiveModel {
        occurred_at: Set(clock::now()),
        event_type: Set(kind.name().to_owned()),
        actor_id: Set(actor.id),
        actor_name: Set(actor.name.clone()),
        client: Set(actor.client.clone()),
        target_user_id: Set(target.user),
        target_group_id: Set(target.group),
        target_division_id: Set(target.division),
        payload: Set(payload.to_string()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    super::outbox::enqueue(db, event.id, kind).await?;
    Ok(())
}

/// Events pruned at most per round, so that a first prune of a large log
/// holds no lock for long (the next round goes on).
const PRUNE_BATCH: u64 = 10_000;

/// Deletes the events older than `retention` (none: keeps them all).
pub async fn prune(db: &DatabaseConnection, retention: Option<std::time::Duration>) -> Result<()> {
    let Some(retention) = retention else {
        return Ok(());
    };
    let cutoff = chrono::Duration::from_std(retention)
        .ok()
        .and_then(|retention| clock::now().checked_sub_signed(retention));
    let Some(cutoff) = cutoff else {
        return Ok(());
    };
    let oldest = event::Entity::find()
        .select_only()
        .column(event::Column::Id)
        .filter(event::Column::OccurredAt.lt(cutoff))
        .order_by_asc(event::Column::Id)
        .limit(PRUNE_BATCH)
        .into_query();
    event::Entity::delete_many()
        .filter(event::Column::Id.in_subquery(oldest))
        .exec(db)
        .await?;
    Ok(())
}

/// The keys of a payload that hold guarded fields of a user (see
/// `Access::may_view_details_of`).
const GUARDED: [&str; 6] = [
    "email",
    "phoneNumber",
    "lastLogin",
    "remoteId",
    "isStaff",
    "isSuperuser",
];

/// `payload` without the guarded fields of any user in it, for a reader of
/// the audit log who may not read them.
pub fn redact(payload: &mut Value) {
    match payload {
        Value::Object(fields) => {
            fields.retain(|key, _| !GUARDED.contains(&key.as_str()));
            fields.values_mut().for_each(redact);
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

/// A user as staff see it: no password hash, no token version.
pub fn user_view(user: &user::Model) -> Value {
    json!({
        "id": user.id.to_string(),
        "username": user.username,
        "email": user.email,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "phoneNumber": user.phone_number,
        "isActive": user.is_active,
        "isStaff": user.is_staff,
        "isSuperuser": user.is_superuser,
        "divisionId": user.division_id.map(|id| id.to_string()),
        "remoteId": user.remote_id,
        "dateJoined": user.date_joined.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

pub fn group_view(group: &group::Model) -> Value {
    json!({ "id": group.id.to_string(), "name": group.name })
}

pub fn division_view(division: &division::Model) -> Value {
    json!({
        "id": division.id.to_string(),
        "name": division.name,
        "divisionType": match division.division_type {
            division::DivisionType::Main => "MAIN",
            division::DivisionType::Sub => "SUB",
        },
        "isActive": division.is_active,
        "parentId": division.parent_id.map(|id| id.to_string()),
    })
}

/// The fields that differ between two views, each as `{before, after}`.
pub fn changes(before: &Value, after: &Value) -> Value {
    let mut changed = Map::new();
    if let (Some(before), Some(after)) = (before.as_object(), after.as_object()) {
        for (field, new) in after {
            let old = before.get(field).unwrap_or(&Value::Null);
            if old != new {
                changed.insert(field.clone(), json!({ "before": old, "after": new }));
            }
        }
    }
    Value::Object(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_lists_only_what_differs() {
        let before = json!({ "a": 1, "b": "x", "c": null });
        let after = json!({ "a": 1, "b": "y", "c": "z" });
        assert_eq!(
            changes(&before, &after),
            json!({ "b": { "before": "x", "after": "y" }, "c": { "before": null, "after": "z" } })
        );
    }
}
