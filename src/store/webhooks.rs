//! `webhook_endpoints` and `webhook_attempts` as the delivery worker uses them: endpoints due
//! and unleased taken under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so processes
//! sharing the database split them), a lease let go, and a batch's end written only while the
//! lease is still this owner's.

use crate::error::DomainResult;
use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_endpoint};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, FromQueryResult, Statement,
    sea_query::{Expr, ExprTrait, Query, UpdateStatement},
};

/// Leases to `owner` until `until` up to `most` enabled endpoints that are due at `at`, not
/// leased, and have an event past their cursor. A leased row that does not decode (a column
/// changed under a running binary) is logged and counted, not silently dropped; its lease
/// runs out and it is taken again.
pub async fn claim(
    db: &DatabaseConnection,
    owner: &str,
    until: DateTime<Utc>,
    at: DateTime<Utc>,
    most: usize,
) -> DomainResult<Vec<webhook_endpoint::Model>> {
    let backend = db.get_database_backend();
    let most = i64::try_from(most).unwrap_or(i64::MAX);
    let (sql, values): (&str, Vec<sea_orm::Value>) = if backend == DbBackend::Postgres {
        (
            "UPDATE webhook_endpoints SET lease_owner = $1, lease_expires_at = $2 \
             WHERE id IN (SELECT id FROM webhook_endpoints \
               WHERE enabled AND next_attempt_at <= $3 \
                 AND (lease_expires_at IS NULL OR lease_expires_at < $3) \
                 AND EXISTS (SELECT 1 FROM directory_events e WHERE e.seq > webhook_endpoints.cursor_seq) \
               ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
             RETURNING *",
            vec![owner.into(), until.into(), at.into(), most.into()],
        )
    } else {
        (
            "UPDATE webhook_endpoints SET lease_owner = ?, lease_expires_at = ? \
             WHERE id IN (SELECT id FROM webhook_endpoints \
               WHERE enabled AND next_attempt_at <= ? \
                 AND (lease_expires_at IS NULL OR lease_expires_at < ?) \
                 AND EXISTS (SELECT 1 FROM directory_events e WHERE e.seq > webhook_endpoints.cursor_seq) \
               ORDER BY next_attempt_at LIMIT ?) \
             RETURNING *",
            vec![
                owner.into(),
                until.into(),
                at.into(),
                at.into(),
                most.into(),
            ],
        )
    };
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        match webhook_endpoint::Model::from_query_result(row, "") {
            Ok(endpoint) => claimed.push(endpoint),
            Err(err) => {
                let id = row.try_get::<i64>("", "id").ok();
                tracing::error!(endpoint = ?id, error = %err, "a leased webhook endpoint does not decode");
                crate::metrics::webhook_endpoint_unreadable();
            }
        }
    }
    Ok(claimed)
}

/// An update of `owner`'s lease of endpoint `id` that lets the lease go.
fn leased_update(id: i64, owner: &str) -> UpdateStatement {
    let mut update = Query::update();
    update
        .table(webhook_endpoint::Entity)
        .value(webhook_endpoint::Column::LeaseOwner, Option::<String>::None)
        .value(
            webhook_endpoint::Column::LeaseExpiresAt,
            Option::<DateTime<Utc>>::None,
        )
        .and_where(Expr::col(webhook_endpoint::Column::Id).eq(id))
        .and_where(Expr::col(webhook_endpoint::Column::LeaseOwner).eq(owner));
    update
}

/// Lets go of `owner`'s lease of an endpoint without moving it.
pub async fn release(db: &DatabaseConnection, id: i64, owner: &str) -> DomainResult<()> {
    db.execute(&leased_update(id, owner)).await?;
    Ok(())
}

/// Where a batch leaves its endpoint.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Every event posted: attempts start over.
    Delivered,
    /// An event failed for the `attempt`th time; the next try is at `at`.
    Retry { attempt: i32, at: DateTime<Utc> },
    /// An event failed past the retry schedule: the endpoint is disabled, saying why.
    Disable { attempt: i32, reason: String },
}

/// Writes a batch's end in one transaction: its attempts, the endpoint's cursor, where it goes
/// `next`, the lease let go; only while the lease is still `owner`'s (`false` when it ran out
/// and another process took the endpoint: its deliveries stand, this batch's end is dropped).
pub async fn finish(
    db: &DatabaseConnection,
    id: i64,
    owner: &str,
    attempts: Vec<webhook_attempt::ActiveModel>,
    cursor: i64,
    next: Next,
    at: DateTime<Utc>,
) -> DomainResult<bool> {
    let txn = crate::db::begin_write(db).await?;
    if !attempts.is_empty() {
        webhook_attempt::Entity::insert_many(attempts)
            .exec_without_returning(&txn)
            .await?;
    }
    let mut update = leased_update(id, owner);
    update
        .value(webhook_endpoint::Column::CursorSeq, cursor)
        .value(webhook_endpoint::Column::UpdatedAt, at);
    match next {
        Next::Delivered => {
            update.value(webhook_endpoint::Column::Attempt, 0);
        }
        Next::Retry { attempt, at } => {
            update
                .value(webhook_endpoint::Column::Attempt, attempt)
                .value(webhook_endpoint::Column::NextAttemptAt, at);
        }
        Next::Disable { attempt, reason } => {
            update
                .value(webhook_endpoint::Column::Attempt, attempt)
                .value(webhook_endpoint::Column::Enabled, false)
                .value(webhook_endpoint::Column::DisabledReason, reason);
        }
    }
    let moved = txn.execute(&update).await?;
    if moved.rows_affected() == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    txn.commit().await?;
    Ok(true)
}
