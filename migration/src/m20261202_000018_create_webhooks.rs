use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Webhooks and their outbox. A delivery row is written in the transaction
/// that writes its event, so it exists if and only if the change
/// committed; the delivery worker sends it after the commit. Times the
/// worker compares (`next_attempt_at`, `locked_until`) are milliseconds
/// since the epoch: a schedule's first steps are shorter than a second.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Webhooks::Id))
                    .col(string_len(Webhooks::Url, 2048))
                    .col(string_len(Webhooks::Description, 500))
                    // `,user.created,user.updated,`; `,*,` for every type.
                    .col(text(Webhooks::EventTypes))
                    .col(boolean(Webhooks::IsActive))
                    .col(string_len_null(Webhooks::DisabledReason, 200))
                    .col(string_len(Webhooks::Secret, 64))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    .col(timestamp_with_time_zone(Webhooks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Deliveries::Id))
                    .col(big_integer(Deliveries::WebhookId))
                    .col(big_integer(Deliveries::EventId))
                    .col(string_len(Deliveries::Status, 16))
                    .col(integer(Deliveries::AttemptCount))
                    .col(big_integer(Deliveries::NextAttemptAt))
                    .col(big_integer(Deliveries::LockedUntil))
                    .col(timestamp_with_time_zone(Deliveries::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhook_deliveries_webhook_id_fkey")
                            .from(Deliveries::Table, Deliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhook_deliveries_event_id_fkey")
                            .from(Deliveries::Table, Deliveries::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // The worker's claim walks what is due; an endpoint's list walks its
        // own deliveries newest first; pruning events finds theirs.
        for (name, columns) in [
            (
                "webhook_deliveries_due_idx",
                vec![Deliveries::Status, Deliveries::NextAttemptAt],
            ),
            (
                "webhook_deliveries_webhook_id_id_idx",
                vec![Deliveries::WebhookId, Deliveries::Id],
            ),
            ("webhook_deliveries_event_id_idx", vec![Deliveries::EventId]),
        ] {
            let mut index = Index::create();
            index.if_not_exists().name(name).table(Deliveries::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Attempts::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Attempts::Id))
                    .col(big_integer(Attempts::DeliveryId))
                    .col(timestamp_with_time_zone(Attempts::AttemptedAt))
                    .col(integer_null(Attempts::StatusCode))
                    .col(big_integer(Attempts::DurationMs))
                    .col(string_len_null(Attempts::Error, 200))
                    .foreign_key(
                        ForeignKey::create()
                            .name("webhook_attempts_delivery_id_fkey")
                            .from(Attempts::Table, Attempts::DeliveryId)
                            .to(Deliveries::Table, Deliveries::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("webhook_attempts_delivery_id_idx")
                    .table(Attempts::Table)
                    .col(Attempts::DeliveryId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Attempts::Table.into_iden(),
            Deliveries::Table.into_iden(),
            Webhooks::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Url,
    Description,
    EventTypes,
    IsActive,
    DisabledReason,
    Secret,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    #[sea_orm(iden = "webhook_deliveries")]
    Table,
    Id,
    WebhookId,
    EventId,
    Status,
    AttemptCount,
    NextAttemptAt,
    LockedUntil,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Attempts {
    #[sea_orm(iden = "webhook_attempts")]
    Table,
    Id,
    DeliveryId,
    AttemptedAt,
    StatusCode,
    DurationMs,
    Error,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}
