//! Groups and divisions: create, rename, delete, move, (de)activate.
//! Names are unique without regard to case, enforced by unique indexes on
//! the folded names; a violation becomes `CONFLICT`.
use entity::{division, group};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel,
    Set, SqlErr,
};
use serde_json::json;

use super::{
    access::{self, Access},
    begin_write,
    events::{self, Actor, Target},
    user_admin::Change,
};
use crate::{
    clock,
    domain::{EventType, Permission, Permissions, fold, parse_title},
    error::{Error, FieldErrors, Result},
};

pub const GROUP_TAKEN: &str = "A group with that name already exists.";
pub const DIVISION_TAKEN: &str = "A division with that name already exists.";

/// Records an event of the viewer's, in the change's transaction.
async fn record(
    txn: &impl ConnectionTrait,
    viewer: &Access,
    kind: EventType,
    target: Target,
    payload: serde_json::Value,
) -> Result<()> {
    events::record(txn, &Actor::of(viewer), kind, target, payload).await
}

fn name_conflict(error: DbErr, message: &str) -> Error {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => {
            Error::Conflict(FieldErrors::one("name", message))
        }
        _ => Error::from(error),
    }
}

fn parse_name_field(value: &str) -> Result<String> {
    parse_title(value).map_err(|messages| {
        let mut errors = FieldErrors::new();
        errors.extend("name", messages);
        Error::BadUserInput(errors)
    })
}

pub async fn create_group(
    db: &DatabaseConnection,
    viewer: &Access,
    name: &str,
) -> Result<group::Model> {
    viewer.require(Permission::ManageGroups)?;
    let name = parse_name_field(name)?;
    let txn = begin_write(db).await?;
    let group = group::ActiveModel {
        name_folded: Set(fold(&name)),
        name: Set(name),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| name_conflict(e, GROUP_TAKEN))?;
    let payload = json!({ "group": events::group_view(&group) });
    record(
        &txn,
        viewer,
        EventType::GroupCreated,
        Target::group(group.id),
        payload,
    )
    .await?;
    txn.commit().await?;
    Ok(group)
}

pub async fn update_group(
    db: &DatabaseConnection,
    viewer: &Access,
    id: i64,
    name: Change<String>,
) -> Result<group::Model> {
    viewer.require(Permission::ManageGroups)?;
    let txn = begin_write(db).await?;
    let group = find_group(&txn, id).await?;
    viewer
        .may_act_on_group_id(&txn, Permission::ManageGroups, id)
        .await?;
    let before = group.name.clone();
    let group = match name {
        Change::Keep => group,
        Change::Clear => return Err(Error::bad_input("name", super::user_admin::NOT_NULL)),
        Change::Set(name) => {
            let name = parse_name_field(&name)?;
            let mut row = group.into_active_model();
            row.name_folded = Set(fold(&name));
            row.name = Set(name);
            row.update(&txn)
                .await
                .map_err(|e| name_conflict(e, GROUP_TAKEN))?
        }
    };
    if group.name != before {
        let payload = json!({ "name": { "before": before, "after": group.name } });
        record(
            &txn,
            viewer,
            EventType::GroupRenamed,
            Target::group(id),
            payload,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(group)
}

fn group_not_found() -> Error {
    Error::NotFound("No group with that id.".into())
}

async fn find_group(db: &impl ConnectionTrait, id: i64) -> Result<group::Model> {
    group::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(group_not_found)
}

/// Deletes a group; its memberships and permissions go with it.
pub async fn delete_group(db: &DatabaseConnection, viewer: &Access, id: i64) -> Result<i64> {
    viewer.require(Permission::ManageGroups)?;
    let txn = begin_write(db).await?;
    let group = find_group(&txn, id).await?;
    let carried = access::carried_by_all(&txn, &[id]).await?;
    viewer.may_act_on_group(Permission::ManageGroups, carried)?;
    let before = access::before_taking_away(&txn).await?;
    let deleted = group::Entity::delete_by_id(id).exec(&txn).await?;
    if deleted.rows_affected == 0 {
        return Err(group_not_found());
    }
    access::ensure_still_managed(&txn, before).await?;
    let mut payload = json!({ "group": events::group_view(&group) });
    payload["group"]["permissions"] = json!(carried.known_names());
    record(
        &txn,
        viewer,
        EventType::GroupDeleted,
        Target::group(id),
        payload,
    )
    .await?;
    txn.commit().await?;
    Ok(id)
}

/// `setGroupPermissions`: replaces what the group carries. The viewer
/// needs `MANAGE_GROUPS` and every permission the group carries before and
/// after; a permission taken away must keep an active holder who may
/// manage it.
pub async fn set_group_permissions(
    db: &DatabaseConnection,
    viewer: &Access,
    id: i64,
    permissions: Permissions,
) -> Result<group::Model> {
    viewer.require(Permission::ManageGroups)?;
    let txn = begin_write(db).await?;
    let group = find_group(&txn, id).await?;
    let carried = access::carried_by_all(&txn, &[id]).await?;
    viewer.may_act_on_group(Permission::ManageGroups, carried)?;
    viewer.may_grant(permissions)?;
    if permissions == carried {
        return Ok(group);
    }
    let taken_away = !carried.without(permissions).is_empty();
    let before = match taken_away {
        true => access::before_taking_away(&txn).await?,
        false => Permissions::NONE,
    };
    access::set_carried(&txn, id, permissions).await?;
    access::ensure_still_managed(&txn, before).await?;
    let (before, after) = (carried.known_names(), permissions.known_names());
    let payload = json!({ "permissions": { "before": before, "after": after } });
    record(
        &txn,
        viewer,
        EventType::GroupPermissionsSet,
        Target::group(id),
        payload,
    )
    .await?;
    txn.commit().await?;
    Ok(group)
}

/// The parent a division of `kind` may have: SUB needs a MAIN parent, MAIN
/// has none. Problems are reported on `parentId`.
async fn check_parent(
    txn: &impl sea_orm::ConnectionTrait,
    kind: division::DivisionType,
    parent: Option<i64>,
) -> Result<()> {
    match (kind, parent) {
        (division::DivisionType::Main, None) => Ok(()),
        (division::DivisionType::Main, Some(_)) => Err(Error::bad_input(
            "parentId",
            "A MAIN division has no parent.",
        )),
        (division::DivisionType::Sub, None) => Err(Error::bad_input(
            "parentId",
            "A SUB division needs a MAIN parent.",
        )),
        (division::DivisionType::Sub, Some(id)) => {
            match division::Entity::find_by_id(id).one(txn).await? {
                None => Err(Error::bad_input("parentId", "No division with that id.")),
                Some(parent) if parent.division_type != division::DivisionType::Main => Err(
                    Error::bad_input("parentId", "The parent must be a MAIN division."),
                ),
                Some(_) => Ok(()),
            }
        }
    }
}

pub async fn create_division(
    db: &DatabaseConnection,
    viewer: &Access,
    name: &str,
    kind: division::DivisionType,
    parent: Option<i64>,
) -> Result<division::Model> {
    viewer.require(Permission::ManageDivisions)?;
    let name = parse_name_field(name)?;
    let txn = begin_write(db).await?;
    check_parent(&txn, kind, parent).await?;
    let division = division::ActiveModel {
        name_folded: Set(fold(&name)),
        name: Set(name),
        division_type: Set(kind),
        parent_id: Set(parent),
        is_active: Set(true),
        created_at: Set(clock::now()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|e| name_conflict(e, DIVISION_TAKEN))?;
    let payload = json!({ "division": events::division_view(&division) });
    let target = Target::division(division.id);
    record(&txn, viewer, EventType::DivisionCreated, target, payload).await?;
    txn.commit().await?;
    Ok(division)
}

fn division_not_found() -> Error {
    Error::NotFound("No division with that id.".into())
}

pub async fn update_division(
    db: &DatabaseConnection,
    viewer: &Access,
    id: i64,
    name: Change<String>,
    parent: Change<i64>,
) -> Result<division::Model> {
    viewer.require(Permission::ManageDivisions)?;
    let txn = begin_write(db).await?;
    let division = division::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(division_not_found)?;
    let kind = division.division_type;
    let before = events::division_view(&division);
    let mut row = division.into_active_model();
    match name {
        Change::Keep => {}
        Change::Clear => return Err(Error::bad_input("name", super::user_admin::NOT_NULL)),
        Change::Set(name) => {
            let name = parse_name_field(&name)?;
            row.name_folded = Set(fold(&name));
            row.name = Set(name);
        }
    }
    match parent {
        Change::Keep => {}
        Change::Clear => {
            check_parent(&txn, kind, None).await?;
            row.parent_id = Set(None);
        }
        Change::Set(parent) => {
            check_parent(&txn, kind, Some(parent)).await?;
            row.parent_id = Set(Some(parent));
        }
    }
    let division = row
        .update(&txn)
        .await
        .map_err(|e| name_conflict(e, DIVISION_TAKEN))?;
    let changed = events::changes(&before, &events::division_view(&division));
    if changed.as_object().is_some_and(|c| !c.is_empty()) {
        let payload = json!({ "changes": changed });
        record(
            &txn,
            viewer,
            EventType::DivisionUpdated,
            Target::division(id),
            payload,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(division)
}

/// Activates or deactivates a division; idempotent. Its users stay as they
/// are, but while it is inactive none of them can be activated and nobody
/// can be given it.
pub async fn set_division_active(
    db: &DatabaseConnection,
    viewer: &Access,
    id: i64,
    active: bool,
) -> Result<division::Model> {
    viewer.require(Permission::ManageDivisions)?;
    let txn = begin_write(db).await?;
    let division = division::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(division_not_found)?;
    if division.is_active == active {
        return Ok(division);
    }
    let mut row = division.into_active_model();
    row.is_active = Set(active);
    let division = row.update(&txn).await?;
    let kind = match active {
        true => EventType::DivisionActivated,
        false => EventType::DivisionDeactivated,
    };
    let payload = json!({ "division": events::division_view(&division) });
    record(&txn, viewer, kind, Target::division(id), payload).await?;
    txn.commit().await?;
    Ok(division)
}
