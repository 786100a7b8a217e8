use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

use crate::m20261123_000003_create_groups::Groups;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// On PostgreSQL a change to what groups carry is announced like any change
/// to memberships (see `m20261123_000009_create_change_notifications`), so
/// that every process forgets the permissions it cached with its users.
const NOTIFY: &str = "CREATE TRIGGER group_permissions_notify \
    AFTER INSERT OR UPDATE OR DELETE ON group_permissions \
    FOR EACH STATEMENT EXECUTE FUNCTION roster_notify_changed()";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(GroupPermissions::Table)
                    .if_not_exists()
                    .col(big_integer(GroupPermissions::GroupId))
                    .col(string_len(GroupPermissions::Permission, 64))
                    .primary_key(
                        Index::create()
                            .name("group_permissions_pkey")
                            .col(GroupPermissions::GroupId)
                            .col(GroupPermissions::Permission),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("group_permissions_group_id_fkey")
                            .from(GroupPermissions::Table, GroupPermissions::GroupId)
                            .to(Groups::Table, Groups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Who holds a permission (`UserFilter.permission`, the check that a
        // permission keeps a holder) starts from the permission.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("group_permissions_permission_group_id_idx")
                    .table(GroupPermissions::Table)
                    .col(GroupPermissions::Permission)
                    .col(GroupPermissions::GroupId)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(NOTIFY).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(GroupPermissions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum GroupPermissions {
    Table,
    GroupId,
    Permission,
}
