//! Connecting to the database and migrating it: SQLite (WAL, busy timeout, foreign keys on)
//! or PostgreSQL, chosen by the URL.

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbErr, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use std::time::Duration;

/// Opens a pool on `url`. For SQLite, the file's directory is created (`0700`) when missing,
/// and the file is made `0600` (`crate::files`).
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    connect_with(url, None).await
}

/// Like [`connect`], with a PostgreSQL schema search path (tests use one schema each).
pub async fn connect_with(url: &str, schema: Option<&str>) -> Result<DatabaseConnection, DbErr> {
    open(url, schema, None).await
}

/// Like [`connect`], holding at most `pool_size` PostgreSQL connections (`None`:
/// [`default_pool_size`]).
pub async fn connect_sized(url: &str, pool_size: Option<u32>) -> Result<DatabaseConnection, DbErr> {
    open(url, None, pool_size).await
}

/// The most PostgreSQL connections a process holds by default, as before the default
/// followed the CPUs: several processes share one PostgreSQL, whose own limit is 100 by
/// default (`max_connections`).
pub const MAX_DEFAULT_POOL_SIZE: u32 = 16;

/// The PostgreSQL connections dirgate holds by default: twice the CPUs (PostgreSQL's own rule
/// of thumb for busy connections), plus the two that listen for notifications and the two a
/// sync writes through, at most [`MAX_DEFAULT_POOL_SIZE`]. More connections than the CPUs can
/// serve only queue inside PostgreSQL: on 2 CPUs `read_bench` spent 20% more of PostgreSQL's
/// time per request with 16 than with 8, and served fewer requests.
pub fn default_pool_size() -> u32 {
    pool_size_for(std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// [`default_pool_size`] on a machine of `cpus` CPUs.
fn pool_size_for(cpus: usize) -> u32 {
    let wanted = cpus.saturating_mul(2).saturating_add(4);
    u32::try_from(wanted).map_or(MAX_DEFAULT_POOL_SIZE, |n| n.min(MAX_DEFAULT_POOL_SIZE))
}

async fn open(
    url: &str,
    schema: Option<&str>,
    pool_size: Option<u32>,
) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(30));
    if url.starts_with("sqlite:") {
        if let Some(file) = sqlite_file(url) {
            if let Some(dir) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
                crate::files::create_private_dir(dir)
                    .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", dir.display())))?;
            }
            crate::files::ensure_private_file(&file)
                .map_err(|e| DbErr::Custom(format!("cannot create {}: {e}", file.display())))?;
        }
        opts.max_connections(8).map_sqlx_sqlite_opts(|o| {
            use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                .create_if_missing(true)
        });
        opts.map_sqlx_sqlite_before_acquire(|conn, _| {
            Box::pin(async move { Ok(clean_state(conn)) })
        });
    } else {
        opts.max_connections(pool_size.unwrap_or_else(default_pool_size));
    }
    if let Some(schema) = schema {
        opts.set_schema_search_path(schema.to_owned());
    }
    Database::connect(opts).await
}

/// Whether an idle SQLite connection may be handed out: not when it still counts a transaction.
/// SQLite rolls a transaction back by itself when a statement fails for a full disk or an I/O
/// error; the driver's own `ROLLBACK` then fails and it keeps counting the transaction, so it
/// would begin the next one as a savepoint (a deferred transaction) and end a failed one with
/// `ROLLBACK TO`, which keeps the write lock: every other writer would wait for ever. Such a
/// connection is closed instead (closing rolls back whatever is open), and the pool opens a
/// fresh one.
fn clean_state(conn: &mut sea_orm::sqlx::sqlite::SqliteConnection) -> bool {
    use sea_orm::sqlx::Connection;
    let open = conn.is_in_transaction();
    if open {
        tracing::debug!("a pooled SQLite connection still counts a transaction; closing it");
    }
    !open
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// The database file of an SQLite URL (`None` in memory).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path.is_empty() || path == ":memory:" || query.contains("mode=memory") {
        return None;
    }
    Some(std::path::PathBuf::from(path))
}

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: it takes the
/// write lock at once, waiting (the busy timeout) while another connection writes. A deferred
/// transaction would start as a reader and fail with `SQLITE_BUSY` — an internal error — when
/// it came to write after another connection's commit (a sync commits page after page). On
/// PostgreSQL it is a plain `BEGIN`; inside a transaction, a savepoint.
pub async fn begin_write<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// How many of this binary's migrations the database has not applied (readiness: a process
/// of a newer version waits for `dirgate migrate`).
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.len())
}

/// `rows` in chunks for multi-row statements of at most `most` rows: full chunks, then the
/// rest in descending powers of two. A statement's text depends on its row count, and each
/// connection keeps the statements it prepared; so a table is written through at most
/// `log2(most) + 2` statement texts whatever the row counts, and what a connection holds
/// prepared stays small (SQLite's multi-row statements of 1,000 rows took megabytes each).
pub fn statement_chunks<T>(rows: Vec<T>, most: usize) -> impl Iterator<Item = Vec<T>> {
    let most = most.max(1);
    let mut left = rows.len();
    let mut rows = rows.into_iter();
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let take = if left >= most {
            most
        } else {
            1 << left.ilog2()
        };
        left -= take;
        Some(rows.by_ref().take(take).collect())
    })
}

#[cfg(test)]
mod tests {
    use super::{MAX_DEFAULT_POOL_SIZE, pool_size_for, statement_chunks};

    #[test]
    fn the_default_pool_follows_the_cpus_up_to_the_old_sixteen() {
        assert_eq!(pool_size_for(1), 6);
        assert_eq!(pool_size_for(2), 8);
        assert_eq!(pool_size_for(6), MAX_DEFAULT_POOL_SIZE);
        assert_eq!(pool_size_for(64), MAX_DEFAULT_POOL_SIZE);
        assert_eq!(pool_size_for(usize::MAX), MAX_DEFAULT_POOL_SIZE);
    }

    #[test]
    fn statement_chunks_keep_every_row_in_order_in_few_statement_sizes() {
        let sizes = |n: usize| -> Vec<usize> {
            let rows: Vec<usize> = (0..n).collect();
            let chunks: Vec<Vec<usize>> = statement_chunks(rows.clone(), 100).collect();
            assert_eq!(chunks.concat(), rows, "{n} rows");
            chunks.iter().map(Vec::len).collect()
        };
        assert_eq!(sizes(0), Vec::<usize>::new());
        assert_eq!(sizes(1), [1]);
        assert_eq!(sizes(100), [100]);
        assert_eq!(sizes(257), [100, 100, 32, 16, 8, 1]);
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..1_000 {
            seen.extend(sizes(n));
        }
        assert_eq!(
            seen.into_iter().collect::<Vec<_>>(),
            [1, 2, 4, 8, 16, 32, 64, 100],
            "eight statement texts for any row count"
        );
    }
}
