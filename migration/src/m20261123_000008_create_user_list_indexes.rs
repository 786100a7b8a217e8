use sea_orm_migration::prelude::*;

use crate::m20261123_000002_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Indexes behind the user list's orderings: each ends with the id, as every
/// ordering does, so that a keyset page is one range scan. USERNAME and
/// EMAIL are served by their unique indexes.
const INDEXES: &[(&str, Users)] = &[
    ("users_date_joined_id_idx", Users::DateJoined),
    ("users_first_name_folded_id_idx", Users::FirstNameFolded),
    ("users_last_name_folded_id_idx", Users::LastNameFolded),
    ("users_last_login_id_idx", Users::LastLogin),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(*name)
                        .table(Users::Table)
                        .col(column.clone())
                        .col(Users::Id)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(*name).table(Users::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}
