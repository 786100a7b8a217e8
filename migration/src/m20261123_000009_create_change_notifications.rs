use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// On PostgreSQL, every change to users, memberships, groups and divisions
/// is announced on the `roster_changes` channel when it commits, so that
/// each roster process can forget what it cached (see `services::read_cache`).
/// A changed or deleted user's notice carries their id; any other notice is
/// empty. Inserts and the other tables notify once per statement, so a bulk
/// load sends one notice, not one per row. SQLite has no such channel: one
/// process serves a SQLite file.
const UP: &str = r#"
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

CREATE TRIGGER users_notify_row AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION roster_notify_user_changed();
CREATE TRIGGER users_notify_insert AFTER INSERT ON users
    FOR EACH STATEMENT EXECUTE FUNCTION roster_notify_changed();
CREATE TRIGGER user_groups_notify AFTER INSERT OR UPDATE OR DELETE ON user_groups
    FOR EACH STATEMENT EXECUTE FUNCTION roster_notify_changed();
CREATE TRIGGER groups_notify AFTER INSERT OR UPDATE OR DELETE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION roster_notify_changed();
CREATE TRIGGER divisions_notify AFTER INSERT OR UPDATE OR DELETE ON divisions
    FOR EACH STATEMENT EXECUTE FUNCTION roster_notify_changed();
"#;

const DOWN: &str = r#"
DROP TRIGGER IF EXISTS divisions_notify ON divisions;
DROP TRIGGER IF EXISTS groups_notify ON groups;
DROP TRIGGER IF EXISTS user_groups_notify ON user_groups;
DROP TRIGGER IF EXISTS users_notify_insert ON users;
DROP TRIGGER IF EXISTS users_notify_row ON users;
DROP FUNCTION IF EXISTS roster_notify_changed();
DROP FUNCTION IF EXISTS roster_notify_user_changed();
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
