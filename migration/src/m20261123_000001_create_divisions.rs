use sea_orm_migration::{prelude::*, schema::*};

use crate::folded;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Divisions::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Divisions::Id))
                    .col(string_len(Divisions::Name, 150))
                    .col(folded(manager, string_len(Divisions::NameFolded, 600)))
                    .col(string_len(Divisions::DivisionType, 4))
                    .col(big_integer_null(Divisions::ParentId))
                    .col(boolean(Divisions::IsActive).default(true))
                    .col(timestamp_with_time_zone(Divisions::CreatedAt))
                    // A SUB division has a parent, a MAIN one has none; that the
                    // parent is MAIN is checked where divisions are written.
                    .check(Expr::cust(
                        "(division_type = 'MAIN' AND parent_id IS NULL) \
                         OR (division_type = 'SUB' AND parent_id IS NOT NULL)",
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("divisions_parent_id_fkey")
                            .from(Divisions::Table, Divisions::ParentId)
                            .to(Divisions::Table, Divisions::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("divisions_name_folded_key")
                    .table(Divisions::Table)
                    .col(Divisions::NameFolded)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("divisions_parent_id_idx")
                    .table(Divisions::Table)
                    .col(Divisions::ParentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Divisions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
pub enum Divisions {
    Table,
    Id,
    Name,
    NameFolded,
    DivisionType,
    ParentId,
    IsActive,
    CreatedAt,
}
