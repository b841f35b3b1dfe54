//! Sync runs: reading them. Creating and running them is the sync engine's (`crate::sync`).

use super::SyncRunId;
use crate::store::page::{self, Direction, Page, PageArgs};
use crate::{
    error::{DomainError, DomainResult},
    providers::clean::Warning,
};
use entity::{sync_run, sync_run_warning};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

/// One sync run, or `NOT_FOUND`.
pub async fn get<C: ConnectionTrait>(db: &C, id: SyncRunId) -> DomainResult<sync_run::Model> {
    sync_run::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound { what: "sync run" })
}

/// A page of the warnings kept for a run, in the order they came.
pub async fn warnings<C: ConnectionTrait>(
    db: &C,
    run: SyncRunId,
    args: PageArgs,
) -> DomainResult<Page<sync_run_warning::Model>> {
    page::fetch(
        db,
        sync_run_warning::Entity::find().filter(sync_run_warning::Column::RunId.eq(run.0)),
        sync_run_warning::Column::Id,
        args,
        Direction::Asc,
    )
    .await
}

/// Stores the warnings kept for a run (at most `clean::MAX_WARNINGS_KEPT`), in the
/// transaction that records its end.
pub async fn record_warnings<C: ConnectionTrait>(
    db: &C,
    run: SyncRunId,
    warnings: Vec<Warning>,
) -> DomainResult<()> {
    let rows: Vec<sync_run_warning::ActiveModel> = warnings
        .into_iter()
        .map(|w| sync_run_warning::ActiveModel {
            run_id: Set(run.0),
            object_kind: Set(w.object.as_str().to_owned()),
            external_id: Set(w.external_id),
            field: Set(w.field.map(str::to_owned)),
            action: Set(w.action.as_str().to_owned()),
            message: Set(w.message),
            ..Default::default()
        })
        .collect();
    for chunk in crate::db::statement_chunks(rows, 1_000) {
        sync_run_warning::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}
