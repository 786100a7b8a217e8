//! roster's database migrations. They run on SQLite and PostgreSQL; each has
//! a `down`, and running the migrator again changes nothing.
pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_divisions;
mod m20261123_000002_create_users;
mod m20261123_000003_create_groups;
mod m20261123_000004_create_user_groups;
mod m20261123_000005_create_refresh_tokens;
mod m20261123_000006_create_settings;
mod m20261123_000007_create_login_failures;
mod m20261123_000008_create_user_list_indexes;
mod m20261123_000009_create_change_notifications;
mod m20261128_000010_create_client_budgets;
mod m20261128_000011_add_refresh_token_versions;
mod m20261128_000012_notify_per_schema;
mod m20261128_000013_phone_numbers_in_byte_order;
mod m20261128_000014_create_login_successes;
mod m20261201_000015_create_group_permissions;
mod m20261201_000016_create_events;
mod m20261201_000017_add_user_remote_ids;
mod m20261202_000018_create_webhooks;
mod m20261202_000019_create_substring_indexes;

/// A column of case-folded text. On PostgreSQL it compares in byte order
/// (`COLLATE "C"`), as SQLite does, so both order and page the same way and
/// `LIKE 'prefix%'` can use a plain index.
pub(crate) fn folded(manager: &SchemaManager, mut column: ColumnDef) -> ColumnDef {
    if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::Postgres {
        column.extra("COLLATE \"C\"");
    }
    column
}

pub use m20261202_000019_create_substring_indexes::{
    COLUMNS as SUBSTRING_INDEXED_COLUMNS, postgres_up as postgres_substring_indexes,
};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_divisions::Migration),
            Box::new(m20261123_000002_create_users::Migration),
            Box::new(m20261123_000003_create_groups::Migration),
            Box::new(m20261123_000004_create_user_groups::Migration),
            Box::new(m20261123_000005_create_refresh_tokens::Migration),
            Box::new(m20261123_000006_create_settings::Migration),
            Box::new(m20261123_000007_create_login_failures::Migration),
            Box::new(m20261123_000008_create_user_list_indexes::Migration),
            Box::new(m20261123_000009_create_change_notifications::Migration),
            Box::new(m20261128_000010_create_client_budgets::Migration),
            Box::new(m20261128_000011_add_refresh_token_versions::Migration),
            Box::new(m20261128_000012_notify_per_schema::Migration),
            Box::new(m20261128_000013_phone_numbers_in_byte_order::Migration),
            Box::new(m20261128_000014_create_login_successes::Migration),
            Box::new(m20261201_000015_create_group_permissions::Migration),
            Box::new(m20261201_000016_create_events::Migration),
            Box::new(m20261201_000017_add_user_remote_ids::Migration),
            Box::new(m20261202_000018_create_webhooks::Migration),
            Box::new(m20261202_000019_create_substring_indexes::Migration),
        ]
    }
}
