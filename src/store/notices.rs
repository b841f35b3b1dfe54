//! PostgreSQL notifications between dirgate's processes: the channel a kind of notice goes on
//! (one per database and schema) and sending one. Listening is `sqlx`'s `PgListener`, opened
//! by the listener's owner (`auth::cache`, `sync::run_bus`).

use super::Db;
use sea_orm::{DatabaseBackend, DbErr, Statement};
use sha2::{Digest, Sha256};

/// The `NOTIFY` channel named `prefix` of this database and schema: processes on other
/// schemas of the same database (tests, side-by-side deployments) do not hear each other.
pub async fn channel(db: &impl Db, prefix: &str) -> Result<String, DbErr> {
    let schema: String = db
        .query_one_raw(Statement::from_string(
            DatabaseBackend::Postgres,
            "SELECT current_schema()::text AS schema",
        ))
        .await?
        .and_then(|row| row.try_get::<String>("", "schema").ok())
        .unwrap_or_default();
    let digest = hex::encode(Sha256::digest(schema.as_bytes()));
    Ok(format!("{prefix}_{}", &digest[..16]))
}

/// Sends `payload` on `channel`; in a transaction it is delivered when that commits.
pub async fn notify(db: &impl Db, channel: &str, payload: String) -> Result<(), DbErr> {
    db.execute_raw(Statement::from_sql_and_values(
        DatabaseBackend::Postgres,
        "SELECT pg_notify($1, $2)",
        [channel.into(), payload.into()],
    ))
    .await
    .map(drop)
}
