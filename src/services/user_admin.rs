//! What staff do to users: create, update, activate, deactivate, delete,
//! and group memberships. Every rule of the contract's "Authorization" and
//! "Divisions and groups" sections is enforced here, inside transactions
//! that hold the database's locks, so that it holds under concurrency and
//! across processes.
use entity::{division, group, membership, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QuerySelect, Set,
    Statement, TryInsertResult,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;

use super::{
    access::{self, Access},
    begin_write,
    client_budget::{self, ClientBudget},
    events::{self, Actor, Target},
    login_limit,
    password_hash::Hasher,
    refresh_tokens,
    users::{self, NewUser},
};
use crate::{
    domain::{
        Email, EventType, PasswordPolicy, Permission, Permissions, Username, fold, parse_name,
        parse_phone, parse_remote_id,
    },
    error::{Error, FieldErrors, Result},
};

pub const INACTIVE_DIVISION: &str = "Deactivated divisions cannot be assigned to users.";
pub const UNKNOWN_DIVISION: &str = "No division with that id.";
pub const NOT_NULL: &str = "This field may not be null.";

/// A change to one field: leave it, set it, or (for nullable fields) clear it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Change<T> {
    #[default]
    Keep,
    Set(T),
    Clear,
}

impl<T> Change<T> {
    pub fn is_keep(&self) -> bool {
        matches!(self, Change::Keep)
    }
}

/// `createUser`'s input.
#[derive(Debug, Clone, Default)]
pub struct CreateUser {
    pub username: String,
    pub email: String,
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone_number: Option<String>,
    pub division_id: Option<String>,
    pub group_ids: Vec<String>,
    pub remote_id: Option<String>,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

/// `updateUser`'s input.
#[derive(Debug, Clone, Default)]
pub struct UpdateUser {
    pub username: Change<String>,
    pub email: Change<String>,
    pub first_name: Change<String>,
    pub last_name: Change<String>,
    pub phone_number: Change<String>,
    pub division_id: Change<String>,
    pub remote_id: Change<String>,
    pub is_staff: Change<bool>,
    pub is_superuser: Change<bool>,
}

fn forbidden(message: &str) -> Error {
    Error::Forbidden(message.to_owned())
}

fn not_found() -> Error {
    Error::NotFound("No user with that id.".into())
}

/// Parses an id given inside an input; malformed is reported on `field`.
fn input_id(value: &str, field: &str, errors: &mut FieldErrors) -> Option<i64> {
    match value.trim().parse::<i64>() {
        Ok(id) if id > 0 => Some(id),
        _ => {
            errors.add(field, "Not a valid id.");
            None
        }
    }
}

/// Checks that `division_id` names an active division.
async fn check_division(
    db: &impl ConnectionTrait,
    id: i64,
    errors: &mut FieldErrors,
) -> Result<()> {
    match division::Entity::find_by_id(id).one(db).await? {
        None => errors.add("divisionId", UNKNOWN_DIVISION),
        Some(d) if !d.is_active => errors.add("divisionId", INACTIVE_DIVISION),
        Some(_) => {}
    }
    Ok(())
}

/// Locks the rows of every active superuser until the transaction ends, so
/// that concurrent changes which could remove the last one take turns (on
/// SQLite, [`begin_write`] has serialized them already).
async fn lock_superusers(txn: &DatabaseTransaction) -> Result<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id FROM users WHERE is_superuser AND is_active FOR UPDATE",
        ))
        .await?;
    }
    Ok(())
}

async fn active_superusers(db: &impl ConnectionTrait) -> Result<u64> {
    Ok(user::Entity::find()
        .filter(user::Column::IsSuperuser.eq(true))
        .filter(user::Column::IsActive.eq(true))
        .count(db)
        .await?)
}

/// Refuses, at the end of a transaction, a state with no active superuser
/// where there was one.
async fn ensure_a_superuser_remains(
    txn: &DatabaseTransaction,
    target_was_active_superuser: bool,
) -> Result<()> {
    if target_was_active_superuser && active_superusers(txn).await? == 0 {
        return Err(forbidden(
            "The last active superuser cannot be deactivated, deleted or demoted.",
        ));
    }
    Ok(())
}

/// Loads the target of a `MANAGE_USERS` action, which the viewer must be
/// allowed to manage ([`Access::may_manage`]).
async fn managed_target(
    db: &impl ConnectionTrait,
    viewer: &Access,
    id: i64,
) -> Result<user::Model> {
    viewer.require(Permission::ManageUsers)?;
    let target = user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    viewer.may_manage_user(db, &target).await?;
    Ok(target)
}

/// Group ids that exist, reporting the unknown ones under `groupIds`.
async fn check_groups(
    db: &impl ConnectionTrait,
    ids: &[i64],
    errors: &mut FieldErrors,
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: Vec<i64> = group::Entity::find()
        .select_only()
        .column(group::Column::Id)
        .filter(group::Column::Id.is_in(ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    for id in ids {
        if !found.contains(id) {
            errors.add("groupIds", format!("No group with id {id}."));
        }
    }
    Ok(())
}

/// `createUser`: every input checked at once, before the password is
/// hashed; then the user and its memberships are written in one
/// transaction, which checks the division, groups and unique keys again
/// (they may have changed while the password was hashed).
#[tracing::instrument(level = "debug", skip_all, fields(username = %input.username))]
pub async fn create(
    db: &DatabaseConnection,
    hasher: &Hasher,
    policy: PasswordPolicy,
    viewer: &Access,
    input: CreateUser,
) -> Result<user::Model> {
    viewer.require(Permission::ManageUsers)?;
    if input.is_staff || input.is_superuser {
        viewer.may_set_flags()?;
    }
    if !input.group_ids.is_empty() {
        viewer.require(Permission::ManageGroupMembers)?;
    }
    let mut errors = FieldErrors::new();
    let identity = users::parse_identity(
        &input.username,
        &input.email,
        input.first_name.as_deref(),
        input.last_name.as_deref(),
        input.password.as_deref(),
        policy,
        &mut errors,
    );
    let phone_number = match input.phone_number.as_deref() {
        Some(phone) => parse_phone(phone)
            .map_err(|m| errors.extend("phoneNumber", m))
            .unwrap_or_default(),
        None => None,
    };
    let division_id = match input.division_id.as_deref() {
        Some(id) => input_id(id, "divisionId", &mut errors),
        None => None,
    };
    let remote_id = match input.remote_id.as_deref() {
        Some(id) => parse_remote_id(id)
            .map_err(|m| errors.extend("remoteId", m))
            .unwrap_or_default(),
        None => None,
    };
    let mut group_ids = Vec::new();
    for id in &input.group_ids {
        if let Some(id) = input_id(id, "groupIds", &mut errors)
            && !group_ids.contains(&id)
        {
            group_ids.push(id);
        }
    }
    check_references(db, division_id, &group_ids, &mut errors).await?;
    if errors.is_empty() && viewer.permissions() != Permissions::all() {
        viewer.may_grant(access::carried_by_all(db, &group_ids).await?)?;
    }
    let (Some(username), Some(email)) = (identity.username, identity.email) else {
        return Err(Error::BadUserInput(errors));
    };
    errors.into_result()?;
    let taken = users::taken_fields(db, Some(&username), Some(&email), None).await?;
    if !taken.is_empty() {
        return Err(Error::Conflict(taken));
    }
    let password_hash = match input.password {
        Some(password) => Some(hasher.hash(password).await?),
        None => None,
    };
    let txn = begin_write(db).await?;
    let mut errors = FieldErrors::new();
    check_references(&txn, division_id, &group_ids, &mut errors).await?;
    errors.into_result()?;
    // The groups' permissions may have grown meanwhile.
    if viewer.permissions() != Permissions::all() {
        viewer.may_grant(access::carried_by_all(&txn, &group_ids).await?)?;
    }
    let new = NewUser {
        username,
        email,
        first_name: identity.first_name,
        last_name: identity.last_name,
        phone_number,
        password_hash,
        is_active: input.is_active,
        is_staff: input.is_staff,
        is_superuser: input.is_superuser,
        division_id,
    };
    let mut user = users::create(&txn, new).await?;
    if remote_id.is_some() {
        let mut row = user.into_active_model();
        row.remote_id_folded = Set(remote_id.as_deref().map(fold));
        row.remote_id = Set(remote_id);
        user = row.update(&txn).await?;
    }
    if !group_ids.is_empty() {
        let rows = group_ids.iter().map(|&group_id| membership::ActiveModel {
            user_id: Set(user.id),
            group_id: Set(group_id),
        });
        membership::Entity::insert_many(rows).exec(&txn).await?;
    }
    let group_ids: Vec<String> = group_ids.iter().map(i64::to_string).collect();
    let payload = json!({ "user": events::user_view(&user), "groupIds": group_ids });
    let actor = Actor::of(viewer);
    events::record(
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

/// The division (if any) and groups a new user is given exist, and the
/// division is active.
async fn check_references(
    db: &impl ConnectionTrait,
    division_id: Option<i64>,
    group_ids: &[i64],
    errors: &mut FieldErrors,
) -> Result<()> {
    if let Some(id) = division_id {
        check_division(db, id, errors).await?;
    }
    check_groups(db, group_ids, errors).await
}

/// `upsertUser`'s input: `createUser`'s, with the fields `updateUser`
/// changes given as changes.
#[derive(Debug, Clone, Default)]
pub struct UpsertUser {
    pub username: String,
    pub email: String,
    /// Only when the user is created.
    pub password: Option<String>,
    pub first_name: Change<String>,
    pub last_name: Change<String>,
    pub phone_number: Change<String>,
    pub division_id: Change<String>,
    pub remote_id: Change<String>,
    /// Only when the user is created.
    pub group_ids: Vec<String>,
    /// Only when the user is created.
    pub is_active: Option<bool>,
    pub is_staff: Change<bool>,
    pub is_superuser: Change<bool>,
}

/// `upsertUser`, for provisioning scripts: creates the user under
/// `createUser`'s rules, or, when a user has the username or the email
/// (without regard to case), updates the fields given under `updateUser`'s.
/// A username of one user and an email of another is `CONFLICT`.
pub async fn upsert(
    db: &DatabaseConnection,
    budget: ClientBudget,
    hasher: &Hasher,
    policy: PasswordPolicy,
    viewer: &Access,
    input: UpsertUser,
) -> Result<user::Model> {
    viewer.require(Permission::ManageUsers)?;
    // Null means the same on both paths: these fields cannot be cleared.
    let mut errors = FieldErrors::new();
    let cleared = [
        ("firstName", matches!(input.first_name, Change::Clear)),
        ("lastName", matches!(input.last_name, Change::Clear)),
        ("isStaff", matches!(input.is_staff, Change::Clear)),
        ("isSuperuser", matches!(input.is_superuser, Change::Clear)),
    ];
    for (field, _) in cleared.iter().filter(|(_, cleared)| *cleared) {
        errors.add(field, NOT_NULL);
    }
    errors.into_result()?;
    let (username, email) = (fold(input.username.trim()), fold(input.email.trim()));
    let found = users::with_username_or_email(db, &username, &email).await?;
    let set = |change: Change<String>| match change {
        Change::Set(value) => Some(value),
        Change::Keep | Change::Clear => None,
    };
    match found.as_slice() {
        [] => {
            let create_input = CreateUser {
                username: input.username,
                email: input.email,
                password: input.password,
                first_name: set(input.first_name),
                last_name: set(input.last_name),
                phone_number: set(input.phone_number),
                division_id: set(input.division_id),
                remote_id: set(input.remote_id),
                group_ids: input.group_ids,
                is_active: input.is_active.unwrap_or(true),
                is_staff: matches!(input.is_staff, Change::Set(true)),
                is_superuser: matches!(input.is_superuser, Change::Set(true)),
            };
            create(db, hasher, policy, viewer, create_input).await
        }
        [existing] => {
            // A flag given as it already is changes nothing, so a script
            // run again by staff who may not set flags still passes.
            let unless_same = |change: Change<bool>, current: bool| match change {
                Change::Set(value) if value == current => Change::Keep,
                other => other,
            };
            let update_input = UpdateUser {
                username: Change::Set(input.username),
                email: Change::Set(input.email),
                first_name: input.first_name,
                last_name: input.last_name,
                phone_number: input.phone_number,
                division_id: input.division_id,
                remote_id: input.remote_id,
                is_staff: unless_same(input.is_staff, existing.is_staff),
                is_superuser: unless_same(input.is_superuser, existing.is_superuser),
            };
            update(db, budget, viewer, existing.id, update_input).await
        }
        _ => {
            let mut fields = FieldErrors::new();
            fields.add("username", users::USERNAME_TAKEN);
            fields.add("email", users::EMAIL_TAKEN);
            Err(Error::Conflict(fields))
        }
    }
}

/// `updateUser`: absent fields stay, explicit null clears a nullable one.
#[tracing::instrument(skip_all, fields(user_id = id))]
pub async fn update(
    db: &DatabaseConnection,
    budget: ClientBudget,
    viewer: &Access,
    id: i64,
    input: UpdateUser,
) -> Result<user::Model> {
    viewer.user()?;
    let own = viewer.is_self(id);
    let privileged = !input.division_id.is_keep()
        || !input.remote_id.is_keep()
        || !input.is_staff.is_keep()
        || !input.is_superuser.is_keep();
    if !viewer.holds(Permission::ManageUsers) {
        if !own {
            return Err(forbidden(
                "You may update only your own account without the MANAGE_USERS permission.",
            ));
        }
        if privileged {
            return Err(forbidden(
                "You may change only your username, email, names and phone number.",
            ));
        }
    }
    if !input.is_staff.is_keep() || !input.is_superuser.is_keep() {
        viewer.may_set_flags()?;
    }
    if !viewer.holds(Permission::ManageUsers) {
        // Each change is a row of the audit log: a user editing their own
        // account spends a budget of their own, so no one can grow the log
        // at will.
        client_budget::spend(db, budget, &format!("self:{id}")).await?;
    }
    let txn = begin_write(db).await?;
    lock_superusers(&txn).await?;
    let target = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(not_found)?;
    match own {
        true => viewer.may_touch(&target)?,
        false => viewer.may_manage_user(&txn, &target).await?,
    }
    let mut errors = FieldErrors::new();
    let mut row = target.clone().into_active_model();
    let required =
        |change: &Change<String>, field: &str, errors: &mut FieldErrors| -> Option<String> {
            match change {
                Change::Keep => None,
                Change::Clear => {
                    errors.add(field, NOT_NULL);
                    None
                }
                Change::Set(value) => Some(value.clone()),
            }
        };
    let username = required(&input.username, "username", &mut errors).and_then(|v| {
        Username::parse(&v)
            .map_err(|m| errors.extend("username", m))
            .ok()
    });
    let email = required(&input.email, "email", &mut errors)
        .and_then(|v| Email::parse(&v).map_err(|m| errors.extend("email", m)).ok());
    for (change, field, raw, folded) in [
        (
            &input.first_name,
            "firstName",
            &mut row.first_name,
            &mut row.first_name_folded,
        ),
        (
            &input.last_name,
            "lastName",
            &mut row.last_name,
            &mut row.last_name_folded,
        ),
    ] {
        if let Some(value) = required(change, field, &mut errors) {
            match parse_name(Some(&value)) {
                Ok(name) => {
                    *folded = Set(fold(&name));
                    *raw = Set(name);
                }
                Err(messages) => errors.extend(field, messages),
            }
        }
    }
    match &input.remote_id {
        Change::Keep => {}
        Change::Clear => {
            row.remote_id = Set(None);
            row.remote_id_folded = Set(None);
        }
        Change::Set(value) => match parse_remote_id(value) {
            Ok(id) => {
                row.remote_id_folded = Set(id.as_deref().map(fold));
                row.remote_id = Set(id);
            }
            Err(messages) => errors.extend("remoteId", messages),
        },
    }
    match &input.phone_number {
        Change::Keep => {}
        Change::Clear => row.phone_number = Set(None),
        Change::Set(phone) => match parse_phone(phone) {
            Ok(phone) => row.phone_number = Set(phone),
            Err(messages) => errors.extend("phoneNumber", messages),
        },
    }
    match &input.division_id {
        Change::Keep => {}
        Change::Clear => row.division_id = Set(None),
        Change::Set(value) => {
            if let Some(division) = input_id(value, "divisionId", &mut errors) {
                // Keeping the division it already has is no assignment.
                if target.division_id != Some(division) {
                    check_division(&txn, division, &mut errors).await?;
                }
                row.division_id = Set(Some(division));
            }
        }
    }
    for (change, field, column) in [
        (&input.is_staff, "isStaff", &mut row.is_staff),
        (&input.is_superuser, "isSuperuser", &mut row.is_superuser),
    ] {
        match change {
            Change::Keep => {}
            Change::Clear => errors.add(field, NOT_NULL),
            Change::Set(value) => *column = Set(*value),
        }
    }
    errors.into_result()?;
    let taken = users::taken_fields(&txn, username.as_ref(), email.as_ref(), Some(id)).await?;
    if !taken.is_empty() {
        return Err(Error::Conflict(taken));
    }
    if let Some(username) = username {
        row.username_folded = Set(username.folded());
        row.username = Set(username.as_str().to_owned());
    }
    if let Some(email) = email {
        row.email_folded = Set(email.folded());
        row.email = Set(email.as_str().to_owned());
    }
    let updated = row.update(&txn).await.map_err(users::conflict_from)?;
    let demoted = target.is_superuser && target.is_active && !updated.is_superuser;
    ensure_a_superuser_remains(&txn, demoted).await?;
    let changed = events::changes(&events::user_view(&target), &events::user_view(&updated));
    if changed.as_object().is_some_and(|c| !c.is_empty()) {
        let payload = json!({ "changes": changed });
        let (actor, target) = (Actor::of(viewer), Target::user(id));
        events::record(&txn, &actor, EventType::UserUpdated, target, payload).await?;
    }
    txn.commit().await?;
    Ok(updated)
}

/// `activateUser`: idempotent; refused while the user's division is inactive.
pub async fn activate(db: &DatabaseConnection, viewer: &Access, id: i64) -> Result<user::Model> {
    viewer.require(Permission::ManageUsers)?;
    let txn = begin_write(db).await?;
    let target = managed_target(&txn, viewer, id).await?;
    if let Some(division_id) = target.division_id {
        let active = division::Entity::find_by_id(division_id)
            .one(&txn)
            .await?
            .is_some_and(|d| d.is_active);
        if !active {
            return Err(Error::DivisionInactive);
        }
    }
    if target.is_active {
        return Ok(target);
    }
    let mut row = target.into_active_model();
    row.is_active = Set(true);
    let user = row.update(&txn).await?;
    user_event(&txn, viewer, EventType::UserActivated, &user).await?;
    txn.commit().await?;
    Ok(user)
}

/// `requestUserSync`: records `user.sync_requested`, which webhook
/// endpoints that take it send to the external system again (an endpoint
/// that answers with a `remoteId` updates the user's).
pub async fn request_sync(
    db: &DatabaseConnection,
    budget: ClientBudget,
    viewer: &Access,
    id: i64,
) -> Result<user::Model> {
    let asking = viewer.require(Permission::ManageUsers)?.id;
    // Each request is an event and a delivery per endpoint: a budget of the
    // asker's, so no one floods the endpoints at will.
    client_budget::spend(db, budget, &format!("sync:{asking}")).await?;
    let txn = begin_write(db).await?;
    let target = managed_target(&txn, viewer, id).await?;
    user_event(&txn, viewer, EventType::UserSyncRequested, &target).await?;
    txn.commit().await?;
    Ok(target)
}

/// `deactivateUser`: idempotent; never oneself, never the last active
/// superuser; every token of the user stops working at once.
pub async fn deactivate(db: &DatabaseConnection, viewer: &Access, id: i64) -> Result<user::Model> {
    viewer.require(Permission::ManageUsers)?;
    if viewer.is_self(id) {
        return Err(forbidden("You cannot deactivate yourself."));
    }
    let txn = begin_write(db).await?;
    lock_superusers(&txn).await?;
    let target = managed_target(&txn, viewer, id).await?;
    if !target.is_active {
        return Ok(target);
    }
    let before = access::before_taking_away(&txn).await?;
    user::Entity::update_many()
        .col_expr(user::Column::IsActive, Expr::value(false))
        .col_expr(
            user::Column::TokenVersion,
            Expr::col(user::Column::TokenVersion).add(1),
        )
        .filter(user::Column::Id.eq(id))
        .exec(&txn)
        .await?;
    ensure_a_superuser_remains(&txn, target.is_superuser).await?;
    access::ensure_still_managed(&txn, before).await?;
    refresh_tokens::revoke_all_of_user(&txn, id).await?;
    login_limit::forget_known_clients(&txn, id).await?;
    let user = user::Entity::find_by_id(id)
        .one(&txn)
        .await?
        .ok_or_else(not_found)?;
    user_event(&txn, viewer, EventType::UserDeactivated, &user).await?;
    txn.commit().await?;
    Ok(user)
}

/// `deleteUser`: never oneself, never the last active superuser; the
/// user's memberships and tokens go with it.
pub async fn delete(db: &DatabaseConnection, viewer: &Access, id: i64) -> Result<i64> {
    viewer.require(Permission::ManageUsers)?;
    if viewer.is_self(id) {
        return Err(forbidden("You cannot delete yourself."));
    }
    let txn = begin_write(db).await?;
    lock_superusers(&txn).await?;
    let target = managed_target(&txn, viewer, id).await?;
    let before = access::before_taking_away(&txn).await?;
    user::Entity::delete_by_id(id).exec(&txn).await?;
    login_limit::forget_known_clients(&txn, id).await?;
    ensure_a_superuser_remains(&txn, target.is_superuser && target.is_active).await?;
    access::ensure_still_managed(&txn, before).await?;
    user_event(&txn, viewer, EventType::UserDeleted, &target).await?;
    txn.commit().await?;
    Ok(id)
}

/// Records `kind` about `user`, with the user as staff see it.
async fn user_event(
    txn: &impl ConnectionTrait,
    viewer: &Access,
    kind: EventType,
    user: &user::Model,
) -> Result<()> {
    let payload = json!({ "user": events::user_view(user) });
    events::record(
        txn,
        &Actor::of(viewer),
        kind,
        Target::user(user.id),
        payload,
    )
    .await
}

async fn membership_event(
    txn: &impl ConnectionTrait,
    viewer: &Access,
    kind: EventType,
    user_id: i64,
    group_id: i64,
) -> Result<()> {
    let payload = json!({ "userId": user_id.to_string(), "groupId": group_id.to_string() });
    let target = Target::membership(user_id, group_id);
    events::record(txn, &Actor::of(viewer), kind, target, payload).await
}

/// The user and group of a membership change: `MANAGE_GROUP_MEMBERS`, every
/// permission the group carries (joining grants them, leaving takes them),
/// and a user the viewer may touch.
async fn membership_parties(
    db: &impl ConnectionTrait,
    viewer: &Access,
    user_id: i64,
    group_id: i64,
) -> Result<user::Model> {
    viewer.require(Permission::ManageGroupMembers)?;
    if group::Entity::find_by_id(group_id).one(db).await?.is_none() {
        return Err(Error::NotFound("No group with that id.".into()));
    }
    let target = user::Entity::find_by_id(user_id)
        .one(db)
        .await?
        .ok_or_else(not_found)?;
    viewer.may_touch(&target)?;
    viewer
        .may_act_on_group_id(db, Permission::ManageGroupMembers, group_id)
        .await?;
    Ok(target)
}

/// `assignUserToGroup`: idempotent.
pub async fn assign_to_group(
    db: &DatabaseConnection,
    viewer: &Access,
    user_id: i64,
    group_id: i64,
) -> Result<user::Model> {
    viewer.require(Permission::ManageGroupMembers)?;
    let txn = begin_write(db).await?;
    let target = membership_parties(&txn, viewer, user_id, group_id).await?;
    let inserted = membership::Entity::insert(membership::ActiveModel {
        user_id: Set(user_id),
        group_id: Set(group_id),
    })
    .on_conflict_do_nothing_on([membership::Column::UserId, membership::Column::GroupId])
    .exec_without_returning(&txn)
    .await?;
    if matches!(inserted, TryInsertResult::Inserted(1..)) {
        membership_event(&txn, viewer, EventType::UserAddedToGroup, user_id, group_id).await?;
    }
    txn.commit().await?;
    Ok(target)
}

/// `removeUserFromGroup`: idempotent.
pub async fn remove_from_group(
    db: &DatabaseConnection,
    viewer: &Access,
    user_id: i64,
    group_id: i64,
) -> Result<user::Model> {
    viewer.require(Permission::ManageGroupMembers)?;
    let txn = begin_write(db).await?;
    let target = membership_parties(&txn, viewer, user_id, group_id).await?;
    let before = access::before_taking_away(&txn).await?;
    let removed = membership::Entity::delete_many()
        .filter(membership::Column::UserId.eq(user_id))
        .filter(membership::Column::GroupId.eq(group_id))
        .exec(&txn)
        .await?;
    access::ensure_still_managed(&txn, before).await?;
    if removed.rows_affected > 0 {
        membership_event(
            &txn,
            viewer,
            EventType::UserRemovedFromGroup,
            user_id,
            group_id,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(target)
}
