//! An index behind each order of the top-level lists (`orderBy`, `src/directory/order.rs`):
//! the sort key and the id, so a page seeks to its position and reads its rows in order.
//! Text keys are expressions that fold ASCII letters (`lower(x)` on SQLite,
//! `lower(x COLLATE "C")` on PostgreSQL, the same order on both); the queries use the same
//! expressions, which is what lets the planner use these indexes.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index, table, key expression on SQLite, key expression on PostgreSQL).
const INDEXES: [(&str, &str, &str, &str); 7] = [
    (
        "ix_directory_users_display_name_order",
        "directory_users",
        "lower(\"display_name\")",
        "lower(\"display_name\" COLLATE \"C\")",
    ),
    (
        "ix_directory_users_email_order",
        "directory_users",
        "COALESCE(\"email_key\", '')",
        "COALESCE(\"email_key\", '')",
    ),
    (
        "ix_directory_groups_display_name_order",
        "directory_groups",
        "lower(\"display_name\")",
        "lower(\"display_name\" COLLATE \"C\")",
    ),
    (
        "ix_devices_name_order",
        "devices",
        "lower(\"name\")",
        "lower(\"name\" COLLATE \"C\")",
    ),
    (
        "ix_devices_serial_number_order",
        "devices",
        "\"serial_number\"",
        "\"serial_number\"",
    ),
    (
        "ix_integrations_name_order",
        "integrations",
        "\"name_key\"",
        "\"name_key\"",
    ),
    (
        "ix_integrations_last_synced_order",
        "integrations",
        "\"last_synced_at\"",
        "\"last_synced_at\"",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let pg = m.get_database_backend() == DbBackend::Postgres;
        for (index, table, sqlite, postgres) in INDEXES {
            let key = if pg { postgres } else { sqlite };
            m.get_connection()
                .execute_unprepared(&format!(
                    "CREATE INDEX \"{index}\" ON \"{table}\" ({key}, \"id\")"
                ))
                .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for (index, ..) in INDEXES {
            m.get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS \"{index}\""))
                .await?;
        }
        Ok(())
    }
}
