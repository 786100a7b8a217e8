use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Change notices go out on a channel of the schema the changed table is
/// in, `roster_changes_<md5 of the schema's name>` (a channel name has at
/// most 63 bytes), instead of one channel for the whole database: roster
/// deployments in different schemas of one database (and the tests, a
/// schema each) no longer empty each other's caches. Processes find their
/// channel by `current_schema()` (`startup::listen_for_changes`).
const UP: &str = r#"
CREATE OR REPLACE FUNCTION roster_notify_user_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('roster_changes_' || md5(TG_TABLE_SCHEMA), OLD.id::text);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION roster_notify_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('roster_changes_' || md5(TG_TABLE_SCHEMA), '');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"#;

const DOWN: &str = r#"
CREATE OR REPLACE FUNCTION roster_notify_user_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('roster_changes', OLD.id::text);
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION roster_notify_changed() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('roster_changes', '');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(UP).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(DOWN).await?;
        }
        Ok(())
    }
}
