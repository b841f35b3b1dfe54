//! The end of a sync run: its columns and event saved in one transaction (tried again while
//! the database refuses writes for its storage, so the run ends with its own cause), and its
//! figures for the metrics.

use super::SyncDeps;
use crate::{
    directory::{SyncRunId, events::NewEvent},
    error::{DomainError, DomainResult},
    providers::clean::Warnings,
    store,
};
use entity::{
    enums::{DirectoryKind, SyncRunStatus, SyncTrigger},
    sync_run,
};
use tokio_util::sync::CancellationToken;

/// Saves a run's end; while the database refuses writes for its storage, tries again (every
/// few seconds, until shutdown), so the run ends with its own cause as soon as the database
/// takes writes, not with a lease that ran out.
pub(super) async fn save_end(
    deps: &SyncDeps,
    run: sync_run::Model,
    warnings: &Warnings,
    stop: &CancellationToken,
) {
    let mut wait = std::time::Duration::from_millis(250);
    loop {
        match finish(deps, run.clone(), warnings).await {
            Ok(()) => return,
            Err(DomainError::Unavailable(_)) if !stop.is_cancelled() => {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = stop.cancelled() => {}
                }
                wait = (wait * 2).min(SAVE_RETRY_MAX);
            }
            Err(err) => {
                tracing::error!(error = %err, run = run.id, "cannot save a sync run's end");
                return;
            }
        }
    }
}

/// The longest wait between two tries to save a run's end while the database refuses writes.
const SAVE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(5);

/// Saves a run's end and its event in one transaction, then announces it: `sync_run.held`,
/// or `sync_run.finished` for a run that changed something or did not succeed (a successful
/// run that changed nothing writes no event, so an unchanged re-sync is silent).
async fn finish(deps: &SyncDeps, run: sync_run::Model, warnings: &Warnings) -> DomainResult<()> {
    let changed = run.users_created
        + run.users_updated
        + run.users_suspended
        + run.users_removed
        + run.users_archived
        + run.users_restored
        + run.groups_created
        + run.groups_updated
        + run.groups_removed
        > 0;
    let event = match run.status {
        SyncRunStatus::Held => Some("sync_run.held"),
        SyncRunStatus::Succeeded if !changed => None,
        _ => Some("sync_run.finished"),
    };
    let txn = crate::db::begin_write(&deps.db).await?;
    let mut run = run;
    run.warning_count = i32::try_from(warnings.count()).unwrap_or(i32::MAX);
    let run = store::runs::save(&txn, run).await?;
    crate::directory::sync_runs::record_warnings(&txn, SyncRunId(run.id), warnings.kept()).await?;
    let events = event
        .map(|e| NewEvent::sync_run(e, &run))
        .into_iter()
        .collect();
    crate::directory::events::record(&txn, events).await?;
    txn.commit().await?;
    deps.events.publish(run);
    Ok(())
}

/// The `provider` label of a kind's metrics.
pub(super) fn provider_label(kind: DirectoryKind) -> &'static str {
    match kind {
        DirectoryKind::EntraId => "entra",
        DirectoryKind::GoogleWorkspace => "google",
        DirectoryKind::Scim => "scim",
    }
}

/// A finished run's figures for `crate::metrics::sync_run`.
pub(super) fn figures(
    run: &sync_run::Model,
    provider: &'static str,
    elapsed: std::time::Duration,
) -> crate::metrics::RunFigures {
    let n = |v: i32| u64::try_from(v).unwrap_or(0);
    crate::metrics::RunFigures {
        provider,
        trigger: match run.trigger {
            SyncTrigger::Initial => "initial",
            SyncTrigger::Scheduled => "scheduled",
            SyncTrigger::Manual => "manual",
        },
        outcome: match run.status {
            SyncRunStatus::Succeeded => "succeeded",
            SyncRunStatus::Held => "held",
            SyncRunStatus::Cancelled => "cancelled",
            _ => "failed",
        },
        elapsed,
        pages_read: n(run.pages_read),
        throttled: std::time::Duration::from_millis(u64::try_from(run.throttled_ms).unwrap_or(0)),
        users: [
            ("created", n(run.users_created)),
            ("updated", n(run.users_updated)),
            ("suspended", n(run.users_suspended)),
            ("archived", n(run.users_archived)),
            ("restored", n(run.users_restored)),
            ("removed", n(run.users_removed)),
        ],
        groups: [
            ("created", n(run.groups_created)),
            ("updated", n(run.groups_updated)),
            ("removed", n(run.groups_removed)),
        ],
        warnings: [
            ("cleaned", 0),
            ("truncated", 0),
            ("skipped", 0),
            ("ignored_member", 0),
        ],
    }
}
