//! Batches: how many rows one multi-row statement may carry on this backend, the one helper
//! every chunked write and lookup goes through, and writing a batch so that one record the
//! database refuses costs only itself ([`isolating`]).

use crate::error::DomainResult;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection};

/// The most bind parameters one statement may carry: SQLite's limit is 32,766, PostgreSQL's
/// 65,535; a margin is kept.
fn max_params(db: &impl ConnectionTrait) -> usize {
    match db.get_database_backend() {
        DatabaseBackend::Postgres => 60_000,
        _ => 30_000,
    }
}

/// The most rows one multi-row write carries, whatever the bind limit allows: a bigger
/// statement is no faster, and its SQL text and bound values cost memory while it runs.
const MAX_ROWS: usize = 256;

/// How many keys or rows of `columns` bound values each one statement may carry: what the
/// bind limit allows, at most [`MAX_ROWS`] rows of more than one column.
pub fn rows_per_statement(db: &impl ConnectionTrait, columns: usize) -> usize {
    let fit = (max_params(db) / columns.max(1)).max(1);
    if columns > 1 { fit.min(MAX_ROWS) } else { fit }
}

/// How many keys one `integration_id = ? AND key IN (...)` lookup may carry.
pub fn keys_per_lookup(db: &impl ConnectionTrait) -> usize {
    rows_per_statement(db, 1) - 1
}

/// `rows` in chunks that each fit one statement of `columns` bound values per row, in few
/// distinct sizes ([`crate::db::statement_chunks`]).
pub fn in_statements<T>(
    db: &impl ConnectionTrait,
    columns: usize,
    rows: Vec<T>,
) -> impl Iterator<Item = Vec<T>> {
    crate::db::statement_chunks(rows, rows_per_statement(db, columns))
}

/// Writes `items` through `write`, each call one transaction. When the database refuses a
/// batch for what a record holds ([`crate::storage::refuses_record`]), the batch is written again by
/// halves, down to the record, which `skipped` is told of and nothing else: one bad record
/// costs about `2·log2(n)` more transactions, not one per row, and never the batch. Any other
/// failure ends it. Returns what each successful write returned.
pub async fn isolating<'a, T, R, Fut>(
    items: &'a [T],
    write: impl Fn(&'a [T]) -> Fut,
    mut skipped: impl FnMut(&'a T, &sea_orm::DbErr),
) -> DomainResult<Vec<R>>
where
    Fut: Future<Output = DomainResult<R>>,
{
    let mut written = Vec::new();
    let mut todo = vec![items];
    while let Some(batch) = todo.pop() {
        if batch.is_empty() {
            continue;
        }
        match write(batch).await {
            Ok(done) => written.push(done),
            Err(err) => match err.db_error().filter(|e| crate::storage::refuses_record(e)) {
                Some(refusal) if batch.len() == 1 => skipped(&batch[0], refusal),
                Some(_) => {
                    let (first, second) = batch.split_at(batch.len() / 2);
                    todo.push(second);
                    todo.push(first);
                }
                None => return Err(err),
            },
        }
    }
    Ok(written)
}

/// `ANALYZE` on PostgreSQL (SQLite's planner does not need it for these lookups).
pub async fn refresh_statistics(db: &DatabaseConnection, tables: &[&str]) -> DomainResult<()> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        db.execute_unprepared(&format!("ANALYZE {}", tables.join(", ")))
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn isolating_skips_only_the_refused_records_in_few_writes() {
        use sea_orm::ConnectionTrait;
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared("CREATE TABLE t (v INTEGER NOT NULL CHECK (v % 100 <> 7))")
            .await
            .unwrap();
        let items: Vec<i64> = (0..1_000).collect();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let mut skipped = Vec::new();
        let written = isolating(
            &items,
            |batch: &[i64]| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let db = &db;
                async move {
                    let txn = crate::db::begin_write(db).await?;
                    let values: Vec<String> = batch.iter().map(|v| format!("({v})")).collect();
                    txn.execute_unprepared(&format!(
                        "INSERT INTO t (v) VALUES {}",
                        values.join(",")
                    ))
                    .await?;
                    txn.commit().await?;
                    Ok(batch.len())
                }
            },
            |item, err| {
                assert!(crate::storage::refuses_record(err));
                skipped.push(*item);
            },
        )
        .await
        .unwrap();
        assert_eq!(skipped, [7, 107, 207, 307, 407, 507, 607, 707, 807, 907]);
        assert_eq!(written.iter().sum::<usize>(), 990);
        let calls = calls.into_inner();
        assert!(
            calls <= 1 + 10 * 2 * 10,
            "{calls} writes for 10 bad records of 1,000"
        );
        let one_bad: Vec<i64> = (1_000..2_100).filter(|v| v % 100 != 7).chain([7]).collect();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        isolating(
            &one_bad,
            |batch: &[i64]| {
                calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let db = &db;
                async move {
                    let values: Vec<String> = batch.iter().map(|v| format!("({v})")).collect();
                    db.execute_unprepared(&format!(
                        "INSERT INTO t (v) VALUES {}",
                        values.join(",")
                    ))
                    .await?;
                    Ok(())
                }
            },
            |_, _| {},
        )
        .await
        .unwrap();
        assert!(
            calls.into_inner() <= 1 + 2 * 11,
            "O(log n) writes for one bad record"
        );
    }

    #[tokio::test]
    async fn isolating_ends_on_a_failure_that_is_not_a_record_s() {
        use sea_orm::ConnectionTrait;
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        let items = [1, 2, 3];
        let err = isolating(
            &items,
            |_: &[i32]| async {
                Ok::<(), _>(
                    db.execute_unprepared("INSERT INTO missing VALUES (1)")
                        .await
                        .map(|_| ())?,
                )
            },
            |_, _| panic!("nothing is skipped"),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "INTERNAL");
    }

    #[tokio::test]
    async fn in_statements_keeps_every_row_in_order_within_the_bind_limit() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        let per = rows_per_statement(&db, 7);
        assert_eq!(per, MAX_ROWS, "capped below the bind limit's 4,285");
        let rows: Vec<usize> = (0..per * 2 + 3).collect();
        let chunks: Vec<Vec<usize>> = in_statements(&db, 7, rows.clone()).collect();
        assert_eq!(
            chunks.iter().map(Vec::len).collect::<Vec<_>>(),
            [per, per, 2, 1],
            "the rest in powers of two"
        );
        assert_eq!(chunks.concat(), rows);
        assert_eq!(in_statements(&db, 7, Vec::<u8>::new()).count(), 0);
    }

    #[tokio::test]
    async fn a_row_wider_than_the_limit_still_gets_a_statement_of_its_own() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        assert_eq!(rows_per_statement(&db, 100_000), 1);
        assert_eq!(
            rows_per_statement(&db, 200),
            150,
            "the bind limit, below the cap"
        );
        assert_eq!(rows_per_statement(&db, 1), 30_000, "keys are not capped");
        assert_eq!(keys_per_lookup(&db), 29_999);
    }
}
