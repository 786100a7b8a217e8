//! The admin mutations: users, groups and divisions. Resolvers read the
//! viewer, convert the input, and call a service.
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object};

use crate::{
    graphql::{
        guards::access,
        parse_id, state,
        types::{Division, DivisionType, Group, Permission, User},
    },
    services::{
        catalog,
        user_admin::{self, Change, CreateUser, UpdateUser, UpsertUser},
    },
};

/// A new user, created by a holder of MANAGE_USERS.
#[derive(InputObject)]
pub struct CreateUserInput {
    /// 1–150 letters, digits and @ . + - _; unique without regard to case.
    pub username: String,
    /// A valid address of at most 254 characters; unique without regard to case.
    pub email: String,
    /// Without one, the account cannot log in until a password is set.
    pub password: Option<String>,
    /// At most 150 characters; "" when absent.
    pub first_name: Option<String>,
    /// At most 150 characters; "" when absent.
    pub last_name: Option<String>,
    /// Digits with optional + - . ( ) and spaces, at most 32 characters.
    pub phone_number: Option<String>,
    /// An active division.
    pub division_id: Option<ID>,
    /// Groups the user joins.
    pub group_ids: Option<Vec<ID>>,
    /// The id an external system gave the user, at most 255 characters.
    pub remote_id: Option<String>,
    /// Whether the account can log in (default true).
    #[graphql(default_with = "Some(true)")]
    pub is_active: Option<bool>,
    /// Superusers only.
    #[graphql(default_with = "Some(false)")]
    pub is_staff: Option<bool>,
    /// Superusers only.
    #[graphql(default_with = "Some(false)")]
    pub is_superuser: Option<bool>,
}

/// A partial update: an absent field stays as it is; an explicit null
/// clears a nullable field (`phoneNumber`, `divisionId`).
#[derive(InputObject)]
pub struct UpdateUserInput {
    /// A new username, unique without regard to case.
    pub username: MaybeUndefined<String>,
    /// A new email, unique without regard to case.
    pub email: MaybeUndefined<String>,
    /// A new first name ("" for none).
    pub first_name: MaybeUndefined<String>,
    /// A new last name ("" for none).
    pub last_name: MaybeUndefined<String>,
    /// A new phone number; null clears it.
    pub phone_number: MaybeUndefined<String>,
    /// MANAGE_USERS only; an active division.
    pub division_id: MaybeUndefined<ID>,
    /// MANAGE_USERS only; the id an external system gave the user; null
    /// clears it.
    pub remote_id: MaybeUndefined<String>,
    /// Superusers only.
    pub is_staff: MaybeUndefined<bool>,
    /// Superusers only.
    pub is_superuser: MaybeUndefined<bool>,
}

/// A user to create, or to update when a user already has the username or
/// the email (without regard to case): for provisioning scripts.
#[derive(InputObject)]
pub struct UpsertUserInput {
    /// Finds the user, or names the new one; an existing user is renamed
    /// to it when found by email.
    pub username: String,
    /// Finds the user, or is the new one's; an existing user's is changed
    /// to it when found by username.
    pub email: String,
    /// Only when the user is created: an existing user's password is set
    /// with `setUserPassword`.
    pub password: Option<String>,
    /// Absent: kept (or "" for a new user).
    pub first_name: MaybeUndefined<String>,
    /// Absent: kept (or "" for a new user).
    pub last_name: MaybeUndefined<String>,
    /// Absent: kept (or none for a new user); null clears it.
    pub phone_number: MaybeUndefined<String>,
    /// An active division. Absent: kept (or none); null clears it.
    pub division_id: MaybeUndefined<ID>,
    /// The id an external system gave the user. Absent: kept (or none);
    /// null clears it.
    pub remote_id: MaybeUndefined<String>,
    /// Only when the user is created: an existing user's memberships
    /// change with `assignUserToGroup` and `removeUserFromGroup`.
    pub group_ids: Option<Vec<ID>>,
    /// Only when the user is created (default true): an existing user is
    /// activated or deactivated with `activateUser` and `deactivateUser`.
    pub is_active: Option<bool>,
    /// Superusers only, unless given as it already is. Absent: kept (or
    /// false).
    pub is_staff: MaybeUndefined<bool>,
    /// Superusers only, unless given as it already is. Absent: kept (or
    /// false).
    pub is_superuser: MaybeUndefined<bool>,
}

#[derive(InputObject)]
pub struct CreateGroupInput {
    /// Unique without regard to case.
    pub name: String,
}

#[derive(InputObject)]
pub struct UpdateGroupInput {
    /// A new name, unique without regard to case.
    pub name: MaybeUndefined<String>,
}

#[derive(InputObject)]
pub struct CreateDivisionInput {
    /// Unique without regard to case.
    pub name: String,
    /// MAIN (no parent) or SUB (under a MAIN division).
    pub division_type: DivisionType,
    /// Required for SUB (a MAIN division), absent for MAIN.
    pub parent_id: Option<ID>,
}

#[derive(InputObject)]
pub struct UpdateDivisionInput {
    /// A new name, unique without regard to case.
    pub name: MaybeUndefined<String>,
    /// A SUB division may move to another MAIN division.
    pub parent_id: MaybeUndefined<ID>,
}

fn change<T, U>(value: MaybeUndefined<T>, convert: impl FnOnce(T) -> U) -> Change<U> {
    match value {
        MaybeUndefined::Undefined => Change::Keep,
        MaybeUndefined::Null => Change::Clear,
        MaybeUndefined::Value(v) => Change::Set(convert(v)),
    }
}

fn ids(ids: Option<Vec<ID>>) -> Vec<String> {
    ids.into_iter().flatten().map(|id| id.0).collect()
}

impl From<CreateUserInput> for CreateUser {
    fn from(input: CreateUserInput) -> Self {
        Self {
            username: input.username,
            email: input.email,
            password: input.password,
            first_name: input.first_name,
            last_name: input.last_name,
            phone_number: input.phone_number,
            division_id: input.division_id.map(|id| id.0),
            group_ids: ids(input.group_ids),
            remote_id: input.remote_id,
            is_active: input.is_active.unwrap_or(true),
            is_staff: input.is_staff.unwrap_or(false),
            is_superuser: input.is_superuser.unwrap_or(false),
        }
    }
}

impl From<UpsertUserInput> for UpsertUser {
    fn from(input: UpsertUserInput) -> Self {
        Self {
            username: input.username,
            email: input.email,
            password: input.password,
            first_name: change(input.first_name, |v| v),
            last_name: change(input.last_name, |v| v),
            phone_number: change(input.phone_number, |v| v),
            division_id: change(input.division_id, |v| v.0),
            remote_id: change(input.remote_id, |v| v),
            group_ids: ids(input.group_ids),
            is_active: input.is_active,
            is_staff: change(input.is_staff, |v| v),
            is_superuser: change(input.is_superuser, |v| v),
        }
    }
}

impl From<UpdateUserInput> for UpdateUser {
    fn from(input: UpdateUserInput) -> Self {
        Self {
            username: change(input.username, |v| v),
            email: change(input.email, |v| v),
            first_name: change(input.first_name, |v| v),
            last_name: change(input.last_name, |v| v),
            phone_number: change(input.phone_number, |v| v),
            division_id: change(input.division_id, |v| v.0),
            remote_id: change(input.remote_id, |v| v),
            is_staff: change(input.is_staff, |v| v),
            is_superuser: change(input.is_superuser, |v| v),
        }
    }
}

#[derive(Default)]
pub struct AdminMutation;

#[Object]
impl AdminMutation {
    /// MANAGE_USERS creates a user (with groupIds, MANAGE_GROUP_MEMBERS and
    /// every permission of those groups); only superusers create staff or
    /// superusers.
    async fn create_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new user.")] input: CreateUserInput,
    ) -> async_graphql::Result<User> {
        let state = state(ctx)?;
        let (hasher, policy) = (&state.hasher, state.password_policy());
        let user = user_admin::create(&state.db, hasher, policy, access(ctx), input.into()).await?;
        Ok(user.into())
    }

    /// MANAGE_USERS creates a user as `createUser` does, or, when a user has
    /// the username or the email, updates the fields given as `updateUser` does
    /// (a username of one user and an email of another is CONFLICT).
    async fn upsert_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user to create or update.")] input: UpsertUserInput,
    ) -> async_graphql::Result<User> {
        let state = state(ctx)?;
        let (hasher, policy) = (&state.hasher, state.password_policy());
        let budget = state.config.client_budget;
        let user = user_admin::upsert(&state.db, budget, hasher, policy, access(ctx), input.into())
            .await?;
        Ok(user.into())
    }

    /// The user themself (names, username, email, phone), or MANAGE_USERS
    /// for a user whose permissions the viewer holds.
    async fn update_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user to update.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateUserInput,
    ) -> async_graphql::Result<User> {
        let id = parse_id(&id, "id")?;
        let state = state(ctx)?;
        let budget = state.config.client_budget;
        let user = user_admin::update(&state.db, budget, access(ctx), id, input.into()).await?;
        Ok(user.into())
    }

    /// MANAGE_USERS activates a user; DIVISION_INACTIVE while its division is
    /// inactive.
    async fn activate_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user to activate.")] id: ID,
    ) -> async_graphql::Result<User> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        Ok(user_admin::activate(&state(ctx)?.db, viewer, id)
            .await?
            .into())
    }

    /// MANAGE_USERS deactivates a user (not themself, not the last active
    /// superuser); the user's tokens stop working at once.
    async fn deactivate_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user to deactivate.")] id: ID,
    ) -> async_graphql::Result<User> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        Ok(user_admin::deactivate(&state(ctx)?.db, viewer, id)
            .await?
            .into())
    }

    /// MANAGE_USERS asks the external systems to send a user again:
    /// records `user.sync_requested`, delivered to the webhook endpoints
    /// that take it; an endpoint that answers `{"remoteId": ...}` updates
    /// the user's remoteId.
    async fn request_user_sync(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user to send again.")] id: ID,
    ) -> async_graphql::Result<User> {
        let id = parse_id(&id, "id")?;
        let state = state(ctx)?;
        let budget = state.config.client_budget;
        Ok(user_admin::request_sync(&state.db, budget, access(ctx), id)
            .await?
            .into())
    }

    /// MANAGE_USERS deletes a user (not themself, not the last active
    /// superuser).
    async fn delete_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user to delete.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        let deleted = user_admin::delete(&state(ctx)?.db, viewer, id).await?;
        Ok(ID(deleted.to_string()))
    }

    /// MANAGE_GROUP_MEMBERS adds a user to a group whose permissions the
    /// viewer holds. Idempotent.
    async fn assign_user_to_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user who joins.")] user_id: ID,
        #[graphql(desc = "The group joined.")] group_id: ID,
    ) -> async_graphql::Result<User> {
        let viewer = access(ctx);
        let user_id = parse_id(&user_id, "userId")?;
        let group_id = parse_id(&group_id, "groupId")?;
        Ok(
            user_admin::assign_to_group(&state(ctx)?.db, viewer, user_id, group_id)
                .await?
                .into(),
        )
    }

    /// MANAGE_GROUP_MEMBERS removes a user from a group whose permissions
    /// the viewer holds. Idempotent.
    async fn remove_user_from_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user who leaves.")] user_id: ID,
        #[graphql(desc = "The group left.")] group_id: ID,
    ) -> async_graphql::Result<User> {
        let viewer = access(ctx);
        let user_id = parse_id(&user_id, "userId")?;
        let group_id = parse_id(&group_id, "groupId")?;
        Ok(
            user_admin::remove_from_group(&state(ctx)?.db, viewer, user_id, group_id)
                .await?
                .into(),
        )
    }

    /// MANAGE_GROUPS creates a group.
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new group.")] input: CreateGroupInput,
    ) -> async_graphql::Result<Group> {
        let viewer = access(ctx);
        Ok(Group(
            catalog::create_group(&state(ctx)?.db, viewer, &input.name).await?,
        ))
    }

    /// MANAGE_GROUPS renames a group whose permissions the viewer holds.
    async fn update_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group to rename.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateGroupInput,
    ) -> async_graphql::Result<Group> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        let name = change(input.name, |v| v);
        Ok(Group(
            catalog::update_group(&state(ctx)?.db, viewer, id, name).await?,
        ))
    }

    /// Sets the permissions the group carries, replacing what it carried.
    /// Needs MANAGE_GROUPS and every permission the group carries and is
    /// given; refused when no active user would be left who holds and may
    /// manage a permission taken away.
    async fn set_group_permissions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group.")] group_id: ID,
        #[graphql(desc = "Every permission the group is to carry; [] for none.")] permissions: Vec<
            Permission,
        >,
    ) -> async_graphql::Result<Group> {
        let viewer = access(ctx);
        let id = parse_id(&group_id, "groupId")?;
        let permissions = permissions.into_iter().map(Into::into).collect();
        Ok(Group(
            catalog::set_group_permissions(&state(ctx)?.db, viewer, id, permissions).await?,
        ))
    }

    /// MANAGE_GROUPS removes a group whose permissions the viewer holds,
    /// with its memberships.
    async fn delete_group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group to delete.")] id: ID,
    ) -> async_graphql::Result<ID> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        Ok(ID(catalog::delete_group(&state(ctx)?.db, viewer, id)
            .await?
            .to_string()))
    }

    /// MANAGE_DIVISIONS creates a division (SUB under a MAIN parent).
    async fn create_division(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The new division.")] input: CreateDivisionInput,
    ) -> async_graphql::Result<Division> {
        let viewer = access(ctx);
        let parent = input
            .parent_id
            .map(|id| parse_id(&id, "parentId"))
            .transpose()?;
        let kind = input.division_type.into();
        let division =
            catalog::create_division(&state(ctx)?.db, viewer, &input.name, kind, parent).await?;
        Ok(Division(division.into()))
    }

    /// MANAGE_DIVISIONS renames a division or moves a SUB division to
    /// another MAIN one.
    async fn update_division(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The division to update.")] id: ID,
        #[graphql(desc = "The fields to change.")] input: UpdateDivisionInput,
    ) -> async_graphql::Result<Division> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        let parent = match input.parent_id {
            MaybeUndefined::Undefined => Change::Keep,
            MaybeUndefined::Null => Change::Clear,
            MaybeUndefined::Value(id) => Change::Set(parse_id(&id, "parentId")?),
        };
        let name = change(input.name, |v| v);
        let division = catalog::update_division(&state(ctx)?.db, viewer, id, name, parent).await?;
        Ok(Division(division.into()))
    }

    /// Idempotent.
    async fn activate_division(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The division to activate.")] id: ID,
    ) -> async_graphql::Result<Division> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        Ok(Division(
            catalog::set_division_active(&state(ctx)?.db, viewer, id, true)
                .await?
                .into(),
        ))
    }

    /// Idempotent. Its users stay as they are, but none can be activated or
    /// given this division until it is active again.
    async fn deactivate_division(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The division to deactivate.")] id: ID,
    ) -> async_graphql::Result<Division> {
        let viewer = access(ctx);
        let id = parse_id(&id, "id")?;
        Ok(Division(
            catalog::set_division_active(&state(ctx)?.db, viewer, id, false)
                .await?
                .into(),
        ))
    }
}
