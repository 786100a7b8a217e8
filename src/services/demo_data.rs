//! `roster demo-data`: fills an empty database with divisions (some
//! inactive), groups and N users with deterministic, realistic, varied data,
//! in batched multi-row inserts inside transactions. Every demo user has the
//! password [`DEMO_PASSWORD`], hashed once.
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use entity::{division, group, membership, user};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    Set, Statement, TransactionTrait,
};

use super::{access, password_hash};
use crate::{
    domain::{Permission, Permissions, fold},
    error::{Error, Result},
};

/// The password of every demo user, documented in the README.
pub const DEMO_PASSWORD: &str = "roster-demo-password";
/// The username of the demo superuser (user 1).
pub const DEMO_ADMIN: &str = "admin";
/// Rows per INSERT statement (well under both databases' parameter limits).
const BATCH: usize = 1_000;
/// Rows per transaction.
const ROWS_PER_TRANSACTION: usize = 20_000;

const FIRST_NAMES: &[&str] = &[
    "Alice", "Bob", "Carol", "David", "Émile", "Fatima", "George", "Hana", "Ivan", "Júlia",
    "Kenji", "Laura", "Mohammed", "Nora", "Oskar", "Priya", "Quentin", "Rosa", "Søren", "Tomasz",
    "Ursula", "Vikram", "Wen", "Xavier", "Yasmin", "Zoë", "Łukasz", "Ingrid", "Mateo", "Aiko",
    "Chloé", "Dmitri",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Müller",
    "García",
    "Rossi",
    "Dubois",
    "Kowalski",
    "Nakamura",
    "Okafor",
    "Johansson",
    "Novák",
    "Silva",
    "O'Brien",
    "Van Dijk",
    "Papadopoulos",
    "Yılmaz",
    "Kim",
    "Nguyen",
    "Andersen",
    "López",
    "Schmidt",
    "Fernández",
    "Haddad",
    "Ivanova",
    "Bianchi",
    "Patel",
    "Cohen",
    "Martin",
    "Lee",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "example.org",
    "mail.example.net",
    "corp.example",
];
const GROUPS: &[&str] = &[
    "Manager",
    "Admins",
    "Engineering",
    "Sales",
    "Support",
    "Finance",
    "Marketing",
    "On-call",
    "Interns",
    "Security",
    "Help desk",
];

/// The permissions demo groups carry: a "Manager" adds people to groups,
/// the "Help desk" manages accounts.
const GROUP_PERMISSIONS: &[(&str, Permission)] = &[
    ("Manager", Permission::ManageGroupMembers),
    ("Help desk", Permission::ManageUsers),
];
const MAIN_DIVISIONS: &[&str] = &[
    "Headquarters",
    "Research",
    "Operations",
    "Commercial",
    "Legacy",
];
const SUB_DIVISIONS: &[&str] = &["North", "South", "East", "West", "Central"];

/// What was made, for the command's report.
#[derive(Debug)]
pub struct Summary {
    pub divisions: usize,
    pub groups: usize,
    pub users: u64,
    pub memberships: u64,
    pub seconds: f64,
}

/// Fills the database; refuses one that already has users.
pub async fn generate(db: &DatabaseConnection, users: u64, seed: u64) -> Result<Summary> {
    let started = Instant::now();
    if user::Entity::find().count(db).await? > 0 {
        return Err(Error::Forbidden(
            "The database already has users; demo-data fills only an empty one.".into(),
        ));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let epoch: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
    let divisions = create_divisions(db, epoch).await?;
    let groups = create_groups(db).await?;
    let hash = password_hash::Hasher::new(password_hash::HashLimits::one_at_a_time())
        .hash(DEMO_PASSWORD.to_owned())
        .await?;

    let mut memberships = 0u64;
    let mut next = 1u64;
    while next <= users {
        let txn = db.begin().await?;
        let end = (next + ROWS_PER_TRANSACTION as u64 - 1).min(users);
        let mut rows = Vec::with_capacity(BATCH);
        let mut members = Vec::with_capacity(BATCH * 2);
        for id in next..=end {
            rows.push(demo_user(&mut rng, id, &divisions, &hash, epoch));
            for group in pick_groups(&mut rng, &groups) {
                members.push(membership::ActiveModel {
                    user_id: Set(id as i64),
                    group_id: Set(group),
                });
            }
            if rows.len() == BATCH || id == end {
                user::Entity::insert_many(std::mem::take(&mut rows))
                    .exec(&txn)
                    .await?;
                memberships += members.len() as u64;
                if !members.is_empty() {
                    membership::Entity::insert_many(std::mem::take(&mut members))
                        .exec(&txn)
                        .await?;
                }
            }
        }
        txn.commit().await?;
        next = end + 1;
    }
    if db.get_database_backend() == DbBackend::Postgres && users > 0 {
        // Ids were given explicitly: move the sequence past them.
        db.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT max(id) FROM users))",
        ))
        .await?;
    }
    Ok(Summary {
        divisions: divisions.len(),
        groups: groups.len(),
        users,
        memberships,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// (id, is_active) of every division.
async fn create_divisions(
    db: &DatabaseConnection,
    epoch: DateTime<Utc>,
) -> Result<Vec<(i64, bool)>> {
    let mut made = Vec::new();
    for (m, main) in MAIN_DIVISIONS.iter().enumerate() {
        // "Legacy" and its subdivisions are inactive.
        let active = *main != "Legacy";
        let parent = division::ActiveModel {
            name: Set((*main).to_owned()),
            name_folded: Set(fold(main)),
            division_type: Set(division::DivisionType::Main),
            parent_id: Set(None),
            is_active: Set(active),
            created_at: Set(epoch + Duration::days(m as i64)),
            ..Default::default()
        }
        .insert(db)
        .await?;
        made.push((parent.id, active));
        for sub in SUB_DIVISIONS {
            let name = format!("{main} {sub}");
            let sub = division::ActiveModel {
                name_folded: Set(fold(&name)),
                name: Set(name),
                division_type: Set(division::DivisionType::Sub),
                parent_id: Set(Some(parent.id)),
                is_active: Set(active),
                created_at: Set(epoch + Duration::days(m as i64 + 1)),
                ..Default::default()
            }
            .insert(db)
            .await?;
            made.push((sub.id, active));
        }
    }
    Ok(made)
}

async fn create_groups(db: &DatabaseConnection) -> Result<Vec<i64>> {
    let mut ids = Vec::new();
    for name in GROUPS {
        let group = group::ActiveModel {
            name: Set((*name).to_owned()),
            name_folded: Set(fold(name)),
            ..Default::default()
        }
        .insert(db)
        .await?;
        let carried: Permissions = GROUP_PERMISSIONS
            .iter()
            .filter(|(group, _)| group == name)
            .map(|(_, permission)| *permission)
            .collect();
        access::set_carried(db, group.id, carried).await?;
        ids.push(group.id);
    }
    Ok(ids)
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// 0–3 distinct groups, most users in one or none.
fn pick_groups(rng: &mut StdRng, groups: &[i64]) -> Vec<i64> {
    let count = match rng.random_range(0..10) {
        0..=2 => 0,
        3..=6 => 1,
        7..=8 => 2,
        _ => 3,
    };
    let mut chosen: Vec<i64> = Vec::with_capacity(count);
    while chosen.len() < count {
        let group = groups[rng.random_range(0..groups.len())];
        if !chosen.contains(&group) {
            chosen.push(group);
        }
    }
    chosen
}

fn demo_user(
    rng: &mut StdRng,
    id: u64,
    divisions: &[(i64, bool)],
    hash: &str,
    epoch: DateTime<Utc>,
) -> user::ActiveModel {
    let admin = id == 1;
    let first = pick(rng, FIRST_NAMES);
    let last = pick(rng, LAST_NAMES);
    let ascii = |s: &str| -> String {
        fold(s)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect()
    };
    let username = if admin {
        DEMO_ADMIN.to_owned()
    } else {
        format!("{}.{}{id}", ascii(first), ascii(last))
    };
    let email = format!("{username}@{}", pick(rng, DOMAINS));
    // Users of an inactive division are inactive; a few others are too.
    let division = (!rng.random_bool(0.1)).then(|| divisions[rng.random_range(0..divisions.len())]);
    let active = admin || (division.is_none_or(|(_, active)| active) && !rng.random_bool(0.05));
    let staff = admin || rng.random_bool(0.02);
    let joined = epoch + Duration::seconds(rng.random_range(0..3 * 365 * 86_400));
    let last_login = (active && rng.random_bool(0.7))
        .then(|| joined + Duration::seconds(rng.random_range(0..90 * 86_400)));
    let phone = rng
        .random_bool(0.4)
        .then(|| format!("+1 555 {:04}", rng.random_range(0..10_000)));
    // Four users in five are synced to the commerce platform (no draw from
    // the generator, so the rest of the data stays as it was).
    let remote_id = (!id.is_multiple_of(5)).then(|| format!("CX-{id:06}"));
    user::ActiveModel {
        id: Set(id as i64),
        remote_id_folded: Set(remote_id.as_deref().map(fold)),
        remote_id: Set(remote_id),
        username_folded: Set(fold(&username)),
        username: Set(username),
        email_folded: Set(fold(&email)),
        email: Set(email),
        first_name: Set(if admin {
            String::new()
        } else {
            first.to_owned()
        }),
        first_name_folded: Set(if admin { String::new() } else { fold(first) }),
        last_name: Set(if admin {
            String::new()
        } else {
            last.to_owned()
        }),
        last_name_folded: Set(if admin { String::new() } else { fold(last) }),
        phone_number: Set(phone),
        password_hash: Set(Some(hash.to_owned())),
        is_active: Set(active),
        is_staff: Set(staff),
        is_superuser: Set(admin),
        date_joined: Set(joined),
        last_login: Set(last_login),
        division_id: Set(if admin {
            None
        } else {
            division.map(|(id, _)| id)
        }),
        token_version: Set(0),
    }
}
