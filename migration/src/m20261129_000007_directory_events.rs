//! Directory change events (an outbox): one row per change, written in the transaction that
//! makes the change, numbered in commit order.
//!
//! `event_sequence` holds the last number handed out. A writing transaction takes its
//! numbers with `UPDATE event_sequence SET last_seq = last_seq + n`, which locks the row until
//! it commits, so numbers are assigned in commit order and a reader that has seen `n` never
//! later finds an event below `n` (the feed is gapless). The id is the number itself.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DirectoryEvents {
    Table,
    Seq,
    EventType,
    OccurredAt,
    IntegrationId,
    ObjectType,
    ObjectId,
    Data,
}

#[derive(DeriveIden)]
enum EventSequence {
    Table,
    Id,
    LastSeq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(DirectoryEvents::Table)
                .col(big_integer(DirectoryEvents::Seq).primary_key())
                .col(string_len(DirectoryEvents::EventType, 40))
                .col(timestamp_with_time_zone(DirectoryEvents::OccurredAt))
                .col(big_integer_null(DirectoryEvents::IntegrationId))
                .col(string_len(DirectoryEvents::ObjectType, 16))
                .col(big_integer(DirectoryEvents::ObjectId))
                .col(text(DirectoryEvents::Data))
                .to_owned(),
        )
        .await?;
        // The feed of one integration, in order.
        m.create_index(
            Index::create()
                .name("ix_directory_events_integration")
                .table(DirectoryEvents::Table)
                .col(DirectoryEvents::IntegrationId)
                .col(DirectoryEvents::Seq)
                .to_owned(),
        )
        .await?;
        // The feed of one type, in order (`events(filter: {types})`, a subscriber or webhook
        // of one type): a rare type is found without reading the whole log.
        m.create_index(
            Index::create()
                .name("ix_directory_events_type")
                .table(DirectoryEvents::Table)
                .col(DirectoryEvents::EventType)
                .col(DirectoryEvents::Seq)
                .to_owned(),
        )
        .await?;
        // Retention prunes by time.
        m.create_index(
            Index::create()
                .name("ix_directory_events_occurred")
                .table(DirectoryEvents::Table)
                .col(DirectoryEvents::OccurredAt)
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(EventSequence::Table)
                .col(integer(EventSequence::Id).primary_key())
                .col(big_integer(EventSequence::LastSeq))
                .to_owned(),
        )
        .await?;
        m.exec_stmt(
            Query::insert()
                .into_table(EventSequence::Table)
                .columns([EventSequence::Id, EventSequence::LastSeq])
                .values_panic([1.into(), 0i64.into()])
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(EventSequence::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(DirectoryEvents::Table).to_owned())
            .await
    }
}
