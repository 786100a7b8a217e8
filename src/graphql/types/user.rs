use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use entity::user;

use super::{Division, Group, Permission, listed_permissions};
use crate::{
    domain::Permissions,
    graphql::{
        connection::AuditEventConnection,
        guards::UserDetails,
        inputs::AuditEventFilter,
        lists::{self, AuditArgs},
        loaders::loaders,
        scalars::DateTime,
    },
    services::{
        access::{self, Account},
        reads::pagination::PageArgs,
    },
};

/// An account.
#[derive(Clone)]
pub struct User {
    pub model: Arc<user::Model>,
    /// True where the contract lets the returned user count as the viewer
    /// (the results of `register`, `login` and `refreshToken`).
    pub as_viewer: bool,
    /// What their groups carry, when it was loaded with the user.
    granted: Option<Permissions>,
}

impl User {
    pub fn new(model: Arc<user::Model>) -> Self {
        Self {
            model,
            as_viewer: false,
            granted: None,
        }
    }

    /// A user whose guarded fields are readable, as the viewer's own are.
    pub fn as_viewer(model: user::Model) -> Self {
        Self {
            as_viewer: true,
            ..Self::new(Arc::new(model))
        }
    }

    /// A user loaded with their permissions (the viewer, `user(id:)`).
    pub fn of_account(account: &Account) -> Self {
        Self {
            granted: Some(account.granted),
            ..Self::new(account.user.clone())
        }
    }
}

impl From<user::Model> for User {
    fn from(model: user::Model) -> Self {
        Self::new(Arc::new(model))
    }
}

#[Object]
impl User {
    /// The database id, as a decimal string.
    async fn id(&self) -> ID {
        ID(self.model.id.to_string())
    }

    /// Unique without regard to case; stored as given.
    async fn username(&self) -> &str {
        &self.model.username
    }

    /// "" when unset.
    async fn first_name(&self) -> &str {
        &self.model.first_name
    }

    /// "" when unset.
    async fn last_name(&self) -> &str {
        &self.model.last_name
    }

    /// Whether the user may log in.
    async fn is_active(&self) -> bool {
        self.model.is_active
    }

    /// When the account was created.
    async fn date_joined(&self) -> DateTime {
        self.model.date_joined.into()
    }

    /// The user's division, if any.
    async fn division(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Division>> {
        let Some(id) = self.model.division_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .division_by_id()
            .load_one(id)
            .await?
            .map(Division))
    }

    /// The groups the user belongs to, by name.
    async fn groups(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Group>> {
        let groups = loaders(ctx)?
            .groups_by_user()
            .load_one(self.model.id)
            .await?;
        Ok(groups
            .map(|groups| groups.iter().cloned().map(Group::from).collect())
            .unwrap_or_default())
    }

    /// Readable by the user themself and by holders of VIEW_USER_DETAILS.
    #[graphql(guard = "UserDetails::of(self)")]
    async fn email(&self) -> Option<&str> {
        Some(&self.model.email)
    }

    /// Readable by the user themself and by holders of VIEW_USER_DETAILS.
    #[graphql(guard = "UserDetails::of(self)")]
    async fn phone_number(&self) -> Option<&str> {
        self.model.phone_number.as_deref()
    }

    /// The last successful login. Readable by the user themself and by
    /// holders of VIEW_USER_DETAILS.
    #[graphql(guard = "UserDetails::of(self)")]
    async fn last_login(&self) -> Option<DateTime> {
        self.model.last_login.map(DateTime)
    }

    /// The id an external system (the commerce platform users are synced
    /// to) gave the user. Readable by the user themself and by holders of
    /// VIEW_USER_DETAILS.
    #[graphql(guard = "UserDetails::of(self)")]
    async fn remote_id(&self) -> Option<&str> {
        self.model.remote_id.as_deref()
    }

    /// Readable by the user themself and by holders of VIEW_USER_DETAILS.
    #[graphql(guard = "UserDetails::of(self)")]
    async fn is_staff(&self) -> Option<bool> {
        Some(self.model.is_staff)
    }

    /// Readable by the user themself and by holders of VIEW_USER_DETAILS.
    #[graphql(guard = "UserDetails::of(self)")]
    async fn is_superuser(&self) -> Option<bool> {
        Some(self.model.is_superuser)
    }

    /// The audit log's events about the user, newest first. Holders of
    /// VIEW_AUDIT_LOG only.
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What every event returned meets.")] filter: Option<AuditEventFilter>,
        #[graphql(desc = "Forward page: this many events.")] first: Option<i32>,
        #[graphql(desc = "Forward page: after this cursor.")] after: Option<String>,
        #[graphql(desc = "Backward page: this many events.")] last: Option<i32>,
        #[graphql(desc = "Backward page: before this cursor.")] before: Option<String>,
    ) -> async_graphql::Result<AuditEventConnection> {
        let page = PageArgs::new(first, after, last, before, None, None);
        let args = AuditArgs { filter, page };
        lists::audit_events(ctx, Some(self.model.id), args).await
    }

    /// What the user may do: every permission for staff, none while
    /// inactive, else what their groups carry. Readable by the user
    /// themself and by holders of VIEW_USER_DETAILS.
    #[graphql(guard = "UserDetails::of(self)")]
    async fn permissions(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Option<Vec<Permission>>> {
        let granted = match self.granted {
            Some(granted) => granted,
            None => loaders(ctx)?
                .permissions_by_user()
                .load_one(self.model.id)
                .await?
                .unwrap_or_default(),
        };
        Ok(Some(listed_permissions(access::effective(
            &self.model,
            granted,
        ))))
    }
}
