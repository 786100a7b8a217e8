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
        ]
    }
}
