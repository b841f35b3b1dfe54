//! Leases: a run belongs to the process that renews its lease. A heartbeat renews it while
//! the run goes on; a run whose process stopped renewing (killed, cut off from the database)
//! is marked FAILED by whichever process looks next, and its integration made due at once.

use super::SyncDeps;
use crate::{directory::now, error::DomainResult};
use entity::{enums::SyncRunStatus, integration, sync_run};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio_util::sync::CancellationToken;

/// Runs whose process stopped renewing its lease (killed, or cut off from the database) are
/// marked FAILED without a sweep, and their integrations made due at once, so another process
/// syncs them again.
pub(super) async fn expire_leases(deps: &SyncDeps) -> DomainResult<()> {
    use sea_orm::sea_query::Expr;
    let now = now();
    let stale = sync_run::Entity::find()
        .filter(sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]))
        .filter(sync_run::Column::LeaseExpiresAt.lt(now))
        .all(&deps.db)
        .await?;
    for run in stale {
        let owner = run.lease_owner.clone().unwrap_or_default();
        let failed = sync_run::Entity::update_many()
            .col_expr(sync_run::Column::Status, Expr::value(SyncRunStatus::Failed))
            .col_expr(sync_run::Column::FinishedAt, Expr::value(now))
            .col_expr(
                sync_run::Column::Error,
                Expr::value(format!(
                    "the process running this sync ({owner}) stopped renewing its lease; nothing was removed"
                )),
            )
            .filter(sync_run::Column::Id.eq(run.id))
            .filter(sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]))
            .filter(sync_run::Column::LeaseExpiresAt.lt(now))
            .exec(&deps.db)
            .await?;
        if failed.rows_affected == 1 {
            tracing::warn!(
                run = run.id,
                owner,
                "a sync run's lease expired; marked failed"
            );
            integration::Entity::update_many()
                .col_expr(
                    integration::Column::NextSyncAt,
                    Expr::value(deps.schedule.clock.now()),
                )
                .filter(integration::Column::Id.eq(run.integration_id))
                .exec(&deps.db)
                .await?;
            if let Some(run) = sync_run::Entity::find_by_id(run.id).one(&deps.db).await? {
                deps.events.publish(run);
            }
        }
    }
    Ok(())
}

pub(super) fn lease_until(deps: &SyncDeps) -> chrono::DateTime<chrono::Utc> {
    now() + chrono::Duration::from_std(deps.schedule.lease).unwrap_or(chrono::Duration::MAX)
}

/// Renews the run's lease until the future is dropped; stops the run when the lease was lost
/// (another process marked it failed). Never completes by itself.
pub(super) async fn heartbeat(deps: &SyncDeps, run: i64, stop: &CancellationToken) {
    use sea_orm::sea_query::Expr;
    let every = (deps.schedule.lease / 3).max(std::time::Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        let renewed = sync_run::Entity::update_many()
            .col_expr(
                sync_run::Column::LeaseExpiresAt,
                Expr::value(lease_until(deps)),
            )
            .filter(sync_run::Column::Id.eq(run))
            .filter(sync_run::Column::LeaseOwner.eq(deps.owner.as_str()))
            .filter(sync_run::Column::Status.eq(SyncRunStatus::Running))
            .exec(&deps.db)
            .await;
        match renewed {
            Ok(r) if r.rows_affected == 0 => {
                tracing::warn!(run, "the run's lease was lost; stopping at the next batch");
                stop.cancel();
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(run, error = %err, "cannot renew a sync run's lease"),
        }
    }
}
