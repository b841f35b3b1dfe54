//! `webhook_endpoints` and `webhook_attempts`: as the delivery worker uses them (endpoints due
//! and unleased taken under a lease, `FOR UPDATE SKIP LOCKED` on PostgreSQL so processes
//! sharing the database split them; a lease let go; a batch's end written only while the
//! lease is still this owner's), and as admins manage them (insert with the sealed secret,
//! update, delete, list, attempts, pruning).

use crate::error::DomainResult;
use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_endpoint};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, Statement,
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

/// How many webhook endpoints there are.
pub async fn count(db: &impl super::Db) -> Result<u64, DbErr> {
    use sea_orm::PaginatorTrait;
    webhook_endpoint::Entity::find().count(db).await
}

/// Inserts an endpoint, then seals its secret with `seal(id)` (the row's id is the sealed
/// secret's associated data, so it is known only after the insert).
pub async fn insert(
    txn: &impl super::Db,
    row: webhook_endpoint::ActiveModel,
    seal: impl FnOnce(i64) -> Vec<u8>,
) -> Result<webhook_endpoint::Model, DbErr> {
    use sea_orm::{ActiveModelTrait, IntoActiveModel, Set};
    let model = row.insert(txn).await?;
    let sealed = seal(model.id);
    let mut active = model.into_active_model();
    active.secret_enc = Set(sealed);
    active.update(txn).await
}

/// Writes the changed columns of an endpoint.
pub async fn update(
    txn: &impl super::Db,
    row: webhook_endpoint::ActiveModel,
) -> Result<webhook_endpoint::Model, DbErr> {
    use sea_orm::ActiveModelTrait;
    row.update(txn).await
}

/// Deletes an endpoint (its attempts go with it).
pub async fn delete(txn: &impl super::Db, id: i64) -> Result<(), DbErr> {
    webhook_endpoint::Entity::delete_by_id(id)
        .exec(txn)
        .await
        .map(drop)
}

/// One endpoint, if it exists.
pub async fn find(db: &impl super::Db, id: i64) -> Result<Option<webhook_endpoint::Model>, DbErr> {
    webhook_endpoint::Entity::find_by_id(id).one(db).await
}

/// The first `most` endpoints, oldest first.
pub async fn list(db: &impl super::Db, most: u64) -> Result<Vec<webhook_endpoint::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    webhook_endpoint::Entity::find()
        .order_by_asc(webhook_endpoint::Column::Id)
        .limit(most)
        .all(db)
        .await
}

/// An endpoint's latest `first` attempts, newest first.
pub async fn attempts(
    db: &impl super::Db,
    endpoint: i64,
    first: u64,
) -> Result<Vec<webhook_attempt::Model>, DbErr> {
    use sea_orm::{QueryOrder, QuerySelect};
    webhook_attempt::Entity::find()
        .filter(webhook_attempt::Column::EndpointId.eq(endpoint))
        .order_by_desc(webhook_attempt::Column::Id)
        .limit(first)
        .all(db)
        .await
}

/// Deletes delivery attempts made before `before`; returns how many.
pub async fn prune_attempts(
    db: &impl super::Db,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, DbErr> {
    Ok(webhook_attempt::Entity::delete_many()
        .filter(webhook_attempt::Column::AttemptedAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
