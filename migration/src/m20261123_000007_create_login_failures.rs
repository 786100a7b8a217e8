use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginFailures::Table)
                    .if_not_exists()
                    .col(big_pk_auto(LoginFailures::Id))
                    // The case fold of the username or email the client typed.
                    .col(string_len(LoginFailures::IdentifierFolded, 1016))
                    .col(string_len(LoginFailures::Client, 64))
                    .col(timestamp_with_time_zone(LoginFailures::FailedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("login_failures_identifier_client_idx")
                    .table(LoginFailures::Table)
                    .col(LoginFailures::IdentifierFolded)
                    .col(LoginFailures::Client)
                    .col(LoginFailures::FailedAt)
                    .to_owned(),
            )
            .await?;
        // Serves the pruning of failures older than the window.
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("login_failures_failed_at_idx")
                    .table(LoginFailures::Table)
                    .col(LoginFailures::FailedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginFailures::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LoginFailures {
    Table,
    Id,
    IdentifierFolded,
    Client,
    FailedAt,
}
