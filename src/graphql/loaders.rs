//! DataLoaders: every nested lookup of one request is batched into one query
//! per kind, so a page of N users costs the same number of statements as one.
use std::{collections::HashMap, sync::Arc};

use async_graphql::{
    Context, ErrorExtensions,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use entity::{division, group, membership, user};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
};

use crate::request_deadline::spawn_within_deadline;
use crate::{
    domain::Permissions,
    error::Error,
    services::{
        access::{self, Account},
        read_cache::ReadCaches,
    },
};

type LoadResult<V> = Result<HashMap<i64, V>, async_graphql::Error>;

fn failed(error: sea_orm::DbErr) -> async_graphql::Error {
    Error::from(error).extend()
}

/// What the loaders of one request read from: the database, and the
/// process's read caches unless the operation is a mutation (what it
/// returns must show what it changed, and the caches are only forgotten when
/// it ends).
pub struct Source {
    db: DatabaseConnection,
    caches: Option<Arc<ReadCaches>>,
}

impl Source {
    fn caches(&self) -> Option<&ReadCaches> {
        self.caches.as_deref()
    }
}

/// Divisions by id.
pub struct DivisionById(Arc<Source>);

impl Loader<i64> for DivisionById {
    type Value = Arc<division::Model>;
    type Error = async_graphql::Error;

    async fn load(&self, ids: &[i64]) -> LoadResult<Self::Value> {
        let load = |ids: Vec<i64>| divisions_by_id(&self.0.db, ids);
        let found = match self.0.caches() {
            Some(caches) => caches.divisions.get_or_load_many(ids, load).await?,
            None => load(ids.to_vec()).await?,
        };
        Ok(found
            .into_iter()
            .filter_map(|(id, division)| Some((id, division?)))
            .collect())
    }
}

async fn divisions_by_id(
    db: &DatabaseConnection,
    ids: Vec<i64>,
) -> LoadResult<Option<Arc<division::Model>>> {
    let rows = division::Entity::find()
        .filter(division::Column::Id.is_in(ids))
        .all(db)
        .await
        .map_err(failed)?;
    Ok(rows
        .into_iter()
        .map(|d| (d.id, Some(Arc::new(d))))
        .collect())
}

/// The groups of each user, by user id, ordered by name.
pub struct GroupsByUser(Arc<Source>);

impl Loader<i64> for GroupsByUser {
    type Value = Arc<Vec<group::Model>>;
    type Error = async_graphql::Error;

    async fn load(&self, user_ids: &[i64]) -> LoadResult<Self::Value> {
        let load = |user_ids: Vec<i64>| groups_of_users(&self.0.db, user_ids);
        match self.0.caches() {
            Some(caches) => caches.groups_by_user.get_or_load_many(user_ids, load).await,
            None => load(user_ids.to_vec()).await,
        }
    }
}

async fn groups_of_users(
    db: &DatabaseConnection,
    user_ids: Vec<i64>,
) -> LoadResult<Arc<Vec<group::Model>>> {
    let rows: Vec<(i64, i64, String, String)> = membership::Entity::find()
        .select_only()
        .column(membership::Column::UserId)
        .column(group::Column::Id)
        .column(group::Column::Name)
        .column(group::Column::NameFolded)
        .join(JoinType::InnerJoin, membership::Relation::Group.def())
        .filter(membership::Column::UserId.is_in(user_ids.iter().copied()))
        .into_tuple()
        .all(db)
        .await
        .map_err(failed)?;
    let mut by_user: HashMap<i64, Vec<group::Model>> =
        user_ids.iter().map(|&id| (id, Vec::new())).collect();
    for (user_id, id, name, name_folded) in rows {
        by_user.entry(user_id).or_default().push(group::Model {
            id,
            name,
            name_folded,
        });
    }
    Ok(by_user
        .into_iter()
        .map(|(user_id, mut groups)| {
            groups.sort_by(|a, b| a.name_folded.cmp(&b.name_folded).then(a.id.cmp(&b.id)));
            (user_id, Arc::new(groups))
        })
        .collect())
}

/// The number of members of each group, by group id.
pub struct MemberCountByGroup(DatabaseConnection);

impl Loader<i64> for MemberCountByGroup {
    type Value = i64;
    type Error = async_graphql::Error;

    async fn load(&self, group_ids: &[i64]) -> LoadResult<Self::Value> {
        let rows: Vec<(i64, i64)> = membership::Entity::find()
            .select_only()
            .column(membership::Column::GroupId)
            .column_as(membership::Column::UserId.count(), "members")
            .filter(membership::Column::GroupId.is_in(group_ids.iter().copied()))
            .group_by(membership::Column::GroupId)
            .into_tuple()
            .all(&self.0)
            .await
            .map_err(failed)?;
        let mut counts: HashMap<i64, i64> = group_ids.iter().map(|&id| (id, 0)).collect();
        counts.extend(rows);
        Ok(counts)
    }
}

/// What the groups of each user carry, by user id.
pub struct PermissionsByUser(DatabaseConnection);

impl Loader<i64> for PermissionsByUser {
    type Value = Permissions;
    type Error = async_graphql::Error;

    async fn load(&self, user_ids: &[i64]) -> LoadResult<Self::Value> {
        access::granted_to_users(&self.0, user_ids)
            .await
            .map_err(|e| e.extend())
    }
}

/// What each group carries, by group id.
pub struct PermissionsByGroup(DatabaseConnection);

impl Loader<i64> for PermissionsByGroup {
    type Value = Permissions;
    type Error = async_graphql::Error;

    async fn load(&self, group_ids: &[i64]) -> LoadResult<Self::Value> {
        access::carried_by_groups(&self.0, group_ids)
            .await
            .map_err(|e| e.extend())
    }
}

/// The loaders of one request, each with a cache that lives as long as the
/// request: made fresh for each. Across requests, only the process's read
/// caches (with their expiry and invalidation) keep divisions and groups.
pub struct Loaders {
    source: Arc<Source>,
    pub division_by_id: DataLoader<DivisionById, HashMapCache>,
    pub groups_by_user: DataLoader<GroupsByUser, HashMapCache>,
    pub member_count_by_group: DataLoader<MemberCountByGroup, HashMapCache>,
    pub permissions_by_user: DataLoader<PermissionsByUser, HashMapCache>,
    pub permissions_by_group: DataLoader<PermissionsByGroup, HashMapCache>,
}

impl Loaders {
    /// Loaders reading through `caches` when given (not for a mutation).
    pub fn new(db: &DatabaseConnection, caches: Option<&Arc<ReadCaches>>) -> Self {
        let source = Arc::new(Source {
            db: db.clone(),
            caches: caches.cloned(),
        });
        Self {
            division_by_id: DataLoader::with_cache(
                DivisionById(Arc::clone(&source)),
                spawn_within_deadline,
                HashMapCache::default(),
            ),
            groups_by_user: DataLoader::with_cache(
                GroupsByUser(Arc::clone(&source)),
                spawn_within_deadline,
                HashMapCache::default(),
            ),
            member_count_by_group: DataLoader::with_cache(
                MemberCountByGroup(db.clone()),
                spawn_within_deadline,
                HashMapCache::default(),
            ),
            permissions_by_user: DataLoader::with_cache(
                PermissionsByUser(db.clone()),
                spawn_within_deadline,
                HashMapCache::default(),
            ),
            permissions_by_group: DataLoader::with_cache(
                PermissionsByGroup(db.clone()),
                spawn_within_deadline,
                HashMapCache::default(),
            ),
            source,
        }
    }

    /// The user `id` with their permissions, through the users cache when
    /// this request may use it.
    pub async fn user(&self, id: i64) -> Result<Option<Arc<Account>>, Error> {
        let load = access::load_account(&self.source.db, id);
        match self.source.caches() {
            Some(caches) => caches.users.get_or_load(id, load).await,
            None => load.await,
        }
    }

    /// Loads, in one batch per level, what the selection will ask of these
    /// users (divisions and their parents, groups and their member counts),
    /// so that the statements of a page do not depend on how the resolvers
    /// happen to be scheduled.
    pub async fn prime_for_users(
        &self,
        users: &[&user::Model],
        wants: UserWants,
    ) -> async_graphql::Result<()> {
        if wants.division {
            let ids: Vec<i64> = users.iter().filter_map(|u| u.division_id).collect();
            let divisions = self.division_by_id.load_many(ids).await?;
            if wants.division_parent {
                let parents: Vec<i64> = divisions.values().filter_map(|d| d.parent_id).collect();
                self.division_by_id.load_many(parents).await?;
            }
        }
        if wants.groups {
            let groups = self
                .groups_by_user
                .load_many(users.iter().map(|u| u.id))
                .await?;
            if wants.group_member_count {
                let ids: Vec<i64> = groups
                    .values()
                    .flat_map(|g| g.iter().map(|g| g.id))
                    .collect();
                self.member_count_by_group.load_many(ids).await?;
            }
            if wants.group_permissions {
                let ids: Vec<i64> = groups
                    .values()
                    .flat_map(|g| g.iter().map(|g| g.id))
                    .collect();
                self.permissions_by_group.load_many(ids).await?;
            }
        }
        if wants.permissions {
            self.permissions_by_user
                .load_many(users.iter().map(|u| u.id))
                .await?;
        }
        Ok(())
    }
}

/// Which nested lookups a selection of users asks for.
#[derive(Debug, Default, Clone, Copy)]
pub struct UserWants {
    pub division: bool,
    pub division_parent: bool,
    pub groups: bool,
    pub group_member_count: bool,
    pub group_permissions: bool,
    pub permissions: bool,
}

/// The request's loaders.
pub fn loaders<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Loaders> {
    ctx.data::<Loaders>()
        .map_err(|_| Error::internal(anyhow::anyhow!("no loaders in the request")).extend())
}
