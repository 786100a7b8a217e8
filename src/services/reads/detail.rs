//! One user with what a detail view shows of them, in one statement: the
//! user, their permissions, their division (joined) and their groups
//! (aggregated as JSON), where three statements read them one by one.
//! Once the groups cache holds groups, the statement reads only the ids of
//! the user's groups, and the cache gives the groups and what they carry:
//! joining the groups and their permissions was a third of what
//! PostgreSQL spent on the statement.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use entity::{division, group, group_permission, user};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IdenStatic, Iterable,
    JoinType, QueryFilter, QueryResult, QuerySelect, RelationTrait, Statement,
};

use super::Reader;
use crate::{
    domain::Permissions,
    error::{Error, Result},
    services::{
        access::{Access, Account},
        parse_id,
        read_cache::CarryingGroup,
    },
};

/// What a selection of one user asks for besides the user.
#[derive(Clone, Copy, Debug, Default)]
pub struct DetailWants {
    pub division: bool,
    pub groups: bool,
}

/// A user, with their division and groups when they were read with them
/// (`None`: not read here; the caches or the loaders have them).
pub struct InDetail {
    pub account: Arc<Account>,
    /// The division, when read: `Some(None)` for a user in none.
    pub division: Option<Option<Arc<division::Model>>>,
    pub groups: Option<Arc<Vec<group::Model>>>,
}

/// What the statement read besides the account.
#[derive(Default)]
struct Details {
    division: Option<Option<Arc<division::Model>>>,
    groups: Option<Arc<Vec<group::Model>>>,
    /// The user's groups with what they carry, when the statement read them
    /// whole: for the groups cache.
    whole_groups: Vec<Arc<CarryingGroup>>,
}

/// How the statement reads the user's groups.
#[derive(Clone, Copy, Debug, PartialEq)]
enum GroupsRead {
    /// Each group with its permissions, as a row per permission.
    Whole,
    /// Their ids: the groups cache has the rest, or reads it.
    Ids,
}

impl Reader {
    /// The user `id` (as the client gave it), for a signed-in viewer, with
    /// what `wants` asks for in the same statement when the user is not
    /// cached; what it read goes into the caches of divisions and groups
    /// too, unless something was forgotten while it ran. `NOT_FOUND` when
    /// there is none.
    pub async fn user_in_detail(
        &self,
        access: &Access,
        id: &str,
        wants: DetailWants,
    ) -> Result<InDetail> {
        access.user()?;
        let id = parse_id(id, "id")?;
        let caches = self.caches();
        // Taken before the statement: a value read before a change that
        // something forgot since is not kept.
        let epochs = caches.map(|c| {
            (
                c.divisions.epoch(),
                c.groups_by_user.epoch(),
                c.groups.epoch(),
            )
        });
        // An empty groups cache is filled by reading the groups whole: a
        // user read when nothing is cached costs one statement.
        let groups_read = match caches {
            Some(caches) if !caches.groups.is_empty() => GroupsRead::Ids,
            _ => GroupsRead::Whole,
        };
        let details = Mutex::new(None);
        let load = async {
            let (account, read) = self.load_in_detail(id, wants, groups_read).await?;
            *details.lock().unwrap_or_else(PoisonError::into_inner) = Some(read);
            Ok::<_, Error>(account)
        };
        let found = match caches {
            Some(caches) => caches.users.get_or_load(id, load).await?,
            None => load.await?,
        };
        let account = found.ok_or_else(|| Error::NotFound("No user with that id.".into()))?;
        let read = details
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .unwrap_or_default();
        if let (Some(caches), Some((divisions, groups_by_user, groups))) = (caches, epochs) {
            if let (Some(Some(division)), Some(division_id)) =
                (&read.division, account.user.division_id)
            {
                caches
                    .divisions
                    .fill(division_id, Some(Arc::clone(division)), divisions);
            }
            if let Some(of_user) = &read.groups {
                caches
                    .groups_by_user
                    .fill(account.user.id, Arc::clone(of_user), groups_by_user);
            }
            for group in &read.whole_groups {
                caches
                    .groups
                    .fill(group.group.id, Some(Arc::clone(group)), groups);
            }
        }
        Ok(InDetail {
            account,
            division: read.division,
            groups: read.groups,
        })
    }

    /// The user `id` with their permissions, and what `wants` asks for.
    async fn load_in_detail(
        &self,
        id: i64,
        wants: DetailWants,
        groups_read: GroupsRead,
    ) -> Result<(Option<Arc<Account>>, Details)> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(statement(backend, id, wants, groups_read))
            .await?;
        let Some(row) = row else {
            return Ok((None, Details::default()));
        };
        let user = user::Model::from_query_result(&row, "")?;
        let (of_user, whole_groups) = match groups_read {
            GroupsRead::Whole => {
                let whole = whole_groups(&row)?;
                (whole.clone(), whole)
            }
            GroupsRead::Ids => {
                let ids = json_list::<i64>(&row, "groups_json")?;
                (self.carrying_groups(&ids).await?, Vec::new())
            }
        };
        let granted = of_user
            .iter()
            .fold(Permissions::NONE, |granted, g| granted.union(g.carries));
        let division = match wants.division {
            true => Some(division_of(&row)?),
            false => None,
        };
        let groups = wants.groups.then(|| {
            let mut groups: Vec<group::Model> = of_user.iter().map(|g| g.group.clone()).collect();
            // As the groups loader orders them.
            groups.sort_by(|a, b| a.name_folded.cmp(&b.name_folded).then(a.id.cmp(&b.id)));
            Arc::new(groups)
        });
        let account = Account {
            user: Arc::new(user),
            granted,
        };
        let details = Details {
            division,
            groups,
            whole_groups,
        };
        Ok((Some(Arc::new(account)), details))
    }

    /// The groups `ids` with what they carry, through the groups cache
    /// (those that no longer exist are left out).
    async fn carrying_groups(&self, ids: &[i64]) -> Result<Vec<Arc<CarryingGroup>>> {
        let load = |ids: Vec<i64>| carrying_groups(&self.db, ids);
        let found = match self.caches() {
            Some(caches) => caches.groups.get_or_load_many(ids, load).await?,
            None => load(ids.to_vec()).await?,
        };
        Ok(ids.iter().filter_map(|id| found.get(id)?.clone()).collect())
    }
}

/// The statement: the user's columns, their groups as a JSON array (as
/// `groups_read` says: `[id, name, name_folded, permission]`, a row per
/// permission a group carries and `null` for none, or their ids), and as
/// `wants` asks, the division's columns (prefixed `d_`). One subquery reads
/// both groups and permissions: on PostgreSQL each subquery costs its own
/// executor start, which was most of the statement.
fn statement(
    backend: DbBackend,
    id: i64,
    wants: DetailWants,
    groups_read: GroupsRead,
) -> Statement {
    let (array, of, empty) = match backend {
        DbBackend::Postgres => ("json_agg", "json_build_array", "COALESCE({}, '[]')::text"),
        _ => ("json_group_array", "json_array", "{}"),
    };
    let groups = match groups_read {
        GroupsRead::Whole => format!(
            "(SELECT {array}({of}(g.id, g.name, g.name_folded, gp.permission)) \
             FROM user_groups ug JOIN groups g ON g.id = ug.group_id \
             LEFT JOIN group_permissions gp ON gp.group_id = g.id WHERE ug.user_id = u.id)"
        ),
        GroupsRead::Ids => {
            format!("(SELECT {array}(ug.group_id) FROM user_groups ug WHERE ug.user_id = u.id)")
        }
    };
    let mut columns = format!("u.*, {} AS groups_json", empty.replace("{}", &groups));
    let mut from = String::from("users u");
    if wants.division {
        // Every column of the entity, so `division::Model` reads them all.
        for column in division::Column::iter() {
            let name = column.as_str();
            columns.push_str(&format!(", d.{name} AS d_{name}"));
        }
        from.push_str(" LEFT JOIN divisions d ON d.id = u.division_id");
    }
    let placeholder = match backend {
        DbBackend::Postgres => "$1",
        _ => "?",
    };
    Statement::from_sql_and_values(
        backend,
        format!("SELECT {columns} FROM {from} WHERE u.id = {placeholder}"),
        [id.into()],
    )
}

/// A group's id, name, folded name and one permission it carries (`None`
/// for none), as the statements here read them.
type GroupRow = (i64, String, String, Option<String>);

/// The groups of rows of `GroupRow`, each with what it carries, in the
/// order they first appear.
fn carrying(rows: impl IntoIterator<Item = GroupRow>) -> Vec<Arc<CarryingGroup>> {
    let mut groups: Vec<CarryingGroup> = Vec::new();
    let mut at: HashMap<i64, usize> = HashMap::new();
    for (id, name, name_folded, permission) in rows {
        let index = *at.entry(id).or_insert_with(|| {
            groups.push(CarryingGroup {
                group: group::Model {
                    id,
                    name,
                    name_folded,
                },
                carries: Permissions::NONE,
            });
            groups.len() - 1
        });
        if let (Some(permission), Some(group)) = (permission, groups.get_mut(index)) {
            group.carries.insert_name(&permission);
        }
    }
    groups.into_iter().map(Arc::new).collect()
}

/// The groups the statement read whole.
fn whole_groups(row: &QueryResult) -> Result<Vec<Arc<CarryingGroup>>> {
    Ok(carrying(json_list::<GroupRow>(row, "groups_json")?))
}

/// The groups `ids` with what they carry, by id.
async fn carrying_groups(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<HashMap<i64, Option<Arc<CarryingGroup>>>> {
    let rows: Vec<GroupRow> = group::Entity::find()
        .select_only()
        .column(group::Column::Id)
        .column(group::Column::Name)
        .column(group::Column::NameFolded)
        .column(group_permission::Column::Permission)
        .join(
            JoinType::LeftJoin,
            group_permission::Relation::Group.def().rev(),
        )
        .filter(group::Column::Id.is_in(ids))
        .into_tuple()
        .all(db)
        .await?;
    Ok(carrying(rows)
        .into_iter()
        .map(|group| (group.group.id, Some(group)))
        .collect())
}

/// The division's columns of `row`, `None` for a user in none.
fn division_of(row: &QueryResult) -> Result<Option<Arc<division::Model>>> {
    let id: Option<i64> = row.try_get("", "d_id")?;
    if id.is_none() {
        return Ok(None);
    }
    Ok(Some(Arc::new(division::Model::from_query_result(
        row, "d_",
    )?)))
}

/// The JSON array in `column` of `row`, as a list of `T`.
fn json_list<T: serde::de::DeserializeOwned>(row: &QueryResult, column: &str) -> Result<Vec<T>> {
    let text: String = row.try_get("", column)?;
    serde_json::from_str(&text).map_err(|e| Error::internal(anyhow::anyhow!("{column}: {e}")))
}
