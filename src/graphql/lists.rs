//! The list fields' glue: arguments into the read services' queries, and
//! their pages into connections.
use async_graphql::Context;
use entity::user;

use super::{
    connection::{
        AuditEventConnection, DivisionConnection, GroupConnection, UserConnection,
        WebhookDeliveryConnection,
    },
    guards::access,
    inputs::{
        AuditEventFilter, DivisionFilter, DivisionOrder, GroupFilter, GroupOrder, UserFilter,
        UserOrder,
    },
    loaders::{UserWants, loaders},
    types::{AuditEvent, Division, Group, User, WebhookDelivery},
};
use crate::services::{
    outbox::DeliveryStatus,
    reads::{AuditQuery, DivisionQuery, GroupQuery, UserQuery, UserScope, pagination::PageArgs},
};

/// The arguments every list field takes.
pub struct ListArgs<F, O> {
    pub filter: Option<F>,
    pub order_by: Option<Vec<O>>,
    pub page: PageArgs,
}

/// What a user list field was asked for.
pub struct UserListArgs {
    pub list: ListArgs<UserFilter, UserOrder>,
    pub search: Option<String>,
}

fn with_total(ctx: &Context<'_>) -> bool {
    ctx.look_ahead().field("totalCount").exists()
}

fn converted<T, U: From<T>>(values: Option<Vec<T>>) -> Vec<U> {
    values.into_iter().flatten().map(U::from).collect()
}

/// What the selection under `nodes` or `edges.node` asks of each user.
fn user_wants(ctx: &Context<'_>) -> UserWants {
    let look = ctx.look_ahead();
    let nodes = [look.field("nodes"), look.field("edges").field("node")];
    let any = |path: &[&str]| {
        nodes.iter().any(|node| {
            let mut at = node.field(path[0]);
            for name in &path[1..] {
                at = at.field(name);
            }
            at.exists()
        })
    };
    UserWants {
        division: any(&["division"]),
        division_parent: any(&["division", "parent"]),
        groups: any(&["groups"]),
        group_member_count: any(&["groups", "memberCount"]),
        group_permissions: any(&["groups", "permissions"]),
        // Priming loads what a guard may then refuse to show: harmless, as
        // nothing reaches the answer but through the field.
        permissions: any(&["permissions"]),
    }
}

/// Users within `scope`.
pub async fn users(
    ctx: &Context<'_>,
    scope: UserScope,
    args: UserListArgs,
) -> async_graphql::Result<UserConnection> {
    let query = UserQuery {
        scope,
        filter: args.list.filter.map(Into::into),
        search: args.search,
        order: converted(args.list.order_by),
        page: args.list.page,
        with_total: with_total(ctx),
    };
    let loaders = loaders(ctx)?;
    let listed = loaders.reader.users(access(ctx), query).await?;
    let users: Vec<&user::Model> = listed.page.rows.iter().map(|(_, u)| u).collect();
    // Priming only batches what the fields would load anyway: should it
    // fail, each field loads (and reports any error, with its code) itself.
    let _ = loaders.prime_for_users(&users, user_wants(ctx)).await;
    Ok(UserConnection::new(listed.page, User::from, listed.total))
}

/// What an audit log field was asked for.
pub struct AuditArgs {
    pub filter: Option<AuditEventFilter>,
    pub page: PageArgs,
}

/// The audit log (`user`: about that user only).
pub async fn audit_events(
    ctx: &Context<'_>,
    user: Option<i64>,
    args: AuditArgs,
) -> async_graphql::Result<AuditEventConnection> {
    let query = AuditQuery {
        user,
        filter: args.filter.map(Into::into),
        oldest_first: false,
        page: args.page,
        with_total: with_total(ctx),
    };
    let listed = loaders(ctx)?
        .reader
        .audit_events(access(ctx), query)
        .await?;
    Ok(AuditEventConnection::new(
        listed.page,
        AuditEvent,
        listed.total,
    ))
}

/// Endpoint `webhook_id`'s deliveries.
pub async fn webhook_deliveries(
    ctx: &Context<'_>,
    webhook_id: i64,
    status: Option<DeliveryStatus>,
    page: PageArgs,
) -> async_graphql::Result<WebhookDeliveryConnection> {
    let listed = loaders(ctx)?
        .reader
        .webhook_deliveries(access(ctx), webhook_id, status, page, with_total(ctx))
        .await?;
    Ok(WebhookDeliveryConnection::new(
        listed.page,
        WebhookDelivery,
        listed.total,
    ))
}

/// Groups.
pub async fn groups(
    ctx: &Context<'_>,
    args: ListArgs<GroupFilter, GroupOrder>,
) -> async_graphql::Result<GroupConnection> {
    let query = GroupQuery {
        filter: args.filter.map(Into::into),
        order: converted(args.order_by),
        page: args.page,
        with_total: with_total(ctx),
    };
    let listed = loaders(ctx)?.reader.groups(access(ctx), query).await?;
    Ok(GroupConnection::new(listed.page, Group, listed.total))
}

/// Divisions.
pub async fn divisions(
    ctx: &Context<'_>,
    args: ListArgs<DivisionFilter, DivisionOrder>,
) -> async_graphql::Result<DivisionConnection> {
    let query = DivisionQuery {
        filter: args.filter.map(Into::into),
        order: converted(args.order_by),
        page: args.page,
        with_total: with_total(ctx),
    };
    let listed = loaders(ctx)?.reader.divisions(access(ctx), query).await?;
    let division = |d| Division(std::sync::Arc::new(d));
    Ok(DivisionConnection::new(listed.page, division, listed.total))
}
