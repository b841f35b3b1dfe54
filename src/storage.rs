//! What a database's own errors mean to dirgate: a write refused for what one record holds
//! (the record is skipped and the rest written, R18), or storage that refuses every write (a
//! full disk, a read-only database: `UNAVAILABLE`, said as such, retried later). Read from
//! PostgreSQL's SQLSTATE and SQLite's extended result codes, so both databases answer alike.

use sea_orm::{DbErr, RuntimeErr, sqlx};
use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// A database's code for a failed statement.
enum Code {
    /// PostgreSQL's SQLSTATE.
    Postgres(String),
    /// SQLite's extended result code.
    Sqlite(u32),
}

fn code(err: &DbErr) -> Option<Code> {
    let (DbErr::Exec(RuntimeErr::SqlxError(e))
    | DbErr::Query(RuntimeErr::SqlxError(e))
    | DbErr::Conn(RuntimeErr::SqlxError(e))) = err
    else {
        return None;
    };
    let sqlx::Error::Database(db) = &**e else {
        return None;
    };
    let code = db.code()?;
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        code.parse().ok().map(Code::Sqlite)
    } else {
        Some(Code::Postgres(code.into_owned()))
    }
}

/// Whether the database refused a write for what a record holds (an integrity constraint, a
/// value the backend cannot store) rather than for its own state (a lost connection, a full
/// disk): the same write without that record would succeed. PostgreSQL: SQLSTATE classes 22
/// (data exception: `22P05`, `22021`, `22001`, ...) and 23 (integrity constraint violation);
/// SQLite: `SQLITE_TOOBIG`, `SQLITE_CONSTRAINT` (any extended code) and `SQLITE_MISMATCH`.
pub fn refuses_record(err: &DbErr) -> bool {
    match code(err) {
        Some(Code::Sqlite(code)) => matches!(code & 0xff, 18..=20),
        Some(Code::Postgres(code)) => code.starts_with("22") || code.starts_with("23"),
        None => false,
    }
}

/// Why the database's storage refuses writes, if that is why `err` happened: PostgreSQL's
/// `disk_full` (53100), `insufficient_resources` (53000), `io_error` (58030) and
/// `read_only_sql_transaction` (25006); SQLite's `SQLITE_FULL`, `SQLITE_IOERR` and
/// `SQLITE_READONLY` (with their extended codes).
pub fn trouble(err: &DbErr) -> Option<&'static str> {
    match code(err)? {
        Code::Sqlite(code) => match code & 0xff {
            13 => Some(DISK_FULL),
            10 => Some(IO_ERROR),
            8 => Some(READ_ONLY),
            _ => None,
        },
        Code::Postgres(code) => match code.as_str() {
            "53100" | "53000" => Some(DISK_FULL),
            "58030" => Some(IO_ERROR),
            "25006" => Some(READ_ONLY),
            _ => None,
        },
    }
}

/// When this process last saw the database refuse a write for its storage, and why.
static TROUBLE: Mutex<Option<(&'static str, Instant)>> = Mutex::new(None);

/// How long a refused write is taken as the state of the storage; past it, `/readyz` writes
/// to find out.
const FRESH: Duration = Duration::from_secs(10);

fn trouble_seen() -> std::sync::MutexGuard<'static, Option<(&'static str, Instant)>> {
    TROUBLE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notes that the database refused a write for `cause` (every such error passes here, from
/// `DomainError`'s conversion); logs it when it is new, not at every refusal.
pub fn observed(cause: &'static str) {
    let mut seen = trouble_seen();
    if seen.is_none_or(|(was, _)| was != cause) {
        tracing::error!(cause, "the database refuses writes");
    }
    *seen = Some((cause, Instant::now()));
}

/// Whether the database takes writes, for `/readyz`: `Err(cause)` while writes are refused.
/// Writes nothing while no refusal was seen; within [`FRESH`] of one, the refusal stands;
/// after it, one probing write (`probe`: `store::events::probe_write`, an unchanged update of
/// the event counter's row) decides, and its success is logged once as the end of the trouble.
pub async fn writable<F>(probe: impl FnOnce() -> F) -> Result<(), &'static str>
where
    F: Future<Output = Result<(), DbErr>>,
{
    let seen = *trouble_seen();
    match seen {
        None => Ok(()),
        Some((cause, at)) if at.elapsed() < FRESH => Err(cause),
        Some((cause, _)) => match probe().await {
            Ok(()) => {
                *trouble_seen() = None;
                tracing::info!("the database takes writes again");
                Ok(())
            }
            Err(err) => Err(trouble(&err).inspect(|c| observed(c)).unwrap_or(cause)),
        },
    }
}

/// What an answer refused for storage trouble asks the client to wait (`Retry-After`).
pub const RETRY_AFTER_SECS: u64 = 30;

pub const DISK_FULL: &str = "the database's disk is full";
pub const IO_ERROR: &str = "the database's storage failed to write";
pub const READ_ONLY: &str = "the database is read-only";

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, DatabaseConnection};

    async fn refused(db: &DatabaseConnection, sql: &str) -> DbErr {
        db.execute_unprepared(sql).await.unwrap_err()
    }

    #[tokio::test]
    async fn refuses_record_is_a_constraint_not_a_missing_table() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)")
            .await
            .unwrap();
        db.execute_unprepared("INSERT INTO t (v) VALUES ('a')")
            .await
            .unwrap();
        let duplicate = refused(&db, "INSERT INTO t (v) VALUES ('a')").await;
        assert!(refuses_record(&duplicate));
        assert_eq!(trouble(&duplicate), None);
        assert!(refuses_record(
            &refused(&db, "INSERT INTO t (v) VALUES (NULL)").await
        ));
        assert!(!refuses_record(
            &refused(&db, "INSERT INTO missing (v) VALUES ('a')").await
        ));
    }

    #[tokio::test]
    async fn trouble_is_a_read_only_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = crate::db::connect(&url).await.unwrap();
        db.execute_unprepared("CREATE TABLE t (v TEXT)")
            .await
            .unwrap();
        db.close().await.unwrap();
        let ro = crate::db::connect(&format!("sqlite://{}?mode=ro", path.display()))
            .await
            .unwrap();
        let err = refused(&ro, "INSERT INTO t (v) VALUES ('a')").await;
        assert_eq!(trouble(&err), Some(READ_ONLY), "{err}");
        assert!(!refuses_record(&err));
    }
}
