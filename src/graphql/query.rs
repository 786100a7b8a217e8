use async_graphql::{Context, ErrorExtensions, ID, Object, ResultExt};
use entity::{division, group};
use sea_orm::{Condition, EntityTrait};

use super::{
    connection::{DivisionConnection, GroupConnection, UserConnection},
    guards::access,
    inputs::{DivisionFilter, DivisionOrder, GroupFilter, GroupOrder, UserFilter, UserOrder},
    listing::{self, UserListArgs},
    loaders::loaders,
    pagination::PageArgs,
    parse_id, state,
    types::{Division, Group, User},
};
use crate::error::Error;

/// The read side of roster.
pub struct Query;

fn not_found(what: &str) -> async_graphql::Error {
    Error::NotFound(format!("No {what} with that id.")).extend()
}

#[Object]
impl Query {
    /// The user the request's access token speaks for; null when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        access(ctx)
            .account()
            .map(|account| User::of_account(account))
    }

    /// One user; null and NOT_FOUND when there is none with that id.
    async fn user(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<User>> {
        access(ctx).user().extend()?;
        let id = parse_id(&id, "id").extend()?;
        let found = loaders(ctx)?.user(id).await.extend()?;
        found
            .map(|account| Some(User::of_account(&account)))
            .ok_or_else(|| not_found("user"))
    }

    /// Users, filtered, searched, ordered and paged. Default page: the first 20.
    #[allow(clippy::too_many_arguments)]
    async fn users(
        &self,
        ctx: &Context<'_>,
        filter: Option<UserFilter>,
        #[graphql(
            desc = "Case-insensitive match anywhere in username, first and last name, and for staff email."
        )]
        search: Option<String>,
        order_by: Option<Vec<UserOrder>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        offset: Option<i32>,
        limit: Option<i32>,
    ) -> async_graphql::Result<UserConnection> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
            offset,
            limit,
        };
        let args = UserListArgs {
            filter,
            search,
            order_by,
            page,
        };
        listing::list_users(ctx, Condition::all(), args)
            .await
            .extend()
    }

    /// One group; null and NOT_FOUND when there is none with that id.
    async fn group(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Group>> {
        access(ctx).user().extend()?;
        let id = parse_id(&id, "id").extend()?;
        let found = group::Entity::find_by_id(id)
            .one(&state(ctx)?.db)
            .await
            .map_err(Error::from)
            .extend()?;
        found
            .map(|g| Some(Group(g)))
            .ok_or_else(|| not_found("group"))
    }

    /// Groups, filtered, ordered and paged.
    #[allow(clippy::too_many_arguments)]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        filter: Option<GroupFilter>,
        order_by: Option<Vec<GroupOrder>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        offset: Option<i32>,
        limit: Option<i32>,
    ) -> async_graphql::Result<GroupConnection> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
            offset,
            limit,
        };
        listing::list_groups(ctx, filter, order_by, page)
            .await
            .extend()
    }

    /// One division; null and NOT_FOUND when there is none with that id.
    async fn division(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Division>> {
        access(ctx).user().extend()?;
        let id = parse_id(&id, "id").extend()?;
        let found = division::Entity::find_by_id(id)
            .one(&state(ctx)?.db)
            .await
            .map_err(Error::from)
            .extend()?;
        found
            .map(|d| Some(Division(d.into())))
            .ok_or_else(|| not_found("division"))
    }

    /// Divisions, filtered, ordered and paged.
    #[allow(clippy::too_many_arguments)]
    async fn divisions(
        &self,
        ctx: &Context<'_>,
        filter: Option<DivisionFilter>,
        order_by: Option<Vec<DivisionOrder>>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        offset: Option<i32>,
        limit: Option<i32>,
    ) -> async_graphql::Result<DivisionConnection> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
            offset,
            limit,
        };
        listing::list_divisions(ctx, filter, order_by, page)
            .await
            .extend()
    }
}
