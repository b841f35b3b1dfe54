//! Sync runs: reading them. Creating and running them is the sync engine's (`crate::sync`).

use super::SyncRunId;
use crate::store::{
    self, Db,
    page::{Page, PageArgs},
};
use crate::{
    error::{DomainError, DomainResult},
    providers::clean::Warning,
};
use entity::{sync_run, sync_run_warning};
use sea_orm::Set;

/// One sync run, or `NOT_FOUND`.
pub async fn get(db: &impl Db, id: SyncRunId) -> DomainResult<sync_run::Model> {
    store::runs::find(db, id.0)
        .await?
        .ok_or(DomainError::NotFound { what: "sync run" })
}

/// A page of the warnings kept for a run, in the order they came.
pub async fn warnings(
    db: &impl Db,
    run: SyncRunId,
    args: PageArgs,
) -> DomainResult<Page<sync_run_warning::Model>> {
    store::runs::warnings(db, run.0, args).await
}

/// Stores the warnings kept for a run (at most `clean::MAX_WARNINGS_KEPT`), in the
/// transaction that records its end.
pub async fn record_warnings(
    db: &impl Db,
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
    Ok(store::runs::record_warnings(db, rows).await?)
}
