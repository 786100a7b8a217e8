//! The lists of the read API: access rules, filter, search, ordering and
//! page, for users, groups and divisions.
use async_graphql::Context;
use entity::{division, group, user};
use sea_orm::{Condition, EntityTrait, QueryFilter, QueryTrait, Select, sea_query::IntoIden};

use super::{
    app_state,
    connection::{DivisionConnection, GroupConnection, UserConnection},
    filters,
    guards::access,
    inputs::{
        DivisionFilter, DivisionOrder, DivisionOrderField, GroupFilter, GroupOrder,
        GroupOrderField, SortDirection, UserFilter, UserOrder, UserOrderField,
    },
    loaders::{UserWants, loaders},
    pagination::{self, KeyKind, KeyValue, Page, PageArgs, SortKey},
    types::{Division, Group, User},
};
use crate::{domain::Permission, error::Error, services::read_cache, state::AppState};

/// What a user list was asked for.
#[derive(Default)]
pub struct UserListArgs {
    pub filter: Option<UserFilter>,
    pub search: Option<String>,
    pub order_by: Option<Vec<UserOrder>>,
    pub page: PageArgs,
}

fn key(
    name: &'static str,
    column: impl IntoIden,
    kind: KeyKind,
    nullable: bool,
    direction: Option<SortDirection>,
) -> SortKey {
    SortKey {
        name,
        column: column.into_iden(),
        kind,
        nullable,
        descending: direction == Some(SortDirection::Desc),
    }
}

/// The keys of an ordering, ending with the id in the direction of the last
/// key given (ascending when none is given).
fn with_id_last(mut keys: Vec<SortKey>, id: impl IntoIden) -> Vec<SortKey> {
    let direction = match keys.last() {
        Some(last) if last.descending => SortDirection::Desc,
        _ => SortDirection::Asc,
    };
    let direction = Some(direction);
    keys.push(key("ID", id, KeyKind::Int, false, direction));
    keys
}

pub(crate) fn user_keys(order: &[UserOrder]) -> Vec<SortKey> {
    use user::Column as C;
    let keys = order
        .iter()
        .map(|o| match o.field {
            UserOrderField::Id => key("ID", C::Id, KeyKind::Int, false, o.direction),
            UserOrderField::Username => key(
                "USERNAME",
                C::UsernameFolded,
                KeyKind::Text,
                false,
                o.direction,
            ),
            UserOrderField::FirstName => key(
                "FIRST_NAME",
                C::FirstNameFolded,
                KeyKind::Text,
                false,
                o.direction,
            ),
            UserOrderField::LastName => key(
                "LAST_NAME",
                C::LastNameFolded,
                KeyKind::Text,
                false,
                o.direction,
            ),
            UserOrderField::DateJoined => key(
                "DATE_JOINED",
                C::DateJoined,
                KeyKind::Time,
                false,
                o.direction,
            ),
            UserOrderField::Email => {
                key("EMAIL", C::EmailFolded, KeyKind::Text, false, o.direction)
            }
            UserOrderField::LastLogin => {
                key("LAST_LOGIN", C::LastLogin, KeyKind::Time, true, o.direction)
            }
        })
        .collect();
    with_id_last(keys, C::Id)
}

fn user_key_values(keys: &[SortKey], u: &user::Model) -> Vec<KeyValue> {
    keys.iter()
        .map(|k| match k.name {
            "USERNAME" => KeyValue::Text(u.username_folded.clone()),
            "FIRST_NAME" => KeyValue::Text(u.first_name_folded.clone()),
            "LAST_NAME" => KeyValue::Text(u.last_name_folded.clone()),
            "DATE_JOINED" => KeyValue::Time(u.date_joined),
            "EMAIL" => KeyValue::Text(u.email_folded.clone()),
            "LAST_LOGIN" => u.last_login.map_or(KeyValue::Null, KeyValue::Time),
            _ => KeyValue::Int(u.id),
        })
        .collect()
}

/// The count (when selected) and one page of `select`: the part every list
/// shares once its filter and ordering are known.
async fn page_of<E>(
    ctx: &Context<'_>,
    select: Select<E>,
    keys: &[SortKey],
    page: &PageArgs,
    key_values: impl Fn(&E::Model) -> Vec<KeyValue>,
) -> Result<(Page<E::Model>, Option<i64>), Error>
where
    E: EntityTrait,
    E::Model: Sync,
{
    let state = app_state(ctx)?;
    let total = if ctx.look_ahead().field("totalCount").exists() {
        Some(cached_count(state, &select).await?)
    } else {
        None
    };
    let page = pagination::fetch_page(
        &state.db,
        select,
        keys,
        page,
        state.config.max_page_size,
        key_values,
    )
    .await?;
    Ok((page, total))
}

/// The number of rows `select` finds, from the cache when this process
/// counted the same thing a moment ago and nothing has changed since (see
/// `services::read_cache`): at a million users a count is a table scan.
async fn cached_count<E>(state: &AppState, select: &Select<E>) -> Result<i64, Error>
where
    E: EntityTrait,
    E::Model: Sync,
{
    let statement = select.build(state.db.get_database_backend());
    let key = read_cache::count_key(&statement.sql, &statement.values);
    let count = pagination::count(&state.db, select.clone());
    state.caches.counts.get_or_load(key, count).await
}

fn require_viewer(ctx: &Context<'_>) -> Result<(), Error> {
    access(ctx).user().map(|_| ())
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

/// Users within `scope` (everyone, a group's members, a division's users),
/// for an authenticated viewer; guarded filters and orders need
/// `VIEW_USER_DETAILS`, and so does the email part of the search.
pub async fn list_users(
    ctx: &Context<'_>,
    scope: Condition,
    args: UserListArgs,
) -> Result<UserConnection, Error> {
    let access = access(ctx);
    access.user()?;
    let order = args.order_by.unwrap_or_default();
    let guarded_order = order
        .iter()
        .any(|o| matches!(o.field, UserOrderField::Email | UserOrderField::LastLogin));
    if guarded_order
        || args
            .filter
            .as_ref()
            .is_some_and(filters::uses_guarded_fields)
    {
        access.may_filter_on_details()?;
    }
    let details = access.holds(Permission::ViewUserDetails);
    let limits = app_state(ctx)?.config.filter_limits;
    let mut condition = Condition::all().add(scope);
    if let Some(filter) = &args.filter {
        condition = condition.add(filters::user_condition(filter, limits)?);
    }
    if let Some(term) = &args.search {
        condition = condition.add(filters::user_search(term, details, limits)?);
    }
    let select = user::Entity::find().filter(condition);
    let keys = user_keys(&order);
    let (page, total) = page_of(ctx, select, &keys, &args.page, |u| {
        user_key_values(&keys, u)
    })
    .await?;
    let users: Vec<&user::Model> = page.rows.iter().map(|(_, u)| u).collect();
    // Priming only batches what the fields would load anyway: should it
    // fail, each field loads (and reports any error, with its code) itself.
    if let Ok(loaders) = loaders(ctx) {
        let _ = loaders.prime_for_users(&users, user_wants(ctx)).await;
    }
    Ok(UserConnection::new(page, User::from, total))
}

fn group_keys(order: &[GroupOrder]) -> Vec<SortKey> {
    let keys = order
        .iter()
        .map(|o| match o.field {
            GroupOrderField::Id => key("ID", group::Column::Id, KeyKind::Int, false, o.direction),
            GroupOrderField::Name => key(
                "NAME",
                group::Column::NameFolded,
                KeyKind::Text,
                false,
                o.direction,
            ),
        })
        .collect();
    with_id_last(keys, group::Column::Id)
}

pub async fn list_groups(
    ctx: &Context<'_>,
    filter: Option<GroupFilter>,
    order_by: Option<Vec<GroupOrder>>,
    page: PageArgs,
) -> Result<GroupConnection, Error> {
    require_viewer(ctx)?;
    let condition = match &filter {
        Some(filter) => filters::group_condition(filter, app_state(ctx)?.config.filter_limits)?,
        None => Condition::all(),
    };
    let keys = group_keys(&order_by.unwrap_or_default());
    let key_values = |g: &group::Model| {
        let value = |k: &SortKey| match k.name {
            "NAME" => KeyValue::Text(g.name_folded.clone()),
            _ => KeyValue::Int(g.id),
        };
        keys.iter().map(value).collect()
    };
    let select = group::Entity::find().filter(condition);
    let (page, total) = page_of(ctx, select, &keys, &page, key_values).await?;
    Ok(GroupConnection::new(page, Group, total))
}

fn division_keys(order: &[DivisionOrder]) -> Vec<SortKey> {
    use division::Column as C;
    let keys = order
        .iter()
        .map(|o| match o.field {
            DivisionOrderField::Id => key("ID", C::Id, KeyKind::Int, false, o.direction),
            DivisionOrderField::Name => {
                key("NAME", C::NameFolded, KeyKind::Text, false, o.direction)
            }
            DivisionOrderField::CreatedAt => key(
                "CREATED_AT",
                C::CreatedAt,
                KeyKind::Time,
                false,
                o.direction,
            ),
        })
        .collect();
    with_id_last(keys, C::Id)
}

pub async fn list_divisions(
    ctx: &Context<'_>,
    filter: Option<DivisionFilter>,
    order_by: Option<Vec<DivisionOrder>>,
    page: PageArgs,
) -> Result<DivisionConnection, Error> {
    require_viewer(ctx)?;
    let condition = match &filter {
        Some(filter) => filters::division_condition(filter, app_state(ctx)?.config.filter_limits)?,
        None => Condition::all(),
    };
    let keys = division_keys(&order_by.unwrap_or_default());
    let key_values = |d: &division::Model| {
        let value = |k: &SortKey| match k.name {
            "NAME" => KeyValue::Text(d.name_folded.clone()),
            "CREATED_AT" => KeyValue::Time(d.created_at),
            _ => KeyValue::Int(d.id),
        };
        keys.iter().map(value).collect()
    };
    let select = division::Entity::find().filter(condition);
    let (page, total) = page_of(ctx, select, &keys, &page, key_values).await?;
    Ok(DivisionConnection::new(
        page,
        |d| Division(std::sync::Arc::new(d)),
        total,
    ))
}
