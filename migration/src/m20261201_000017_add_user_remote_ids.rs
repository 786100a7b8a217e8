use sea_orm_migration::{prelude::*, schema::*};

use crate::{folded, m20261123_000002_create_users::Users};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The id an external system (the commerce platform users are synced to)
/// gave the user, and its case fold for the filters; both may be unset.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            string_len_null(RemoteIds::RemoteId, 255),
            folded(manager, string_len_null(RemoteIds::RemoteIdFolded, 1020)),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("users_remote_id_folded_id_idx")
                    .table(Users::Table)
                    .col(RemoteIds::RemoteIdFolded)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("users_remote_id_folded_id_idx")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        for column in [RemoteIds::RemoteIdFolded, RemoteIds::RemoteId] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum RemoteIds {
    RemoteId,
    RemoteIdFolded,
}
