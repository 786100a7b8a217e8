use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each client network's budget of work that hashes passwords, as a
/// generic cell rate: the moment (in milliseconds since the epoch) at which
/// its budget will be full again. A row whose moment has passed means the
/// same as no row, and is pruned.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClientBudgets::Table)
                    .if_not_exists()
                    .col(string_len(ClientBudgets::Client, 64).primary_key())
                    .col(big_integer(ClientBudgets::FullAtMs))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("client_budgets_full_at_ms_idx")
                    .table(ClientBudgets::Table)
                    .col(ClientBudgets::FullAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ClientBudgets::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ClientBudgets {
    Table,
    Client,
    FullAtMs,
}
