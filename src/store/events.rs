//! `directory_events` and `event_sequence`: the change-event outbox. [`record`] numbers a
//! transaction's events from the locked `event_sequence` row (numbers follow commit order, so
//! the feed is gapless), [`list`] and [`read`] page the feed, [`prune`] drops what is past
//! the retention. What each event says is built in `directory::events`.

use crate::error::DomainResult;
use entity::directory_event;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Query},
};

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: &'static str,
    pub integration_id: Option<i64>,
    pub object_type: &'static str,
    pub object_id: i64,
    /// JSON text: the object, its state and the changed fields (`directory::events`).
    pub data: String,
}

/// Rows per insert, at most: 7 values each, well under both databases' bind limits; small
/// enough that the few prepared statement sizes ([`crate::db::statement_chunks`]) stay small.
const ROWS_PER_INSERT: usize = 256;

/// Writes `events` in the caller's transaction, numbered after every event committed before.
/// Call it last in the transaction: the sequence row stays locked until the commit.
pub async fn record<C: ConnectionTrait>(db: &C, events: Vec<NewEvent>) -> DomainResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as i64;
    let bump = Query::update()
        .table(EventSequence)
        .value(LastSeq, Expr::col(LastSeq).add(n))
        .and_where(Expr::col(Id).eq(Expr::val(1)))
        .returning_col(LastSeq)
        .to_owned();
    let row = db.query_one(&bump).await?.ok_or_else(|| {
        crate::error::DomainError::internal(sea_orm::DbErr::RecordNotFound(
            "event_sequence has no row".into(),
        ))
    })?;
    let last: i64 = row.try_get("", "last_seq")?;
    let at = chrono::Utc::now();
    let mut seq = last - n;
    let rows: Vec<directory_event::ActiveModel> = events
        .into_iter()
        .map(|e| {
            seq += 1;
            directory_event::ActiveModel {
                seq: Set(seq),
                event_type: Set(e.event_type.to_owned()),
                occurred_at: Set(at),
                integration_id: Set(e.integration_id),
                object_type: Set(e.object_type.to_owned()),
                object_id: Set(e.object_id),
                data: Set(e.data),
            }
        })
        .collect();
    for chunk in crate::db::statement_chunks(rows, ROWS_PER_INSERT) {
        directory_event::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    WRITTEN.notify_waiters();
    Ok(())
}

#[derive(sea_orm::DeriveIden)]
struct EventSequence;
#[derive(sea_orm::DeriveIden)]
struct LastSeq;
#[derive(sea_orm::DeriveIden)]
struct Id;

/// Woken when this process writes events (before their commit: a waiter reads again, and
/// also reads every [`POLL`], which is how it sees other processes' events).
static WRITTEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// How often a waiting reader looks for events written by another process.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits until this process writes events, or [`POLL`] passes.
pub async fn written_or_poll() {
    let _ = tokio::time::timeout(POLL, WRITTEN.notified()).await;
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types (none: every type).
    pub types: Vec<String>,
    pub integration: Option<i64>,
}

/// Up to `first` events after `after`, in order; and whether more follow.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    after: Option<i64>,
    first: u64,
    filter: &EventFilter,
) -> DomainResult<crate::store::page::Page<directory_event::Model>> {
    list_between(db, after.unwrap_or(0), None, first, filter).await
}

/// [`list`], of events numbered at most `upto` (when given).
async fn list_between<C: ConnectionTrait>(
    db: &C,
    after: i64,
    upto: Option<i64>,
    first: u64,
    filter: &EventFilter,
) -> DomainResult<crate::store::page::Page<directory_event::Model>> {
    let mut select = directory_event::Entity::find().filter(directory_event::Column::Seq.gt(after));
    if let Some(upto) = upto {
        select = select.filter(directory_event::Column::Seq.lte(upto));
    }
    if !filter.types.is_empty() {
        select = select.filter(directory_event::Column::EventType.is_in(filter.types.clone()));
    }
    if let Some(id) = filter.integration {
        select = select.filter(directory_event::Column::IntegrationId.eq(id));
    }
    let mut items = select
        .order_by_asc(directory_event::Column::Seq)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next = items.len() as u64 > first;
    items.truncate(first as usize);
    Ok(crate::store::page::Page { items, has_next })
}

/// What a consumer that follows the feed read: the events, and the number it has read
/// through (events it did not want included), where its next read starts.
#[derive(Debug)]
pub struct Read {
    pub items: Vec<directory_event::Model>,
    pub through: i64,
    /// More wanted events may follow `through` already.
    pub has_next: bool,
}

/// Up to `first` wanted events after `after`, for a consumer that follows the feed (the
/// subscription, webhook delivery). Reads only up to the last number committed when it starts,
/// and moves past unwanted events up to there: a consumer of rare types does not scan the
/// same stretch of the log again on every read. Numbers follow commit order, so nothing at or
/// below that last number can still arrive.
pub async fn read<C: ConnectionTrait>(
    db: &C,
    after: i64,
    first: u64,
    filter: &EventFilter,
) -> DomainResult<Read> {
    let upto = last_seq(db).await?;
    if upto <= after {
        return Ok(Read {
            items: Vec::new(),
            through: after,
            has_next: false,
        });
    }
    let page = list_between(db, after, Some(upto), first, filter).await?;
    let through = if page.has_next {
        page.items.last().map_or(after, |e| e.seq)
    } else {
        upto
    };
    Ok(Read {
        items: page.items,
        through,
        has_next: page.has_next,
    })
}

/// The number of the last event committed (0 when there is none).
pub async fn last_seq<C: ConnectionTrait>(db: &C) -> DomainResult<i64> {
    Ok(directory_event::Entity::find()
        .select_only()
        .column_as(directory_event::Column::Seq.max(), "last")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten()
        .unwrap_or(0))
}

/// Deletes events that occurred before `before`; returns how many.
pub async fn prune<C: ConnectionTrait>(
    db: &C,
    before: chrono::DateTime<chrono::Utc>,
) -> DomainResult<u64> {
    Ok(directory_event::Entity::delete_many()
        .filter(directory_event::Column::OccurredAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}

/// A write that changes nothing (the event sequence's row set to itself, in a transaction of
/// its own): whether the database takes writes again after storage trouble.
pub async fn probe_write(db: &sea_orm::DatabaseConnection) -> Result<(), sea_orm::DbErr> {
    let txn = crate::db::begin_write(db).await?;
    txn.execute_unprepared("UPDATE event_sequence SET last_seq = last_seq WHERE id = 1")
        .await?;
    txn.commit().await
}

/// The change event numbered `seq`, if it is still kept.
pub async fn find(
    db: &impl super::Db,
    seq: i64,
) -> Result<Option<directory_event::Model>, sea_orm::DbErr> {
    directory_event::Entity::find()
        .filter(directory_event::Column::Seq.eq(seq))
        .one(db)
        .await
}
