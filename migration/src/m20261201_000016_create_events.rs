use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every change roster makes, written in the transaction that makes it: the
/// audit log (and, later, the outbox webhooks are delivered from). The id
/// orders events. Targets and actor are plain ids, not foreign keys: an
/// event outlives what it describes.
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(big_pk_auto(Events::Id))
                    .col(timestamp_with_time_zone(Events::OccurredAt))
                    .col(string_len(Events::EventType, 64))
                    .col(big_integer_null(Events::ActorId))
                    .col(string_len_null(Events::ActorName, 160))
                    .col(string_len_null(Events::Client, 64))
                    .col(big_integer_null(Events::TargetUserId))
                    .col(big_integer_null(Events::TargetGroupId))
                    .col(big_integer_null(Events::TargetDivisionId))
                    .col(text(Events::Payload))
                    .to_owned(),
            )
            .await?;
        // Each filter of the audit log walks its own index newest first;
        // retention walks the time.
        for (name, column) in [
            ("events_event_type_id_idx", Events::EventType),
            ("events_actor_id_id_idx", Events::ActorId),
            ("events_target_user_id_id_idx", Events::TargetUserId),
            ("events_target_group_id_id_idx", Events::TargetGroupId),
            ("events_target_division_id_id_idx", Events::TargetDivisionId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .if_not_exists()
                        .name(name)
                        .table(Events::Table)
                        .col(column)
                        .col(Events::Id)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .if_not_exists()
                    .name("events_occurred_at_idx")
                    .table(Events::Table)
                    .col(Events::OccurredAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Events::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    OccurredAt,
    EventType,
    ActorId,
    ActorName,
    Client,
    TargetUserId,
    TargetGroupId,
    TargetDivisionId,
    Payload,
}
