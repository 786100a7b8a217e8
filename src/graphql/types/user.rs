use std::sync::Arc;

use async_graphql::{Context, ID, Object};
use entity::user;

use super::{Division, Group};
use crate::graphql::{guards::SelfOrStaff, loaders::loaders, scalars::DateTime};

/// An account.
pub struct User(pub Arc<user::Model>);

impl From<user::Model> for User {
    fn from(model: user::Model) -> Self {
        User(Arc::new(model))
    }
}

#[Object]
impl User {
    /// The database id, as a decimal string.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique without regard to case; stored as given.
    async fn username(&self) -> &str {
        &self.0.username
    }

    /// "" when unset.
    async fn first_name(&self) -> &str {
        &self.0.first_name
    }

    /// "" when unset.
    async fn last_name(&self) -> &str {
        &self.0.last_name
    }

    /// Whether the user may log in.
    async fn is_active(&self) -> bool {
        self.0.is_active
    }

    /// When the account was created.
    async fn date_joined(&self) -> DateTime {
        self.0.date_joined.into()
    }

    /// The user's division, if any.
    async fn division(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Division>> {
        let Some(id) = self.0.division_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .division_by_id
            .load_one(id)
            .await?
            .map(Division))
    }

    /// The groups the user belongs to, by name.
    async fn groups(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Group>> {
        let groups = loaders(ctx)?.groups_by_user.load_one(self.0.id).await?;
        Ok(groups
            .map(|groups| groups.iter().cloned().map(Group::from).collect())
            .unwrap_or_default())
    }

    /// Readable by the user themself and by staff.
    #[graphql(guard = "SelfOrStaff::new(self.0.id)")]
    async fn email(&self) -> Option<&str> {
        Some(&self.0.email)
    }

    /// Readable by the user themself and by staff.
    #[graphql(guard = "SelfOrStaff::new(self.0.id)")]
    async fn phone_number(&self) -> Option<&str> {
        self.0.phone_number.as_deref()
    }

    /// The last successful login. Readable by the user themself and by staff.
    #[graphql(guard = "SelfOrStaff::new(self.0.id)")]
    async fn last_login(&self) -> Option<DateTime> {
        self.0.last_login.map(DateTime)
    }

    /// Readable by the user themself and by staff.
    #[graphql(guard = "SelfOrStaff::new(self.0.id)")]
    async fn is_staff(&self) -> Option<bool> {
        Some(self.0.is_staff)
    }

    /// Readable by the user themself and by staff.
    #[graphql(guard = "SelfOrStaff::new(self.0.id)")]
    async fn is_superuser(&self) -> Option<bool> {
        Some(self.0.is_superuser)
    }
}
