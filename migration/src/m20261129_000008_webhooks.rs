//! Webhook endpoints and their delivery attempts.
//!
//! An endpoint delivers the events after its `cursor_seq`, in order; a failed delivery is
//! retried at `next_attempt_at` (`attempt` counts the failures of the current event) and
//! holds back the later ones. `lease_owner`/`lease_expires_at` let one process at a time
//! deliver an endpoint's events; a killed process's lease runs out and another takes over.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    Url,
    EventTypes,
    SecretEnc,
    Enabled,
    DisabledReason,
    CursorSeq,
    Attempt,
    NextAttemptAt,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    Id,
    EndpointId,
    EventSeq,
    Attempt,
    StatusCode,
    LatencyMs,
    Error,
    AttemptedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(WebhookEndpoints::Table)
                .col(big_pk_auto(WebhookEndpoints::Id))
                .col(string_len(WebhookEndpoints::Url, 2048))
                .col(text(WebhookEndpoints::EventTypes))
                .col(blob(WebhookEndpoints::SecretEnc))
                .col(boolean(WebhookEndpoints::Enabled))
                .col(text_null(WebhookEndpoints::DisabledReason))
                .col(big_integer(WebhookEndpoints::CursorSeq))
                .col(integer(WebhookEndpoints::Attempt))
                .col(timestamp_with_time_zone(WebhookEndpoints::NextAttemptAt))
                .col(string_len_null(WebhookEndpoints::LeaseOwner, 128))
                .col(timestamp_with_time_zone_null(
                    WebhookEndpoints::LeaseExpiresAt,
                ))
                .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(WebhookAttempts::Table)
                .col(big_pk_auto(WebhookAttempts::Id))
                .col(big_integer(WebhookAttempts::EndpointId))
                .col(big_integer(WebhookAttempts::EventSeq))
                .col(integer(WebhookAttempts::Attempt))
                .col(integer_null(WebhookAttempts::StatusCode))
                .col(integer(WebhookAttempts::LatencyMs))
                .col(text_null(WebhookAttempts::Error))
                .col(timestamp_with_time_zone(WebhookAttempts::AttemptedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(WebhookAttempts::Table, WebhookAttempts::EndpointId)
                        .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_webhook_attempts_endpoint")
                .table(WebhookAttempts::Table)
                .col(WebhookAttempts::EndpointId)
                .col(WebhookAttempts::Id)
                .to_owned(),
        )
        .await?;
        // Attempts are pruned with the events' retention.
        m.create_index(
            Index::create()
                .name("ix_webhook_attempts_time")
                .table(WebhookAttempts::Table)
                .col(WebhookAttempts::AttemptedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(WebhookAttempts::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned())
            .await
    }
}
