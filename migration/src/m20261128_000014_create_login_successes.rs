use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The last successful login of each account from each client network (in
/// milliseconds since the epoch): a network that logged in to an account
/// lately is not held to that account's ceiling of failures across all
/// clients, so a guess spread over many networks cannot lock its owner out
/// where the owner usually logs in. Rows older than the period are pruned.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginSuccesses::Table)
                    .if_not_exists()
                    .col(string_len(LoginSuccesses::Subject, 64))
                    .col(string_len(LoginSuccesses::Client, 64))
                    .col(big_integer(LoginSuccesses::SucceededAtMs))
                    .primary_key(
                        Index::create()
                            .col(LoginSuccesses::Subject)
                            .col(LoginSuccesses::Client),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("login_successes_succeeded_at_ms_idx")
                    .table(LoginSuccesses::Table)
                    .col(LoginSuccesses::SucceededAtMs)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginSuccesses::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum LoginSuccesses {
    Table,
    Subject,
    Client,
    SucceededAtMs,
}
