use async_graphql::{Context, ID, Object};
use entity::group;

use super::{Permission, listed_permissions};
use crate::{
    graphql::{
        connection::UserConnection,
        inputs::{UserFilter, UserOrder},
        lists::{self, ListArgs, UserListArgs},
        loaders::loaders,
    },
    services::reads::{UserScope, pagination::PageArgs},
};

/// A named set of users, such as "Manager".
#[derive(Clone)]
pub struct Group(pub group::Model);

impl From<group::Model> for Group {
    fn from(model: group::Model) -> Self {
        Group(model)
    }
}

#[Object]
impl Group {
    /// The database id, as a decimal string.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique without regard to case.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// What the group's active members hold through it.
    async fn permissions(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Permission>> {
        let carried = loaders(ctx)?
            .permissions_by_group()
            .load_one(self.0.id)
            .await?
            .unwrap_or_default();
        Ok(listed_permissions(carried))
    }

    /// How many users belong to the group.
    async fn member_count(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        Ok(loaders(ctx)?
            .member_count_by_group()
            .load_one(self.0.id)
            .await?
            .unwrap_or(0))
    }

    /// The group's members, as `Query.users` lists them. Holders of
    /// VIEW_USER_DETAILS only.
    #[allow(clippy::too_many_arguments)]
    async fn users(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What every row returned meets.")] filter: Option<UserFilter>,
        #[graphql(
            desc = "Case-insensitive match anywhere in username, first and last name, and, with VIEW_USER_DETAILS, email."
        )]
        search: Option<String>,
        #[graphql(desc = "Ordering; ties by id.")] order_by: Option<Vec<UserOrder>>,
        #[graphql(desc = "Forward page: this many rows.")] first: Option<i32>,
        #[graphql(desc = "Forward page: after this cursor.")] after: Option<String>,
        #[graphql(desc = "Backward page: this many rows.")] last: Option<i32>,
        #[graphql(desc = "Backward page: before this cursor.")] before: Option<String>,
        #[graphql(desc = "Offset page: rows to skip.")] offset: Option<i32>,
        #[graphql(desc = "Offset page: this many rows.")] limit: Option<i32>,
    ) -> async_graphql::Result<UserConnection> {
        let page = PageArgs::new(first, after, last, before, offset, limit);
        let list = ListArgs {
            filter,
            order_by,
            page,
        };
        let scope = UserScope::Group(self.0.id);
        lists::users(ctx, scope, UserListArgs { list, search }).await
    }
}
