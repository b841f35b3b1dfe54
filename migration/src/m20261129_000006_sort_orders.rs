//! An index behind each order of the top-level lists (`orderBy`, `src/directory/order.rs`):
//! the sort key and the id, so a page seeks to its position and reads its rows in order.
//! Text keys are expressions that fold ASCII letters (`lower(x)` on SQLite,
//! `lower(x COLLATE "C")` on PostgreSQL, the same order on both); the queries use the same
//! expressions, which is what lets the planner use these indexes. A missing value sorts
//! first ascending: SQLite's own order, and `NULLS FIRST` in PostgreSQL's indexes.
//!
//! Users by email need no new index on SQLite: `ix_directory_users_email_key` (the match
//! lookups' index) already orders by `(email_key, rowid)`. On PostgreSQL that index becomes
//! `(email_key NULLS FIRST, id)`, which serves the lookups as before. Every index on
//! `directory_users` is paid for by each synced user, so none is added that an existing one
//! can do.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index, table, key on SQLite (`None`: an existing index serves), key on PostgreSQL).
const INDEXES: [(&str, &str, Option<&str>, &str); 7] = [
    (
        "ix_directory_users_display_name_order",
        "directory_users",
        Some("lower(\"display_name\")"),
        "lower(\"display_name\" COLLATE \"C\")",
    ),
    (
        "ix_directory_users_email_key",
        "directory_users",
        None,
        "\"email_key\" NULLS FIRST",
    ),
    (
        "ix_directory_groups_display_name_order",
        "directory_groups",
        Some("lower(\"display_name\")"),
        "lower(\"display_name\" COLLATE \"C\")",
    ),
    (
        "ix_devices_name_order",
        "devices",
        Some("lower(\"name\")"),
        "lower(\"name\" COLLATE \"C\")",
    ),
    (
        "ix_devices_serial_number_order",
        "devices",
        Some("\"serial_number\""),
        "\"serial_number\"",
    ),
    (
        "ix_integrations_name_order",
        "integrations",
        Some("\"name_key\""),
        "\"name_key\"",
    ),
    (
        "ix_integrations_last_synced_order",
        "integrations",
        Some("\"last_synced_at\""),
        "\"last_synced_at\" NULLS FIRST",
    ),
];

/// The email index as migration 1 made it.
const EMAIL_KEY_INDEX: &str =
    "CREATE INDEX \"ix_directory_users_email_key\" ON \"directory_users\" (\"email_key\")";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let pg = m.get_database_backend() == DbBackend::Postgres;
        let db = m.get_connection();
        for (index, table, sqlite, postgres) in INDEXES {
            let key = match (pg, sqlite) {
                (true, _) => postgres,
                (false, Some(key)) => key,
                (false, None) => continue,
            };
            // An index of the same name is replaced (PostgreSQL's email index).
            db.execute_unprepared(&format!("DROP INDEX IF EXISTS \"{index}\""))
                .await?;
            db.execute_unprepared(&format!(
                "CREATE INDEX \"{index}\" ON \"{table}\" ({key}, \"id\")"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let pg = m.get_database_backend() == DbBackend::Postgres;
        let db = m.get_connection();
        for (index, _, sqlite, _) in INDEXES {
            if pg || sqlite.is_some() {
                db.execute_unprepared(&format!("DROP INDEX IF EXISTS \"{index}\""))
                    .await?;
            }
        }
        if pg {
            db.execute_unprepared(EMAIL_KEY_INDEX).await?;
        }
        Ok(())
    }
}
