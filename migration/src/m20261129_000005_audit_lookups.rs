//! The audit log read through the API (`auditEvents`), newest first: by action and by target,
//! each index ending in the id so a page is read in order without sorting the log.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    Action,
    TargetType,
    TargetId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_index(
            Index::create()
                .name("ix_audit_events_action")
                .table(AuditEvents::Table)
                .col(AuditEvents::Action)
                .col(AuditEvents::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_audit_events_target")
                .table(AuditEvents::Table)
                .col(AuditEvents::TargetType)
                .col(AuditEvents::TargetId)
                .col(AuditEvents::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for index in ["ix_audit_events_action", "ix_audit_events_target"] {
            m.drop_index(
                Index::drop()
                    .name(index)
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
