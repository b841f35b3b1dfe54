//! `sync_runs` leases: a run belongs to the process that renews its lease; a run whose lease
//! ran out is failed by whichever process looks next, and its integration made due; a run's
//! progress and end saved.

use crate::error::DomainResult;
use chrono::{DateTime, Utc};
use entity::{enums::SyncRunStatus, integration, sync_run, sync_run_warning};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, sea_query::Expr,
};

/// The runs still queued or running whose lease ran out before `at`.
pub async fn lease_expired(
    db: &DatabaseConnection,
    at: DateTime<Utc>,
) -> DomainResult<Vec<sync_run::Model>> {
    Ok(sync_run::Entity::find()
        .filter(sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]))
        .filter(sync_run::Column::LeaseExpiresAt.lt(at))
        .all(db)
        .await?)
}

/// Fails the run with `error` at `at`, unless another process already did or renewed its
/// lease; then makes its integration due at `due`. Returns the run as it now is, or `None`
/// when it was not this call that failed it.
pub async fn fail_expired(
    db: &DatabaseConnection,
    run: &sync_run::Model,
    error: String,
    at: DateTime<Utc>,
    due: DateTime<Utc>,
) -> DomainResult<Option<sync_run::Model>> {
    let failed = sync_run::Entity::update_many()
        .col_expr(sync_run::Column::Status, Expr::value(SyncRunStatus::Failed))
        .col_expr(sync_run::Column::FinishedAt, Expr::value(at))
        .col_expr(sync_run::Column::Error, Expr::value(error))
        .filter(sync_run::Column::Id.eq(run.id))
        .filter(sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]))
        .filter(sync_run::Column::LeaseExpiresAt.lt(at))
        .exec(db)
        .await?;
    if failed.rows_affected != 1 {
        return Ok(None);
    }
    integration::Entity::update_many()
        .col_expr(integration::Column::NextSyncAt, Expr::value(due))
        .filter(integration::Column::Id.eq(run.integration_id))
        .exec(db)
        .await?;
    Ok(sync_run::Entity::find_by_id(run.id).one(db).await?)
}

/// Renews `owner`'s lease of a running run until `until`; whether the lease was still its.
pub async fn renew(
    db: &DatabaseConnection,
    run: i64,
    owner: &str,
    until: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let renewed = sync_run::Entity::update_many()
        .col_expr(sync_run::Column::LeaseExpiresAt, Expr::value(until))
        .filter(sync_run::Column::Id.eq(run))
        .filter(sync_run::Column::LeaseOwner.eq(owner))
        .filter(sync_run::Column::Status.eq(SyncRunStatus::Running))
        .exec(db)
        .await?;
    Ok(renewed.rows_affected == 1)
}

/// A run's counters: what its progress changes.
const COUNTS: [sync_run::Column; 13] = [
    sync_run::Column::PagesRead,
    sync_run::Column::UsersCreated,
    sync_run::Column::UsersUpdated,
    sync_run::Column::UsersSuspended,
    sync_run::Column::UsersRemoved,
    sync_run::Column::UsersArchived,
    sync_run::Column::UsersRestored,
    sync_run::Column::GroupsCreated,
    sync_run::Column::GroupsUpdated,
    sync_run::Column::GroupsRemoved,
    sync_run::Column::Retries,
    sync_run::Column::ThrottledMs,
    sync_run::Column::WarningCount,
];

/// `run` as an update of the columns a run's progress and end change.
fn saved_columns(run: sync_run::Model) -> sync_run::ActiveModel {
    let mut active = run.into_active_model();
    for col in [
        sync_run::Column::Status,
        sync_run::Column::StartedAt,
        sync_run::Column::FinishedAt,
        sync_run::Column::Error,
    ]
    .into_iter()
    .chain(COUNTS)
    {
        active.reset(col);
    }
    active
}

/// Saves the columns a run's progress and end change (its status, times, counts, warnings'
/// count, error); returns the run as saved.
pub async fn save<C: ConnectionTrait>(
    db: &C,
    run: sync_run::Model,
) -> DomainResult<sync_run::Model> {
    Ok(saved_columns(run).update(db).await?)
}

/// One sync run, if it exists.
pub async fn find(db: &impl super::Db, id: i64) -> Result<Option<sync_run::Model>, DbErr> {
    sync_run::Entity::find_by_id(id).one(db).await
}

/// The runs in flight, and those that ended since `since`.
pub async fn changed_since(
    db: &impl super::Db,
    since: DateTime<Utc>,
) -> Result<Vec<sync_run::Model>, DbErr> {
    sync_run::Entity::find()
        .filter(
            sea_orm::Condition::any()
                .add(
                    sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]),
                )
                .add(sync_run::Column::FinishedAt.gte(since)),
        )
        .all(db)
        .await
}

/// A page of the warnings kept for a run, in the order they came.
pub async fn warnings(
    db: &impl super::Db,
    run: i64,
    args: super::page::PageArgs,
) -> DomainResult<super::page::Page<sync_run_warning::Model>> {
    super::page::fetch(
        db,
        sync_run_warning::Entity::find().filter(sync_run_warning::Column::RunId.eq(run)),
        sync_run_warning::Column::Id,
        args,
        super::page::Direction::Asc,
    )
    .await
}

/// Stores a run's warnings, at most 1,000 rows a statement.
pub async fn record_warnings(
    db: &impl super::Db,
    rows: Vec<sync_run_warning::ActiveModel>,
) -> Result<(), DbErr> {
    for chunk in crate::db::statement_chunks(rows, 1_000) {
        sync_run_warning::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Saves a RUNNING run's counters; whether it was still running.
pub async fn save_progress(db: &impl super::Db, run: sync_run::Model) -> Result<bool, DbErr> {
    let id = run.id;
    let mut active = run.into_active_model();
    for col in COUNTS {
        active.reset(col);
    }
    let written = sync_run::Entity::update_many()
        .set(active)
        .filter(sync_run::Column::Id.eq(id))
        .filter(sync_run::Column::Status.eq(SyncRunStatus::Running))
        .exec(db)
        .await?;
    Ok(written.rows_affected == 1)
}

/// Which runs [`cancel_in_flight`] ends.
#[derive(Debug, Clone, Copy)]
pub enum Runs<'a> {
    Ids(&'a [i64]),
    OfIntegration(i64),
}

/// Marks the queued or running runs `which` names CANCELLED at `at`, saying `why`.
pub async fn cancel_in_flight(
    db: &impl super::Db,
    which: Runs<'_>,
    why: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let which = match which {
        Runs::Ids(ids) => sync_run::Column::Id.is_in(ids.iter().copied()),
        Runs::OfIntegration(id) => sync_run::Column::IntegrationId.eq(id),
    };
    sync_run::Entity::update_many()
        .col_expr(
            sync_run::Column::Status,
            Expr::value(SyncRunStatus::Cancelled),
        )
        .col_expr(sync_run::Column::FinishedAt, Expr::value(at))
        .col_expr(sync_run::Column::Error, Expr::value(why))
        .filter(which)
        .filter(sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]))
        .exec(db)
        .await
        .map(drop)
}

/// The integration's run in flight (queued or running), if any.
pub async fn in_flight(
    db: &impl super::Db,
    integration: i64,
) -> Result<Option<sync_run::Model>, DbErr> {
    sync_run::Entity::find()
        .filter(sync_run::Column::IntegrationId.eq(integration))
        .filter(sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]))
        .one(db)
        .await
}

/// The integration's newest run, if any.
pub async fn latest(
    db: &impl super::Db,
    integration: i64,
) -> Result<Option<sync_run::Model>, DbErr> {
    use sea_orm::QueryOrder;
    sync_run::Entity::find()
        .filter(sync_run::Column::IntegrationId.eq(integration))
        .order_by_desc(sync_run::Column::Id)
        .one(db)
        .await
}

/// The integration's HELD runs other than `except`.
pub async fn held_except(
    db: &impl super::Db,
    integration: i64,
    except: i64,
) -> Result<Vec<sync_run::Model>, DbErr> {
    sync_run::Entity::find()
        .filter(sync_run::Column::IntegrationId.eq(integration))
        .filter(sync_run::Column::Status.eq(SyncRunStatus::Held))
        .filter(sync_run::Column::Id.ne(except))
        .all(db)
        .await
}

/// Cancels HELD run `id` at `at`, saying `why`; the run as it now is, or `None` when it was no
/// longer HELD (another process ended it first).
pub async fn cancel_held(
    db: &impl super::Db,
    id: i64,
    why: &str,
    at: DateTime<Utc>,
) -> Result<Option<sync_run::Model>, DbErr> {
    let ended = sync_run::Entity::update_many()
        .col_expr(
            sync_run::Column::Status,
            Expr::value(SyncRunStatus::Cancelled),
        )
        .col_expr(sync_run::Column::FinishedAt, Expr::value(at))
        .col_expr(sync_run::Column::Error, Expr::value(why))
        .filter(sync_run::Column::Id.eq(id))
        .filter(sync_run::Column::Status.eq(SyncRunStatus::Held))
        .exec(db)
        .await?;
    if ended.rows_affected != 1 {
        return Ok(None);
    }
    find(db, id).await
}

/// Whether run `id` is RUNNING under `owner`'s lease.
pub async fn still_leased(db: &impl super::Db, id: i64, owner: &str) -> Result<bool, DbErr> {
    Ok(sync_run::Entity::find_by_id(id)
        .filter(sync_run::Column::LeaseOwner.eq(owner))
        .filter(sync_run::Column::Status.eq(SyncRunStatus::Running))
        .one(db)
        .await?
        .is_some())
}

/// Inserts a run.
pub async fn insert(
    db: &impl super::Db,
    row: sync_run::ActiveModel,
) -> Result<sync_run::Model, DbErr> {
    row.insert(db).await
}

/// Writes the changed columns of a run.
pub async fn update(
    db: &impl super::Db,
    row: sync_run::ActiveModel,
) -> Result<sync_run::Model, DbErr> {
    row.update(db).await
}
