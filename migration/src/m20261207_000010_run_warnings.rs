//! What a run did to records the directory did not say (R18): `sync_runs.warning_count` (every
//! warning of the run, exact) and `sync_run_warnings` (the first ones kept, to show: a field
//! cleaned or cut, a record skipped, a member ignored).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Id,
    WarningCount,
}

#[derive(DeriveIden)]
enum SyncRunWarnings {
    Table,
    Id,
    RunId,
    ObjectKind,
    ExternalId,
    Field,
    Action,
    Message,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(SyncRuns::Table)
                .add_column(
                    ColumnDef::new(SyncRuns::WarningCount)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(SyncRunWarnings::Table)
                .col(big_pk_auto(SyncRunWarnings::Id))
                .col(big_integer(SyncRunWarnings::RunId))
                .col(string_len(SyncRunWarnings::ObjectKind, 16))
                .col(text(SyncRunWarnings::ExternalId))
                .col(string_len_null(SyncRunWarnings::Field, 64))
                .col(string_len(SyncRunWarnings::Action, 32))
                .col(text(SyncRunWarnings::Message))
                .foreign_key(
                    ForeignKey::create()
                        .from(SyncRunWarnings::Table, SyncRunWarnings::RunId)
                        .to(SyncRuns::Table, SyncRuns::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_sync_run_warnings_run")
                .table(SyncRunWarnings::Table)
                .col(SyncRunWarnings::RunId)
                .col(SyncRunWarnings::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(SyncRunWarnings::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(SyncRuns::Table)
                .drop_column(SyncRuns::WarningCount)
                .to_owned(),
        )
        .await
    }
}
