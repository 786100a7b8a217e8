use async_graphql::{Context, ID, Object};

use super::{
    connection::{AuditEventConnection, DivisionConnection, GroupConnection, UserConnection},
    guards::access,
    inputs::{
        AuditEventFilter, DivisionFilter, DivisionOrder, GroupFilter, GroupOrder, UserFilter,
        UserOrder,
    },
    lists::{self, AuditArgs, ListArgs, UserListArgs},
    loaders::loaders,
    state,
    types::{Division, Group, User, Webhook},
};
use crate::services::{
    reads::{DetailWants, UserScope, pagination::PageArgs},
    webhooks,
};

/// The read side of roster.
pub struct Query;

#[Object]
impl Query {
    /// The user the request's access token speaks for; null when anonymous.
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        access(ctx)
            .account()
            .map(|account| User::of_account(account))
    }

    /// One user; null and NOT_FOUND when there is none with that id.
    async fn user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The user.")] id: ID,
    ) -> async_graphql::Result<Option<User>> {
        let look = ctx.look_ahead();
        let wants = DetailWants {
            division: look.field("division").exists(),
            groups: look.field("groups").exists(),
        };
        let account = loaders(ctx)?
            .user_in_detail(access(ctx), id.as_str(), wants)
            .await?;
        Ok(Some(User::of_account(&account)))
    }

    /// Users, filtered, searched, ordered and paged. Default page: the first 20.
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
        lists::users(ctx, UserScope::Everyone, UserListArgs { list, search }).await
    }

    /// One group; null and NOT_FOUND when there is none with that id.
    async fn group(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The group.")] id: ID,
    ) -> async_graphql::Result<Option<Group>> {
        let group = loaders(ctx)?.reader.group(access(ctx), id.as_str()).await?;
        Ok(Some(Group(group)))
    }

    /// Groups, filtered, ordered and paged.
    #[allow(clippy::too_many_arguments)]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What every row returned meets.")] filter: Option<GroupFilter>,
        #[graphql(desc = "Ordering; ties by id.")] order_by: Option<Vec<GroupOrder>>,
        #[graphql(desc = "Forward page: this many rows.")] first: Option<i32>,
        #[graphql(desc = "Forward page: after this cursor.")] after: Option<String>,
        #[graphql(desc = "Backward page: this many rows.")] last: Option<i32>,
        #[graphql(desc = "Backward page: before this cursor.")] before: Option<String>,
        #[graphql(desc = "Offset page: rows to skip.")] offset: Option<i32>,
        #[graphql(desc = "Offset page: this many rows.")] limit: Option<i32>,
    ) -> async_graphql::Result<GroupConnection> {
        let page = PageArgs::new(first, after, last, before, offset, limit);
        let list = ListArgs {
            filter,
            order_by,
            page,
        };
        lists::groups(ctx, list).await
    }

    /// One division; null and NOT_FOUND when there is none with that id.
    async fn division(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The division.")] id: ID,
    ) -> async_graphql::Result<Option<Division>> {
        let division = loaders(ctx)?
            .reader
            .division(access(ctx), id.as_str())
            .await?;
        Ok(Some(Division(division)))
    }

    /// Every webhook endpoint, oldest first. Superusers only.
    async fn webhooks(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Webhook>> {
        let listed = webhooks::list(&state(ctx)?.db, access(ctx)).await?;
        Ok(listed.into_iter().map(Webhook).collect())
    }

    /// One webhook endpoint; null and NOT_FOUND when there is none with
    /// that id. Superusers only.
    async fn webhook(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The endpoint.")] id: ID,
    ) -> async_graphql::Result<Option<Webhook>> {
        let found = webhooks::get(&state(ctx)?.db, access(ctx), id.as_str()).await?;
        Ok(Some(Webhook(found)))
    }

    /// The audit log, newest first. Holders of VIEW_AUDIT_LOG only.
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
        lists::audit_events(ctx, None, AuditArgs { filter, page }).await
    }

    /// Divisions, filtered, ordered and paged.
    #[allow(clippy::too_many_arguments)]
    async fn divisions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What every row returned meets.")] filter: Option<DivisionFilter>,
        #[graphql(desc = "Ordering; ties by id.")] order_by: Option<Vec<DivisionOrder>>,
        #[graphql(desc = "Forward page: this many rows.")] first: Option<i32>,
        #[graphql(desc = "Forward page: after this cursor.")] after: Option<String>,
        #[graphql(desc = "Backward page: this many rows.")] last: Option<i32>,
        #[graphql(desc = "Backward page: before this cursor.")] before: Option<String>,
        #[graphql(desc = "Offset page: rows to skip.")] offset: Option<i32>,
        #[graphql(desc = "Offset page: this many rows.")] limit: Option<i32>,
    ) -> async_graphql::Result<DivisionConnection> {
        let page = PageArgs::new(first, after, last, before, offset, limit);
        let list = ListArgs {
            filter,
            order_by,
            page,
        };
        lists::divisions(ctx, list).await
    }
}
