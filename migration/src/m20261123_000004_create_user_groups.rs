use sea_orm_migration::{prelude::*, schema::*};

use crate::m20261123_000002_create_users::Users;
use crate::m20261123_000003_create_groups::Groups;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserGroups::Table)
                    .if_not_exists()
                    .col(big_integer(UserGroups::UserId))
                    .col(big_integer(UserGroups::GroupId))
                    .primary_key(
                        Index::create()
                            .name("user_groups_pkey")
                            .col(UserGroups::UserId)
                            .col(UserGroups::GroupId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("user_groups_user_id_fkey")
                            .from(UserGroups::Table, UserGroups::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("user_groups_group_id_fkey")
                            .from(UserGroups::Table, UserGroups::GroupId)
                            .to(Groups::Table, Groups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The primary key serves lookups by user; this one serves lookups by group.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("user_groups_group_id_user_id_idx")
                    .table(UserGroups::Table)
                    .col(UserGroups::GroupId)
                    .col(UserGroups::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UserGroups::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UserGroups {
    Table,
    UserId,
    GroupId,
}
