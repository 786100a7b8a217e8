use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Object};
use entity::division;

use crate::{
    graphql::{
        connection::UserConnection,
        inputs::{UserFilter, UserOrder},
        lists::{self, ListArgs, UserListArgs},
        loaders::loaders,
        scalars::DateTime,
    },
    services::reads::{UserScope, pagination::PageArgs},
};

/// Whether a division is top-level or sits under a MAIN division.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "division::DivisionType")]
pub enum DivisionType {
    Main,
    Sub,
}

/// An organisational unit. Users of an inactive division cannot be activated.
#[derive(Clone)]
pub struct Division(pub Arc<division::Model>);

#[Object]
impl Division {
    /// The database id, as a decimal string.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique without regard to case.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// MAIN, or SUB under a MAIN division.
    async fn division_type(&self) -> DivisionType {
        self.0.division_type.into()
    }

    /// Users cannot be given an inactive division, nor activated in one.
    async fn is_active(&self) -> bool {
        self.0.is_active
    }

    /// The MAIN division a SUB division belongs to; null for MAIN divisions.
    async fn parent(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Division>> {
        let Some(id) = self.0.parent_id else {
            return Ok(None);
        };
        Ok(loaders(ctx)?
            .division_by_id()
            .load_one(id)
            .await?
            .map(Division))
    }

    /// When the division was created.
    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    /// The division's users, as `Query.users` lists them. Holders of
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
        let scope = UserScope::Division(self.0.id);
        lists::users(ctx, scope, UserListArgs { list, search }).await
    }
}
