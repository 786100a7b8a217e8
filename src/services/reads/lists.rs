//! The lists of the read API, for users, groups and divisions: who may ask
//! what, then filter, search, ordering, page and count.
use entity::{division, event, group, membership, user, webhook_delivery};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    Select, TransactionTrait,
    sea_query::{Expr, ExprTrait, IntoIden},
};

use super::{
    Reader,
    filters::{self, SubstringIndex},
    pagination::{self, KeyKind, KeyValue, Page, PageArgs, SortKey},
    query::{
        AuditQuery, DivisionOrderField, DivisionQuery, GroupOrderField, GroupQuery, Order,
        UserOrderField, UserQuery, UserScope,
    },
    trigrams::{self, TrigramPlan},
};
use crate::{
    domain::Permission,
    error::Result,
    services::{
        access::Access,
        events,
        outbox::DeliveryStatus,
        read_cache,
        webhooks::{self, DeliveryView},
    },
};

/// One page of a list, with the count of every match when it was asked for.
pub struct Listed<M> {
    pub page: Page<M>,
    pub total: Option<i64>,
}

fn key<F>(name: &'static str, column: impl IntoIden, kind: KeyKind, order: Order<F>) -> SortKey {
    SortKey {
        name,
        column: column.into_iden(),
        kind,
        nullable: false,
        descending: order.descending,
    }
}

/// The keys of an ordering, ending with the id in the direction of the last
/// key given (ascending when none is given).
fn with_id_last(mut keys: Vec<SortKey>, id: impl IntoIden) -> Vec<SortKey> {
    let descending = keys.last().is_some_and(|last| last.descending);
    keys.push(SortKey {
        name: "ID",
        column: id.into_iden(),
        kind: KeyKind::Int,
        nullable: false,
        descending,
    });
    keys
}

/// The sort keys of a user ordering.
pub fn user_keys(order: &[Order<UserOrderField>]) -> Vec<SortKey> {
    use user::Column as C;
    let keys = order
        .iter()
        .map(|&o| match o.field {
            UserOrderField::Id => key("ID", C::Id, KeyKind::Int, o),
            UserOrderField::Username => key("USERNAME", C::UsernameFolded, KeyKind::Text, o),
            UserOrderField::FirstName => key("FIRST_NAME", C::FirstNameFolded, KeyKind::Text, o),
            UserOrderField::LastName => key("LAST_NAME", C::LastNameFolded, KeyKind::Text, o),
            UserOrderField::DateJoined => key("DATE_JOINED", C::DateJoined, KeyKind::Time, o),
            UserOrderField::Email => key("EMAIL", C::EmailFolded, KeyKind::Text, o),
            UserOrderField::LastLogin => SortKey {
                nullable: true,
                ..key("LAST_LOGIN", C::LastLogin, KeyKind::Time, o)
            },
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

fn group_keys(order: &[Order<GroupOrderField>]) -> Vec<SortKey> {
    use group::Column as C;
    let keys = order
        .iter()
        .map(|&o| match o.field {
            GroupOrderField::Id => key("ID", C::Id, KeyKind::Int, o),
            GroupOrderField::Name => key("NAME", C::NameFolded, KeyKind::Text, o),
        })
        .collect();
    with_id_last(keys, C::Id)
}

fn division_keys(order: &[Order<DivisionOrderField>]) -> Vec<SortKey> {
    use division::Column as C;
    let keys = order
        .iter()
        .map(|&o| match o.field {
            DivisionOrderField::Id => key("ID", C::Id, KeyKind::Int, o),
            DivisionOrderField::Name => key("NAME", C::NameFolded, KeyKind::Text, o),
            DivisionOrderField::CreatedAt => key("CREATED_AT", C::CreatedAt, KeyKind::Time, o),
        })
        .collect();
    with_id_last(keys, C::Id)
}

/// The users a scope starts from.
fn scope_condition(scope: UserScope) -> Condition {
    match scope {
        UserScope::Everyone => Condition::all(),
        UserScope::Division(id) => Condition::all().add(Expr::col(user::Column::DivisionId).eq(id)),
        UserScope::Group(id) => {
            let members = membership::Entity::find()
                .select_only()
                .column(membership::Column::UserId)
                .filter(membership::Column::GroupId.eq(id))
                .into_query();
            Condition::all().add(Expr::col(user::Column::Id).in_subquery(members))
        }
    }
}

impl Reader {
    /// Users, for a signed-in viewer. A group's or a division's users, and
    /// filters and orderings on guarded fields, need `VIEW_USER_DETAILS`;
    /// without it, the search leaves email out.
    pub async fn users(&self, access: &Access, query: UserQuery) -> Result<Listed<user::Model>> {
        access.user()?;
        if query.scope != UserScope::Everyone {
            access.require(Permission::ViewUserDetails)?;
        }
        let guarded_order = query
            .order
            .iter()
            .any(|o| matches!(o.field, UserOrderField::Email | UserOrderField::LastLogin));
        let guarded_filter = query
            .filter
            .as_ref()
            .is_some_and(filters::uses_guarded_fields);
        if guarded_order || guarded_filter {
            access.may_filter_on_details()?;
        }
        let details = access.holds(Permission::ViewUserDetails);
        let compile = |plan: &TrigramPlan| -> Result<Condition> {
            let mut condition = scope_condition(query.scope);
            let (limits, index) = (self.filter_limits, self.substrings);
            if let Some(filter) = &query.filter {
                condition = condition.add(filters::user_condition(filter, limits, index, plan)?);
            }
            if let Some(term) = &query.search {
                let search = filters::user_search(term, details, limits, index, plan)?;
                condition = condition.add(search);
            }
            Ok(condition)
        };
        // Checked before anything is read: a filter past its limits, or
        // holding a NUL, reads nothing.
        let mut condition = compile(&TrigramPlan::new())?;
        let patterns = trigrams::patterns(query.filter.as_ref(), query.search.as_deref());
        if self.substrings == SubstringIndex::SqliteTrigrams && !patterns.is_empty() {
            condition = compile(&trigrams::plan(&self.db, &patterns).await?)?;
        }
        let select = user::Entity::find().filter(condition);
        let keys = user_keys(&query.order);
        let key_values = |u: &user::Model| user_key_values(&keys, u);
        let (page, total) = (&query.page, query.with_total);
        if self.substrings == SubstringIndex::PostgresTrigrams && !patterns.is_empty() {
            // Each statement planned for the patterns it holds: a prepared
            // statement's generic plan, which PostgreSQL picks after five
            // runs, knows no pattern. It scanned the users in id order for
            // a rare one (25-45 ms at 100,000 users, against 1 ms through
            // the trigram index), and could read the whole GIN index for a
            // pattern of 1 or 2 characters. Costs three round trips (begin,
            // set, commit); only lists with a substring lookup pay them.
            let txn = self.db.begin().await?;
            txn.execute_unprepared("SET LOCAL plan_cache_mode = force_custom_plan")
                .await?;
            let listed = self
                .page_of(&txn, select, &keys, page, total, key_values)
                .await?;
            txn.commit().await?;
            return Ok(listed);
        }
        self.page_of(&self.db, select, &keys, page, total, key_values)
            .await
    }

    /// Groups, for a signed-in viewer.
    pub async fn groups(&self, access: &Access, query: GroupQuery) -> Result<Listed<group::Model>> {
        access.user()?;
        let condition = match &query.filter {
            Some(filter) => filters::group_condition(filter, self.filter_limits, self.substrings)?,
            None => Condition::all(),
        };
        let keys = group_keys(&query.order);
        let key_values = |g: &group::Model| {
            let value = |k: &SortKey| match k.name {
                "NAME" => KeyValue::Text(g.name_folded.clone()),
                _ => KeyValue::Int(g.id),
            };
            keys.iter().map(value).collect()
        };
        let select = group::Entity::find().filter(condition);
        self.page_of(
            &self.db,
            select,
            &keys,
            &query.page,
            query.with_total,
            key_values,
        )
        .await
    }

    /// Divisions, for a signed-in viewer.
    pub async fn divisions(
        &self,
        access: &Access,
        query: DivisionQuery,
    ) -> Result<Listed<division::Model>> {
        access.user()?;
        let condition = match &query.filter {
            Some(filter) => {
                filters::division_condition(filter, self.filter_limits, self.substrings)?
            }
            None => Condition::all(),
        };
        let keys = division_keys(&query.order);
        let key_values = |d: &division::Model| {
            let value = |k: &SortKey| match k.name {
                "NAME" => KeyValue::Text(d.name_folded.clone()),
                "CREATED_AT" => KeyValue::Time(d.created_at),
                _ => KeyValue::Int(d.id),
            };
            keys.iter().map(value).collect()
        };
        let select = division::Entity::find().filter(condition);
        self.page_of(
            &self.db,
            select,
            &keys,
            &query.page,
            query.with_total,
            key_values,
        )
        .await
    }

    /// The audit log, for holders of `VIEW_AUDIT_LOG`: newest first (by
    /// id) unless asked otherwise.
    pub async fn audit_events(
        &self,
        access: &Access,
        query: AuditQuery,
    ) -> Result<Listed<event::Model>> {
        access.require(Permission::ViewAuditLog)?;
        let mut condition = Condition::all();
        if let Some(user) = query.user {
            condition = condition.add(Expr::col(event::Column::TargetUserId).eq(user));
        }
        if let Some(filter) = &query.filter {
            condition = condition.add(filters::audit_condition(filter, self.filter_limits)?);
        }
        let keys = vec![SortKey {
            name: "ID",
            column: event::Column::Id.into_iden(),
            kind: KeyKind::Int,
            nullable: false,
            descending: !query.oldest_first,
        }];
        let select = event::Entity::find().filter(condition);
        let mut listed = self
            .page_of(
                &self.db,
                select,
                &keys,
                &query.page,
                query.with_total,
                |e| vec![KeyValue::Int(e.id)],
            )
            .await?;
        // The payloads hold users as staff see them.
        if !access.holds(Permission::ViewUserDetails) {
            for (_, event) in &mut listed.page.rows {
                let mut payload = serde_json::from_str(&event.payload).unwrap_or_default();
                events::redact(&mut payload);
                event.payload = payload.to_string();
            }
        }
        Ok(listed)
    }

    /// Endpoint `webhook_id`'s deliveries (with `status` only, when given),
    /// newest first, each with its event and attempts. Superusers only.
    pub async fn webhook_deliveries(
        &self,
        access: &Access,
        webhook_id: i64,
        status: Option<DeliveryStatus>,
        page: PageArgs,
        with_total: bool,
    ) -> Result<Listed<DeliveryView>> {
        access.may_manage_webhooks()?;
        let mut select = webhook_delivery::Entity::find()
            .filter(webhook_delivery::Column::WebhookId.eq(webhook_id));
        if let Some(status) = status {
            select = select.filter(webhook_delivery::Column::Status.eq(status.as_str()));
        }
        let keys = vec![SortKey {
            name: "ID",
            column: webhook_delivery::Column::Id.into_iden(),
            kind: KeyKind::Int,
            nullable: false,
            descending: true,
        }];
        // Deliveries change under a worker's hands: never counted from a cache.
        let total = match with_total {
            true => Some(pagination::count(&self.db, select.clone()).await?),
            false => None,
        };
        let page =
            pagination::fetch_page(&self.db, select, &keys, &page, self.max_page_size, |d| {
                vec![KeyValue::Int(d.id)]
            })
            .await?;
        let (cursors, deliveries): (Vec<String>, Vec<_>) = page.rows.into_iter().unzip();
        let viewed = webhooks::with_details(&self.db, deliveries).await?;
        Ok(Listed {
            page: Page {
                rows: cursors.into_iter().zip(viewed).collect(),
                has_next_page: page.has_next_page,
                has_previous_page: page.has_previous_page,
                known_total: page.known_total,
            },
            total,
        })
    }

    /// The count (when asked for) and one page of `select`, read on `db`
    /// (the pool, or a transaction): the part every list shares once its
    /// filter and ordering are known.
    async fn page_of<E>(
        &self,
        db: &impl ConnectionTrait,
        select: Select<E>,
        keys: &[SortKey],
        page: &PageArgs,
        with_total: bool,
        key_values: impl Fn(&E::Model) -> Vec<KeyValue>,
    ) -> Result<Listed<E::Model>>
    where
        E: EntityTrait,
        E::Model: Sync,
    {
        let counted = select.clone();
        let page =
            pagination::fetch_page(db, select, keys, page, self.max_page_size, key_values).await?;
        // A search that finds fewer matches than a page holds (the usual
        // search for a name) is counted by its page: at a million users the
        // count is a second pass over the matches, 20-40 ms on PostgreSQL.
        let total = match (with_total, page.known_total) {
            (false, _) => None,
            (true, Some(known)) => Some(known),
            (true, None) => Some(self.count(db, &counted).await?),
        };
        Ok(Listed { page, total })
    }

    /// The number of rows `select` finds, from the cache when this process
    /// counted the same thing a moment ago and nothing has changed since
    /// (see `services::read_cache`): at a million users a count is a table
    /// scan.
    async fn count<E>(&self, db: &impl ConnectionTrait, select: &Select<E>) -> Result<i64>
    where
        E: EntityTrait,
        E::Model: Sync,
    {
        let count = pagination::count(db, select.clone());
        match &self.caches {
            Some(caches) => {
                let statement = select.build(self.db.get_database_backend());
                let key = read_cache::count_key(&statement.sql, &statement.values);
                caches.counts.get_or_load(key, count).await
            }
            None => count.await,
        }
    }
}
