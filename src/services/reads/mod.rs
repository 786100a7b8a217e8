//! The read side of roster, as services: single reads, the lists (filters,
//! keyset and offset pages, counts), and the batched lookups the GraphQL
//! layer's DataLoaders call. Every read asks the viewer's [`Access`]; the
//! process's read caches serve what they can.
mod detail;
pub mod filters;
pub mod lists;
pub mod pagination;
pub mod query;
pub mod trigrams;

use std::{collections::HashMap, sync::Arc};

use entity::{division, group, membership};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
};

pub use detail::{DetailWants, InDetail};
pub use lists::{Listed, user_keys};
pub use query::*;

use super::{
    access::{self, Access},
    parse_id,
    read_cache::ReadCaches,
};
use crate::{
    config::{Config, FilterLimits},
    domain::Permissions,
    error::{Error, Result},
};

/// What the reads of one request read from: the database, and the
/// process's read caches unless the request is a mutation (what it returns
/// must show what it changed, and the caches are only forgotten when it
/// ends); with the limits lists are held to.
pub struct Reader {
    db: DatabaseConnection,
    caches: Option<Arc<ReadCaches>>,
    max_page_size: u32,
    filter_limits: FilterLimits,
    substrings: filters::SubstringIndex,
}

impl Reader {
    /// A reader through `caches` when given (not for a mutation).
    pub fn new(db: &DatabaseConnection, caches: Option<&Arc<ReadCaches>>, config: &Config) -> Self {
        Self {
            db: db.clone(),
            caches: caches.cloned(),
            max_page_size: config.max_page_size,
            filter_limits: config.filter_limits,
            substrings: match db.get_database_backend() {
                sea_orm::DbBackend::Sqlite => filters::SubstringIndex::SqliteTrigrams,
                _ => filters::SubstringIndex::PostgresTrigrams,
            },
        }
    }

    fn caches(&self) -> Option<&ReadCaches> {
        self.caches.as_deref()
    }

    /// The group `id`, for a signed-in viewer; `NOT_FOUND` when there is none.
    pub async fn group(&self, access: &Access, id: &str) -> Result<group::Model> {
        access.user()?;
        group::Entity::find_by_id(parse_id(id, "id")?)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotFound("No group with that id.".into()))
    }

    /// The division `id`, for a signed-in viewer; `NOT_FOUND` when there is
    /// none.
    pub async fn division(&self, access: &Access, id: &str) -> Result<Arc<division::Model>> {
        access.user()?;
        division::Entity::find_by_id(parse_id(id, "id")?)
            .one(&self.db)
            .await?
            .map(Arc::new)
            .ok_or_else(|| Error::NotFound("No division with that id.".into()))
    }

    /// Divisions by id (the ones that exist), through the divisions cache.
    pub async fn divisions_by_id(&self, ids: &[i64]) -> Result<HashMap<i64, Arc<division::Model>>> {
        let load = |ids: Vec<i64>| divisions_by_id(&self.db, ids);
        let found = match self.caches() {
            Some(caches) => caches.divisions.get_or_load_many(ids, load).await?,
            None => load(ids.to_vec()).await?,
        };
        Ok(found
            .into_iter()
            .filter_map(|(id, division)| Some((id, division?)))
            .collect())
    }

    /// The divisions among `ids` that the divisions cache holds now; reads
    /// nothing.
    pub fn cached_divisions(&self, ids: &[i64]) -> Vec<(i64, Arc<division::Model>)> {
        let Some(caches) = self.caches() else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|&id| Some((id, caches.divisions.peek(&id)??)))
            .collect()
    }

    /// The groups of those `user_ids` whose groups the groups cache holds
    /// now; reads nothing.
    pub fn cached_groups_of_users(&self, user_ids: &[i64]) -> Vec<(i64, Arc<Vec<group::Model>>)> {
        let Some(caches) = self.caches() else {
            return Vec::new();
        };
        user_ids
            .iter()
            .filter_map(|&id| Some((id, caches.groups_by_user.peek(&id)?)))
            .collect()
    }

    /// The groups of each user, ordered by name, through the groups cache.
    pub async fn groups_of_users(
        &self,
        user_ids: &[i64],
    ) -> Result<HashMap<i64, Arc<Vec<group::Model>>>> {
        let load = |user_ids: Vec<i64>| groups_of_users(&self.db, user_ids);
        match self.caches() {
            Some(caches) => caches.groups_by_user.get_or_load_many(user_ids, load).await,
            None => load(user_ids.to_vec()).await,
        }
    }

    /// The number of members of each group.
    pub async fn member_counts(&self, group_ids: &[i64]) -> Result<HashMap<i64, i64>> {
        let rows: Vec<(i64, i64)> = membership::Entity::find()
            .select_only()
            .column(membership::Column::GroupId)
            .column_as(membership::Column::UserId.count(), "members")
            .filter(membership::Column::GroupId.is_in(group_ids.iter().copied()))
            .group_by(membership::Column::GroupId)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut counts: HashMap<i64, i64> = group_ids.iter().map(|&id| (id, 0)).collect();
        counts.extend(rows);
        Ok(counts)
    }

    /// What the groups of each user carry.
    pub async fn granted_to_users(&self, user_ids: &[i64]) -> Result<HashMap<i64, Permissions>> {
        access::granted_to_users(&self.db, user_ids).await
    }

    /// What each group carries.
    pub async fn carried_by_groups(&self, group_ids: &[i64]) -> Result<HashMap<i64, Permissions>> {
        access::carried_by_groups(&self.db, group_ids).await
    }
}

async fn divisions_by_id(
    db: &DatabaseConnection,
    ids: Vec<i64>,
) -> Result<HashMap<i64, Option<Arc<division::Model>>>> {
    let rows = division::Entity::find()
        .filter(division::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|d| (d.id, Some(Arc::new(d))))
        .collect())
}

async fn groups_of_users(
    db: &DatabaseConnection,
    user_ids: Vec<i64>,
) -> Result<HashMap<i64, Arc<Vec<group::Model>>>> {
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
        .await?;
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
