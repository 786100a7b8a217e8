use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Phone numbers compare byte by byte on PostgreSQL, as on SQLite, so that
/// `phoneNumber: {gt: …}` and its kin match the same users on both (a
/// locale's collation would skip the `+` and the spaces). Phone numbers
/// have no folded twin: there is no case to fold.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        collate(manager, "C").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        collate(manager, "default").await
    }
}

async fn collate(manager: &SchemaManager<'_>, collation: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() == DbBackend::Postgres {
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "ALTER TABLE users ALTER COLUMN phone_number TYPE varchar(32) COLLATE \"{collation}\""
            ))
            .await?;
    }
    Ok(())
}
