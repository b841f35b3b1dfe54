//! What a run's provider made it wait: `sync_runs.retries` (calls made again: throttled,
//! failed, cut) and `sync_runs.throttled_ms` (time every read of the integration was paused by
//! the provider's throttling; overlapping pauses counted once).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Retries,
    ThrottledMs,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        m.alter_table(
            Table::alter()
                .table(SyncRuns::Table)
                .add_column(
                    ColumnDef::new(SyncRuns::Retries)
                        .integer()
                        .not_null()
                        .default(0),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(SyncRuns::Table)
                .add_column(
                    ColumnDef::new(SyncRuns::ThrottledMs)
                        .big_integer()
                        .not_null()
                        .default(0),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [SyncRuns::ThrottledMs, SyncRuns::Retries] {
            m.alter_table(
                Table::alter()
                    .table(SyncRuns::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
