//! Who may do what: the one place that decides.
//!
//! An [`Access`] is the viewer of a request with their effective
//! permissions, loaded together in one statement (or one cache hit) when the
//! access token is checked. Every read and write asks it: field guards,
//! filter and ordering guards, and each service's rules. Permissions are
//! carried by groups; staff hold every one; an inactive user holds none.
//!
//! The rules against escalation follow Saleor's: one grants only what one
//! holds; adding a member grants the group's permissions, so it needs them
//! all; one manages only users whose permissions one holds, and edits only
//! groups whose permissions one holds; and no change may leave a permission
//! that some active user could manage with nobody left who can.
use std::{collections::HashMap, net::IpAddr, sync::Arc};

use entity::{group_permission, membership, user};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, FromQueryResult, JoinType, QueryFilter,
    QuerySelect, QueryTrait, RelationTrait, Statement,
    sea_query::{Expr, ExprTrait},
};

use super::read_cache::Weigh;
use crate::{
    domain::{Permission, Permissions},
    error::{Error, Result},
};

pub const AUTHENTICATION_REQUIRED: &str = "Authentication required.";

/// A signed-in user and the permissions their groups give them.
#[derive(Debug, Clone)]
pub struct Account {
    pub user: Arc<user::Model>,
    /// What the user's groups carry, whether or not the user is active.
    pub granted: Permissions,
}

impl Account {
    /// What the user holds: every permission for staff, none while
    /// inactive, else what their groups carry.
    pub fn permissions(&self) -> Permissions {
        effective(&self.user, self.granted)
    }
}

impl Weigh for Account {
    fn heap_bytes(&self) -> usize {
        self.user.heap_bytes()
    }
}

/// What `user` holds when their groups carry `granted`.
pub fn effective(user: &user::Model, granted: Permissions) -> Permissions {
    if !user.is_active {
        Permissions::NONE
    } else if is_staff(user) {
        Permissions::all()
    } else {
        granted.known()
    }
}

/// Staff are users with `is_staff` or `is_superuser`.
pub fn is_staff(user: &user::Model) -> bool {
    user.is_staff || user.is_superuser
}

fn forbidden(message: impl Into<String>) -> Error {
    Error::Forbidden(message.into())
}

/// The viewer of a request, as every rule sees them, and where they ask
/// from (for the audit log).
#[derive(Debug, Clone, Default)]
pub struct Access {
    account: Option<Arc<Account>>,
    client: Option<IpAddr>,
}

impl Access {
    pub const fn anonymous() -> Self {
        Self {
            account: None,
            client: None,
        }
    }

    pub fn of(account: Arc<Account>) -> Self {
        Self {
            account: Some(account),
            client: None,
        }
    }

    /// The same viewer, asking from `client`.
    pub fn asking_from(self, client: IpAddr) -> Self {
        Self {
            client: Some(client),
            ..self
        }
    }

    pub fn account(&self) -> Option<&Arc<Account>> {
        self.account.as_ref()
    }

    /// The client's address, when the request came over HTTP.
    pub fn client(&self) -> Option<IpAddr> {
        self.client
    }

    /// The signed-in user, or `UNAUTHENTICATED`.
    pub fn user(&self) -> Result<&user::Model> {
        self.account
            .as_deref()
            .map(|account| account.user.as_ref())
            .ok_or(Error::Unauthenticated(AUTHENTICATION_REQUIRED))
    }

    /// The viewer's effective permissions (none when anonymous).
    pub fn permissions(&self) -> Permissions {
        self.account
            .as_deref()
            .map_or(Permissions::NONE, Account::permissions)
    }

    pub fn holds(&self, permission: Permission) -> bool {
        self.permissions().contains(permission)
    }

    /// The signed-in user if they hold `permission`: `UNAUTHENTICATED`
    /// when anonymous, else `FORBIDDEN` naming it.
    pub fn require(&self, permission: Permission) -> Result<&user::Model> {
        let user = self.user()?;
        if self.holds(permission) {
            Ok(user)
        } else {
            Err(forbidden(format!(
                "You need the {permission} permission to do this."
            )))
        }
    }

    pub fn is_superuser(&self) -> bool {
        self.user().is_ok_and(|u| u.is_superuser && u.is_active)
    }

    fn is_staff(&self) -> bool {
        self.user().is_ok_and(|u| is_staff(u) && u.is_active)
    }

    /// Whether the viewer may send documents outside the trusted ones when
    /// only those run: staff, when the deployment lets them
    /// (`ROSTER_TRUSTED_DOCUMENTS_STAFF_BYPASS`).
    pub fn may_send_untrusted_documents(&self, staff_bypass: bool) -> bool {
        staff_bypass && self.is_staff()
    }

    /// Whether the viewer is the user `id`.
    pub fn is_self(&self, id: i64) -> bool {
        self.user().is_ok_and(|u| u.id == id)
    }

    /// The guarded fields of user `id` (email, phone number, last login,
    /// flags, permissions): the user themself, or `VIEW_USER_DETAILS`.
    pub fn may_view_details_of(&self, id: i64) -> bool {
        self.is_self(id) || self.holds(Permission::ViewUserDetails)
    }

    /// Filtering, ordering and searching on guarded fields.
    pub fn may_filter_on_details(&self) -> Result<()> {
        self.user()?;
        if self.holds(Permission::ViewUserDetails) {
            Ok(())
        } else {
            Err(forbidden(
                "Filtering or ordering by email, phoneNumber, lastLogin, remoteId, isStaff, isSuperuser or permission needs the VIEW_USER_DETAILS permission.",
            ))
        }
    }

    /// Webhooks: superusers only (an endpoint receives every user as staff
    /// see them, and can answer with their remote ids).
    pub fn may_manage_webhooks(&self) -> Result<()> {
        self.user()?;
        if self.is_superuser() {
            Ok(())
        } else {
            Err(forbidden("Only a superuser may manage webhooks."))
        }
    }

    /// Setting `isStaff` or `isSuperuser`: superusers only.
    pub fn may_set_flags(&self) -> Result<()> {
        if self.is_superuser() {
            Ok(())
        } else {
            Err(forbidden(
                "Only a superuser may set isStaff or isSuperuser.",
            ))
        }
    }

    /// Managing `target`, whose groups carry `granted`: a superuser only by
    /// a superuser, staff only by staff, anyone else only by a viewer who
    /// holds every permission the target's groups carry (active or not:
    /// activating them would give them those).
    pub fn may_manage(&self, target: &user::Model, granted: Permissions) -> Result<()> {
        self.may_touch(target)?;
        let missing = granted.without(self.permissions());
        if !missing.is_empty() {
            return Err(self.refused_over(format!(
                "The user holds permissions you lack: {}.",
                missing.names()
            )));
        }
        Ok(())
    }

    /// A refusal to manage a user: naming what the user holds only to a
    /// viewer who may read it (flags and permissions are guarded fields).
    fn refused_over(&self, detail: String) -> Error {
        if self.holds(Permission::ViewUserDetails) {
            forbidden(detail)
        } else {
            forbidden(
                "You may not manage this user: they hold rights you lack (with VIEW_USER_DETAILS you could see which).",
            )
        }
    }

    /// Any change to `target`: a superuser's only by a superuser, a staff
    /// user's only by staff.
    pub fn may_touch(&self, target: &user::Model) -> Result<()> {
        if target.is_superuser && !self.is_superuser() {
            return Err(self.refused_over("Only a superuser may change a superuser.".to_owned()));
        }
        if target.is_staff && !self.is_staff() {
            return Err(self.refused_over("Only staff may change a staff user.".to_owned()));
        }
        Ok(())
    }

    /// Giving someone `permissions`: only those one holds.
    pub fn may_grant(&self, permissions: Permissions) -> Result<()> {
        let missing = permissions.without(self.permissions());
        if !missing.is_empty() {
            return Err(forbidden(format!(
                "You may grant only permissions you hold; you lack {}.",
                missing.names()
            )));
        }
        Ok(())
    }

    /// Acting on a group (with `needed`) whose permissions are `carried`:
    /// only with every one of them.
    pub fn may_act_on_group(&self, needed: Permission, carried: Permissions) -> Result<()> {
        self.require(needed)?;
        let missing = carried.without(self.permissions());
        if !missing.is_empty() {
            return Err(forbidden(format!(
                "The group carries permissions you lack: {}.",
                missing.names()
            )));
        }
        Ok(())
    }
}

impl Access {
    /// [`Access::may_act_on_group`] for group `group_id`, reading what it
    /// carries only when the viewer lacks some permission.
    pub async fn may_act_on_group_id(
        &self,
        db: &impl ConnectionTrait,
        needed: Permission,
        group_id: i64,
    ) -> Result<()> {
        self.require(needed)?;
        if self.permissions() == Permissions::all() {
            return Ok(());
        }
        let carried = carried_by_all(db, &[group_id]).await?;
        self.may_act_on_group(needed, carried)
    }

    /// [`Access::may_manage`] of `target`, reading what their groups carry
    /// only when the viewer lacks some permission.
    pub async fn may_manage_user(
        &self,
        db: &impl ConnectionTrait,
        target: &user::Model,
    ) -> Result<()> {
        let granted = if self.permissions() == Permissions::all() {
            Permissions::NONE
        } else {
            granted_to_user(db, target.id).await?
        };
        self.may_manage(target, granted)
    }
}

/// The account of user `id` in one statement: the user's row joined with
/// the permissions of their groups (a row per distinct permission).
pub async fn load_account(db: &impl ConnectionTrait, id: i64) -> Result<Option<Arc<Account>>> {
    let statement = user::Entity::find_by_id(id)
        .join(JoinType::LeftJoin, user::Relation::Membership.def())
        .join(JoinType::LeftJoin, memberships_permissions())
        .column_as(
            Expr::col((
                group_permission::Entity,
                group_permission::Column::Permission,
            )),
            "granted_permission",
        )
        // A row per permission, however many groups carry it.
        .distinct()
        .build(db.get_database_backend());
    let rows = db.query_all_raw(statement).await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let user = user::Model::from_query_result(first, "")?;
    let mut granted = Permissions::NONE;
    for row in &rows {
        let name: Option<String> = row.try_get("", "granted_permission")?;
        if let Some(name) = name {
            granted.insert_name(&name);
        }
    }
    Ok(Some(Arc::new(Account {
        user: Arc::new(user),
        granted,
    })))
}

/// `user_groups` → `group_permissions` on the group.
fn memberships_permissions() -> sea_orm::RelationDef {
    membership::Entity::belongs_to(group_permission::Entity)
        .from(membership::Column::GroupId)
        .to(group_permission::Column::GroupId)
        .into()
}

fn collect(rows: Vec<(i64, String)>, ids: &[i64]) -> HashMap<i64, Permissions> {
    let mut found: HashMap<i64, Permissions> =
        ids.iter().map(|&id| (id, Permissions::NONE)).collect();
    for (id, name) in rows {
        found.entry(id).or_default().insert_name(&name);
    }
    found
}

/// What the groups of each of these users carry.
pub async fn granted_to_users(
    db: &impl ConnectionTrait,
    user_ids: &[i64],
) -> Result<HashMap<i64, Permissions>> {
    let rows: Vec<(i64, String)> = membership::Entity::find()
        .select_only()
        .column(membership::Column::UserId)
        .column(group_permission::Column::Permission)
        .join(JoinType::InnerJoin, memberships_permissions())
        .filter(membership::Column::UserId.is_in(user_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(collect(rows, user_ids))
}

/// What the groups of user `id` carry.
pub async fn granted_to_user(db: &impl ConnectionTrait, id: i64) -> Result<Permissions> {
    Ok(granted_to_users(db, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default())
}

/// The permissions each of these groups carries.
pub async fn carried_by_groups(
    db: &impl ConnectionTrait,
    group_ids: &[i64],
) -> Result<HashMap<i64, Permissions>> {
    let rows: Vec<(i64, String)> = group_permission::Entity::find()
        .select_only()
        .column(group_permission::Column::GroupId)
        .column(group_permission::Column::Permission)
        .filter(group_permission::Column::GroupId.is_in(group_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(collect(rows, group_ids))
}

/// What the union of these groups carries.
pub async fn carried_by_all(db: &impl ConnectionTrait, group_ids: &[i64]) -> Result<Permissions> {
    if group_ids.is_empty() {
        return Ok(Permissions::NONE);
    }
    Ok(carried_by_groups(db, group_ids)
        .await?
        .into_values()
        .fold(Permissions::NONE, Permissions::union))
}

/// The users who hold `permission`: active, and staff or in a group that
/// carries it.
pub fn holders(permission: Permission) -> Condition {
    let carriers = membership::Entity::find()
        .select_only()
        .column(membership::Column::UserId)
        .join(JoinType::InnerJoin, memberships_permissions())
        .filter(group_permission::Column::Permission.eq(permission.name()))
        .into_query();
    Condition::all()
        .add(Expr::col(user::Column::IsActive).eq(true))
        .add(
            Condition::any()
                .add(Expr::col(user::Column::IsStaff).eq(true))
                .add(Expr::col(user::Column::IsSuperuser).eq(true))
                .add(Expr::col(user::Column::Id).in_subquery(carriers)),
        )
}

/// The permissions that some active user both holds and may manage (holds
/// `MANAGE_GROUPS` too): every one while an active staff user exists.
pub async fn managed(db: &impl ConnectionTrait) -> Result<Permissions> {
    // The same text on both databases: booleans test as themselves.
    const SQL: &str = "SELECT '*' AS permission WHERE EXISTS \
        (SELECT 1 FROM users WHERE is_active AND (is_staff OR is_superuser)) \
        UNION SELECT gp.permission FROM group_permissions gp \
        JOIN user_groups ug ON ug.group_id = gp.group_id \
        JOIN users u ON u.id = ug.user_id \
        WHERE u.is_active AND u.id IN (SELECT m.user_id FROM user_groups m \
        JOIN group_permissions mp ON mp.group_id = m.group_id \
        WHERE mp.permission = 'MANAGE_GROUPS')";
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, SQL))
        .await?;
    let mut held = Permissions::NONE;
    for row in rows {
        let name: String = row.try_get("", "permission")?;
        if name == "*" {
            return Ok(Permissions::all());
        }
        if let Some(permission) = Permission::from_name(&name) {
            held.insert(permission);
        }
    }
    Ok(held)
}

/// Serializes the changes that may take permissions away, so that two of
/// them cannot each leave the other's check passing (PostgreSQL; SQLite's
/// write lock does this already). Returns what is managed before.
pub async fn before_taking_away(db: &impl ConnectionTrait) -> Result<Permissions> {
    super::lock_on_postgres(db, "permissions".to_owned()).await?;
    managed(db).await
}

/// Refuses a change that left a permission managed `before` with nobody
/// active who holds and may manage it.
pub async fn ensure_still_managed(db: &impl ConnectionTrait, before: Permissions) -> Result<()> {
    if before.is_empty() {
        return Ok(());
    }
    let lost = before.without(managed(db).await?);
    if lost.is_empty() {
        Ok(())
    } else {
        Err(forbidden(format!(
            "No active user would be left who holds and may manage {}.",
            lost.names()
        )))
    }
}

/// Sets the permissions group `group_id` carries (the caller has checked
/// the group exists and the rules). Names this build does not know stay.
pub async fn set_carried(
    db: &impl ConnectionTrait,
    group_id: i64,
    permissions: Permissions,
) -> Result<()> {
    group_permission::Entity::delete_many()
        .filter(group_permission::Column::GroupId.eq(group_id))
        .filter(group_permission::Column::Permission.is_in(Permission::ALL.map(Permission::name)))
        .exec(db)
        .await?;
    if !permissions.is_empty() {
        let rows = permissions.iter().map(|p| group_permission::ActiveModel {
            group_id: sea_orm::Set(group_id),
            permission: sea_orm::Set(p.name().to_owned()),
        });
        group_permission::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}
