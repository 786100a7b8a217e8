use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// A refresh token carries the `token_version` of its user when it was
/// issued, and is refused once that version moved (a password change,
/// deactivation): a token issued by a login or a refresh that straddled
/// the change ends with it. Tokens already stored were issued under their
/// user's current version (every change of it revoked the older ones).
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .add_column(big_integer(RefreshTokens::TokenVersion).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE refresh_tokens SET token_version = \
                 (SELECT token_version FROM users WHERE users.id = refresh_tokens.user_id)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(RefreshTokens::Table)
                    .drop_column(RefreshTokens::TokenVersion)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    TokenVersion,
}
