//! One user with what a detail view shows of them, in one statement: the
//! user, their permissions, their division (joined) and their groups
//! (aggregated as JSON), where three statements read them one by one.
use std::sync::{Arc, Mutex, PoisonError};

use entity::{division, group, user};
use sea_orm::{
    ConnectionTrait, DbBackend, FromQueryResult, IdenStatic, Iterable, QueryResult, Statement,
};

use super::Reader;
use crate::{
    domain::Permissions,
    error::{Error, Result},
    services::{
        access::{Access, Account},
        parse_id,
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
        let epochs = caches.map(|c| (c.divisions.epoch(), c.groups_by_user.epoch()));
        let details = Mutex::new(None);
        let load = async {
            let (account, read) = load_in_detail(&self.db, id, wants).await?;
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
        if let (Some(caches), Some((divisions, groups))) = (caches, epochs) {
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
                    .fill(account.user.id, Arc::clone(of_user), groups);
            }
        }
        Ok(InDetail {
            account,
            division: read.division,
            groups: read.groups,
        })
    }
}

/// The statement: the user's columns, their groups as a JSON array of
/// `[id, name, name_folded, permission]` (a row per permission a group
/// carries, `null` for none; without `wants.groups`, only the permissions:
/// `[null, null, null, permission]`), and as `wants` asks, the division's
/// columns (prefixed `d_`). One subquery reads both groups and
/// permissions: on PostgreSQL each subquery costs its own executor start,
/// which was most of the statement.
fn statement(backend: DbBackend, id: i64, wants: DetailWants) -> Statement {
    let (array, of, empty) = match backend {
        DbBackend::Postgres => ("json_agg", "json_build_array", "COALESCE({}, '[]')::text"),
        _ => ("json_group_array", "json_array", "{}"),
    };
    let groups = match wants.groups {
        true => format!(
            "(SELECT {array}({of}(g.id, g.name, g.name_folded, gp.permission)) \
             FROM user_groups ug JOIN groups g ON g.id = ug.group_id \
             LEFT JOIN group_permissions gp ON gp.group_id = g.id WHERE ug.user_id = u.id)"
        ),
        false => format!(
            "(SELECT {array}({of}(NULL, NULL, NULL, gp.permission)) FROM user_groups ug \
             JOIN group_permissions gp ON gp.group_id = ug.group_id WHERE ug.user_id = u.id)"
        ),
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

/// The user `id` with their permissions, and what `wants` asks for.
async fn load_in_detail(
    db: &impl ConnectionTrait,
    id: i64,
    wants: DetailWants,
) -> Result<(Option<Arc<Account>>, Details)> {
    let row = db
        .query_one_raw(statement(db.get_database_backend(), id, wants))
        .await?;
    let Some(row) = row else {
        return Ok((None, Details::default()));
    };
    let user = user::Model::from_query_result(&row, "")?;
    type GroupRow = (Option<i64>, Option<String>, Option<String>, Option<String>);
    let mut granted = Permissions::NONE;
    let mut groups: Vec<group::Model> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (id, name, name_folded, permission) in json_list::<GroupRow>(&row, "groups_json")? {
        if let Some(permission) = permission {
            granted.insert_name(&permission);
        }
        // A row per permission: each group once.
        if let (Some(id), Some(name), Some(name_folded)) = (id, name, name_folded)
            && seen.insert(id)
        {
            groups.push(group::Model {
                id,
                name,
                name_folded,
            });
        }
    }
    let division = match wants.division {
        true => Some(division_of(&row)?),
        false => None,
    };
    let groups = wants.groups.then(|| {
        // As the groups loader orders them.
        groups.sort_by(|a, b| a.name_folded.cmp(&b.name_folded).then(a.id.cmp(&b.id)));
        Arc::new(groups)
    });
    let account = Account {
        user: Arc::new(user),
        granted,
    };
    Ok((Some(Arc::new(account)), Details { division, groups }))
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
