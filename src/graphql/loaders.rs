//! DataLoaders: every nested lookup of one request is batched into one query
//! per kind, so a page of N users costs the same number of statements as one.
//! What each batch reads is the read services' ([`Reader`]).
use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use async_graphql::{
    Context, ErrorExtensions,
    dataloader::{DataLoader, HashMapCache, Loader},
};
use entity::{division, group, user};

use crate::{
    domain::Permissions,
    error::{Error, Result},
    request_deadline::spawn_within_deadline,
    services::{
        access::{Access, Account},
        reads::{DetailWants, Reader},
    },
};

type LoadResult<V> = std::result::Result<HashMap<i64, V>, async_graphql::Error>;

fn loaded<V>(result: Result<HashMap<i64, V>>) -> LoadResult<V> {
    result.map_err(|e| e.extend())
}

/// Defines a loader by id over one `Reader` method.
macro_rules! loader {
    ($name:ident, $value:ty, $method:ident, $doc:literal) => {
        #[doc = $doc]
        pub struct $name(Arc<Reader>);

        impl Loader<i64> for $name {
            type Value = $value;
            type Error = async_graphql::Error;

            async fn load(&self, ids: &[i64]) -> LoadResult<Self::Value> {
                loaded(self.0.$method(ids).await)
            }
        }
    };
}

loader!(
    DivisionById,
    Arc<division::Model>,
    divisions_by_id,
    "Divisions by id."
);
loader!(
    GroupsByUser,
    Arc<Vec<group::Model>>,
    groups_of_users,
    "The groups of each user, by user id, ordered by name."
);
loader!(
    MemberCountByGroup,
    i64,
    member_counts,
    "The number of members of each group, by group id."
);
loader!(
    PermissionsByUser,
    Permissions,
    granted_to_users,
    "What the groups of each user carry, by user id."
);
loader!(
    PermissionsByGroup,
    Permissions,
    carried_by_groups,
    "What each group carries, by group id."
);

/// A loader made when a request first asks for it: most requests need
/// few of them, or none.
type Lazy<T> = OnceLock<DataLoader<T, HashMapCache>>;

/// The loaders of one request, each with a cache that lives as long as the
/// request: made fresh for each. Across requests, only the process's read
/// caches (with their expiry and invalidation) keep divisions and groups.
pub struct Loaders {
    pub reader: Arc<Reader>,
    division_by_id: Lazy<DivisionById>,
    groups_by_user: Lazy<GroupsByUser>,
    member_count_by_group: Lazy<MemberCountByGroup>,
    permissions_by_user: Lazy<PermissionsByUser>,
    permissions_by_group: Lazy<PermissionsByGroup>,
}

/// The loader in `cell`, made over `reader` by `make` the first time.
fn lazily<'a, T: Loader<i64>>(
    cell: &'a Lazy<T>,
    reader: &Arc<Reader>,
    make: fn(Arc<Reader>) -> T,
) -> &'a DataLoader<T, HashMapCache> {
    cell.get_or_init(|| {
        DataLoader::with_cache(
            make(Arc::clone(reader)),
            spawn_within_deadline,
            HashMapCache::default(),
        )
    })
}

impl Loaders {
    pub fn new(reader: Reader) -> Self {
        Self {
            reader: Arc::new(reader),
            division_by_id: OnceLock::new(),
            groups_by_user: OnceLock::new(),
            member_count_by_group: OnceLock::new(),
            permissions_by_user: OnceLock::new(),
            permissions_by_group: OnceLock::new(),
        }
    }

    pub fn division_by_id(&self) -> &DataLoader<DivisionById, HashMapCache> {
        lazily(&self.division_by_id, &self.reader, DivisionById)
    }

    pub fn groups_by_user(&self) -> &DataLoader<GroupsByUser, HashMapCache> {
        lazily(&self.groups_by_user, &self.reader, GroupsByUser)
    }

    pub fn member_count_by_group(&self) -> &DataLoader<MemberCountByGroup, HashMapCache> {
        lazily(
            &self.member_count_by_group,
            &self.reader,
            MemberCountByGroup,
        )
    }

    pub fn permissions_by_user(&self) -> &DataLoader<PermissionsByUser, HashMapCache> {
        lazily(&self.permissions_by_user, &self.reader, PermissionsByUser)
    }

    pub fn permissions_by_group(&self) -> &DataLoader<PermissionsByGroup, HashMapCache> {
        lazily(&self.permissions_by_group, &self.reader, PermissionsByGroup)
    }

    /// The user `id` for `user(id:)`: with their division and groups in
    /// the same statement when `wants` asks for them and the user is not
    /// cached, given to this request's loaders, so that the fields under
    /// the user read nothing more.
    pub async fn user_in_detail(
        &self,
        access: &Access,
        id: &str,
        wants: DetailWants,
    ) -> Result<Arc<Account>> {
        let found = self.reader.user_in_detail(access, id, wants).await?;
        let user = &found.account.user;
        match (found.division, user.division_id) {
            (Some(Some(division)), Some(division_id)) => {
                self.division_by_id().feed_one(division_id, division).await;
            }
            (None, Some(division_id)) if wants.division => {
                self.feed_cached_divisions(&[division_id]).await;
            }
            _ => {}
        }
        match found.groups {
            Some(groups) => self.groups_by_user().feed_one(user.id, groups).await,
            None if wants.groups => self.feed_cached_groups(&[user.id]).await,
            None => {}
        }
        Ok(found.account)
    }

    /// Gives the division loader what the process cache holds of `ids`
    /// now. A loader asked for what it was given answers at once; for
    /// anything else it spawns a batch that waits a millisecond for
    /// company, a task and a timer that cost a request served from the
    /// caches as much as the rest of its work.
    async fn feed_cached_divisions(&self, ids: &[i64]) {
        let cached = self.reader.cached_divisions(ids);
        if !cached.is_empty() {
            self.division_by_id().feed_many(cached).await;
        }
    }

    /// [`Loaders::feed_cached_divisions`], for the groups of users.
    async fn feed_cached_groups(&self, user_ids: &[i64]) {
        let cached = self.reader.cached_groups_of_users(user_ids);
        if !cached.is_empty() {
            self.groups_by_user().feed_many(cached).await;
        }
    }

    /// Loads, in one batch per level, what the selection will ask of these
    /// users (divisions and their parents, groups, their member counts and
    /// permissions, the users' permissions), so that the statements of a
    /// page do not depend on how the resolvers happen to be scheduled.
    pub async fn prime_for_users(
        &self,
        users: &[&user::Model],
        wants: UserWants,
    ) -> async_graphql::Result<()> {
        // The three chains are independent: issued together, a page waits
        // for the longest, not for their sum.
        let divisions = async {
            if wants.division {
                let ids: Vec<i64> = users.iter().filter_map(|u| u.division_id).collect();
                self.feed_cached_divisions(&ids).await;
                let divisions = self.division_by_id().load_many(ids).await?;
                if wants.division_parent {
                    let parents: Vec<i64> =
                        divisions.values().filter_map(|d| d.parent_id).collect();
                    self.feed_cached_divisions(&parents).await;
                    self.division_by_id().load_many(parents).await?;
                }
            }
            async_graphql::Result::Ok(())
        };
        let groups = async {
            if wants.groups {
                let user_ids: Vec<i64> = users.iter().map(|u| u.id).collect();
                self.feed_cached_groups(&user_ids).await;
                let groups = self.groups_by_user().load_many(user_ids).await?;
                let ids = || -> Vec<i64> {
                    groups
                        .values()
                        .flat_map(|g| g.iter().map(|g| g.id))
                        .collect()
                };
                let counts = async {
                    if wants.group_member_count {
                        self.member_count_by_group().load_many(ids()).await?;
                    }
                    async_graphql::Result::Ok(())
                };
                let carried = async {
                    if wants.group_permissions {
                        self.permissions_by_group().load_many(ids()).await?;
                    }
                    async_graphql::Result::Ok(())
                };
                let (counts, carried): (async_graphql::Result<()>, async_graphql::Result<()>) =
                    futures_util::future::join(counts, carried).await;
                counts.and(carried)?;
            }
            async_graphql::Result::Ok(())
        };
        let permissions = async {
            if wants.permissions {
                self.permissions_by_user()
                    .load_many(users.iter().map(|u| u.id))
                    .await?;
            }
            async_graphql::Result::Ok(())
        };
        let (divisions, groups, permissions) =
            futures_util::future::join3(divisions, groups, permissions).await;
        divisions.and(groups).and(permissions)
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
