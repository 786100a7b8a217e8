use sea_orm_migration::{prelude::*, schema::*};

use crate::folded;

use crate::m20261123_000001_create_divisions::Divisions;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Users::Id))
                    .col(string_len(Users::Username, 150))
                    // A case fold can be longer than its source ("ß" → "ss").
                    .col(folded(manager, string_len(Users::UsernameFolded, 600)))
                    .col(string_len(Users::Email, 254))
                    .col(folded(manager, string_len(Users::EmailFolded, 1016)))
                    .col(string_len(Users::FirstName, 150).default(""))
                    .col(folded(
                        manager,
                        string_len(Users::FirstNameFolded, 600).default("").take(),
                    ))
                    .col(string_len(Users::LastName, 150).default(""))
                    .col(folded(
                        manager,
                        string_len(Users::LastNameFolded, 600).default("").take(),
                    ))
                    .col(string_len_null(Users::PhoneNumber, 32))
                    .col(text_null(Users::PasswordHash))
                    .col(boolean(Users::IsActive).default(true))
                    .col(boolean(Users::IsStaff).default(false))
                    .col(boolean(Users::IsSuperuser).default(false))
                    .col(timestamp_with_time_zone(Users::DateJoined))
                    .col(timestamp_with_time_zone_null(Users::LastLogin))
                    .col(big_integer_null(Users::DivisionId))
                    .col(big_integer(Users::TokenVersion).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .name("users_division_id_fkey")
                            .from(Users::Table, Users::DivisionId)
                            .to(Divisions::Table, Divisions::Id)
                            // A division that still has users cannot be deleted.
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column, unique) in [
            ("users_username_folded_key", Users::UsernameFolded, true),
            ("users_email_folded_key", Users::EmailFolded, true),
            ("users_division_id_idx", Users::DivisionId, false),
        ] {
            let mut index = Index::create();
            index
                .if_not_exists()
                .name(name)
                .table(Users::Table)
                .col(column);
            if unique {
                index.unique();
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Users::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone)]
pub enum Users {
    Table,
    Id,
    Username,
    UsernameFolded,
    Email,
    EmailFolded,
    FirstName,
    FirstNameFolded,
    LastName,
    LastNameFolded,
    PhoneNumber,
    PasswordHash,
    IsActive,
    IsStaff,
    IsSuperuser,
    DateJoined,
    LastLogin,
    DivisionId,
    TokenVersion,
}
