//! Leases: a run belongs to the process that renews its lease. A heartbeat renews it while
//! the run goes on; a run whose process stopped renewing (killed, cut off from the database)
//! is marked FAILED by whichever process looks next, and its integration made due at once.

use super::SyncDeps;
use crate::{directory::now, error::DomainResult, store};
use tokio_util::sync::CancellationToken;

/// Runs whose process stopped renewing its lease (killed, or cut off from the database) are
/// marked FAILED without a sweep, and their integrations made due at once, so another process
/// syncs them again.
pub(super) async fn expire_leases(deps: &SyncDeps) -> DomainResult<()> {
    let now = now();
    for run in store::runs::lease_expired(&deps.db, now).await? {
        let owner = run.lease_owner.clone().unwrap_or_default();
        let error = format!(
            "the process running this sync ({owner}) stopped renewing its lease; nothing was removed"
        );
        let due = deps.schedule.clock.now();
        if let Some(failed) = store::runs::fail_expired(&deps.db, &run, error, now, due).await? {
            tracing::warn!(
                run = run.id,
                owner,
                "a sync run's lease expired; marked failed"
            );
            deps.events.publish(failed);
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
    let every = (deps.schedule.lease / 3).max(std::time::Duration::from_millis(50));
    loop {
        tokio::time::sleep(every).await;
        let renewed = store::runs::renew(&deps.db, run, &deps.owner, lease_until(deps)).await;
        match renewed {
            Ok(false) => {
                tracing::warn!(run, "the run's lease was lost; stopping at the next batch");
                stop.cancel();
            }
            Ok(true) => {}
            Err(err) => tracing::warn!(run, error = %err, "cannot renew a sync run's lease"),
        }
    }
}
