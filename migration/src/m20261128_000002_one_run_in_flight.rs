//! At most one queued or running sync run per integration, enforced by the database, so
//! several `dirgate serve` processes sharing it cannot start two runs of one integration.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // A partial unique index: both SQLite and PostgreSQL accept this statement as is.
        m.get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX ux_sync_runs_in_flight ON sync_runs (integration_id) \
                 WHERE status IN ('QUEUED', 'RUNNING')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX ux_sync_runs_in_flight")
            .await?;
        Ok(())
    }
}
