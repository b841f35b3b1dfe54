//! The sync actor: a handle (in the GraphQL context) sends commands; one loop owns the runs.
//! A request while a run of the integration is queued or running returns that run (R6); SCIM
//! integrations are refused (R6); integrations needing re-authentication are refused (R16).
//! Each run is a task of its own (`run.rs`) that renews its lease (`leases.rs`); the loop also
//! schedules due integrations every tick and expires the leases of dead processes.

use super::{
    SyncDeps,
    leases::{expire_leases, lease_until},
    run::execute,
};
use crate::store::{
    self,
    runs::{self, Runs},
};
use crate::{
    directory::{IntegrationId, SyncRunId, integrations, now, sync_runs},
    error::{DomainError, DomainResult},
};
use entity::{
    enums::{DirectoryKind, IntegrationStatus, SyncRunStatus, SyncTrigger},
    integration, sync_run,
};
use sea_orm::{DatabaseConnection, IntoActiveModel, Set};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

/// A name for this process that no other process shares: host, pid and a random part.
pub fn process_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!(
        "{host}:{}:{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// How long a stopping engine waits for its runs to reach a batch boundary before it aborts
/// them.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

enum Command {
    Request {
        integration: IntegrationId,
        trigger: SyncTrigger,
        reply: oneshot::Sender<DomainResult<sync_run::Model>>,
    },
    Confirm {
        run: SyncRunId,
        reply: oneshot::Sender<DomainResult<sync_run::Model>>,
    },
    Cancel {
        integration: IntegrationId,
        reply: oneshot::Sender<DomainResult<()>>,
    },
}

/// The runs in flight: their tasks, and which integration each serves.
struct Running {
    tasks: JoinSet<()>,
    by_integration: std::collections::HashMap<i64, (i64, tokio::task::AbortHandle)>,
    /// Cancelled at shutdown: every run stops at its next batch boundary.
    stops: CancellationToken,
}

impl Running {
    fn spawn(&mut self, deps: &SyncDeps, run: sync_run::Model, confirmed: bool) {
        let stop = self.stops.child_token();
        // Every log line of the run carries its run and integration ids.
        let span = tracing::info_span!("sync_run", run = run.id, integration = run.integration_id);
        let handle = self.tasks.spawn(tracing::Instrument::instrument(
            execute(deps.clone(), run.clone(), confirmed, stop),
            span,
        ));
        self.by_integration
            .insert(run.integration_id, (run.id, handle));
    }
}

/// Sends commands to the sync engine. Cheap to clone.
#[derive(Clone)]
pub struct SyncHandle {
    tx: mpsc::Sender<Command>,
}

fn stopped() -> DomainError {
    DomainError::internal(std::io::Error::other("the sync engine has stopped"))
}

impl SyncHandle {
    /// Asks for a sync of an integration; returns the new run, or the one already queued or
    /// running.
    pub async fn request(
        &self,
        integration: IntegrationId,
        trigger: SyncTrigger,
    ) -> DomainResult<sync_run::Model> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Request {
                integration,
                trigger,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// After a sign-in completed (the OAuth callback or `completeAuthorization`): an ACTIVE
    /// integration's first sync starts at once (R5). A failure to start is logged, not the
    /// caller's error: the scheduler picks the integration up.
    pub async fn authorized(&self, integration: &entity::integration::Model) {
        if integration.status != entity::enums::IntegrationStatus::Active {
            return;
        }
        if let Err(err) = self
            .request(IntegrationId(integration.id), SyncTrigger::Initial)
            .await
        {
            tracing::warn!(error = %err, integration = integration.id, "the first sync did not start");
        }
    }

    /// Cancels the integration's run in flight, if any (before deleting it, R9).
    pub async fn cancel(&self, integration: IntegrationId) -> DomainResult<()> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Cancel { integration, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Applies a HELD run: the sync runs again with removals allowed past the threshold (R15).
    pub async fn confirm(&self, run: SyncRunId) -> DomainResult<sync_run::Model> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Confirm { run, reply })
            .await
            .map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

/// Starts the engine; it stops when `shutdown` is cancelled, cancelling the runs in flight
/// (the returned task ends once it has).
pub fn start(
    deps: SyncDeps,
    shutdown: CancellationToken,
) -> (SyncHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(run(deps, rx, shutdown));
    (SyncHandle { tx }, task)
}

async fn run(deps: SyncDeps, mut rx: mpsc::Receiver<Command>, shutdown: CancellationToken) {
    let mut running = Running {
        tasks: JoinSet::new(),
        by_integration: Default::default(),
        stops: CancellationToken::new(),
    };
    // The first look comes one tick after start, not at once.
    let mut ticks = tokio::time::interval_at(
        tokio::time::Instant::now() + deps.schedule.tick,
        deps.schedule.tick,
    );
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut failures = crate::error::FailureLog::default();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticks.tick() => match schedule_due(&deps, &mut running).await {
                Ok(()) => failures.succeeded("the scheduler"),
                Err(err) => failures.failed("the scheduler could not look for due syncs", &err),
            },
            command = rx.recv() => match command {
                None => break,
                Some(Command::Request { integration, trigger, reply }) => {
                    let _ = reply.send(request(&deps, &mut running, integration, trigger).await);
                }
                Some(Command::Confirm { run, reply }) => {
                    let _ = reply.send(confirm(&deps, &mut running, run).await);
                }
                Some(Command::Cancel { integration, reply }) => {
                    let _ = reply.send(cancel(&deps, &mut running, integration).await);
                }
            },
            Some(_) = running.tasks.join_next(), if !running.tasks.is_empty() => {}
        }
    }
    // Let every run stop at its next batch boundary (it marks itself CANCELLED), then abort
    // what is still going after the grace period.
    running.stops.cancel();
    tracing::info!(
        runs = running.tasks.len(),
        "stopping the sync runs at their next batch boundary"
    );
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while running.tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        running.tasks.abort_all();
        while running.tasks.join_next().await.is_some() {}
    }
    // Only the runs this engine started: another process may share the database.
    let mine: Vec<i64> = running
        .by_integration
        .values()
        .map(|(run, _)| *run)
        .collect();
    if let Err(err) = runs::cancel_in_flight(
        &deps.db,
        Runs::Ids(&mine),
        "stopped: dirgate shut down mid-batch; nothing was removed",
        now(),
    )
    .await
    {
        tracing::warn!(error = %err, "cannot mark the runs in flight as cancelled");
    }
}

/// Requests a SCHEDULED sync of every ACTIVE Entra/Google integration that is due. Integrations
/// needing re-authentication are not scheduled (R16).
async fn schedule_due(deps: &SyncDeps, running: &mut Running) -> DomainResult<()> {
    expire_leases(deps).await?;
    crate::directory::connect::forget_spent_verifiers(&deps.db).await?;
    let now = deps.schedule.clock.now();
    let due = store::integrations::due(&deps.db, now).await?;
    for candidate in due {
        // Look for a run in flight first, then read the integration again: a run that
        // finished in between has moved `next_sync_at` already.
        if active_run(&deps.db, candidate.id).await?.is_some() {
            continue;
        }
        let integration = integrations::get(&deps.db, IntegrationId(candidate.id)).await?;
        let due = integration.next_sync_at.is_none_or(|at| at <= now);
        if due && check_syncable(&integration).is_ok() {
            start_run(deps, running, &integration, SyncTrigger::Scheduled).await?;
        }
    }
    Ok(())
}

/// Whether a database error is the one-run-in-flight index refusing a second run.
fn is_conflict(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

async fn active_run(
    db: &DatabaseConnection,
    integration: i64,
) -> DomainResult<Option<sync_run::Model>> {
    Ok(runs::in_flight(db, integration).await?)
}

fn check_syncable(integration: &integration::Model) -> DomainResult<()> {
    if integration.kind == DirectoryKind::Scim {
        return Err(DomainError::PushOnlyIntegration);
    }
    match integration.status {
        IntegrationStatus::Active => Ok(()),
        IntegrationStatus::NeedsReauth => Err(DomainError::NeedsReauth),
        IntegrationStatus::AwaitingScope => Err(DomainError::invalid(
            "id",
            "the integration waits for its scope: choose what it imports (updateIntegrationScope) first",
        )),
        _ => Err(DomainError::invalid(
            "id",
            "the integration is not authorised yet: complete its sign-in first",
        )),
    }
}

async fn request(
    deps: &SyncDeps,
    running: &mut Running,
    id: IntegrationId,
    trigger: SyncTrigger,
) -> DomainResult<sync_run::Model> {
    let integration = integrations::get(&deps.db, id).await?;
    check_syncable(&integration)?;
    if let Some(run) = active_run(&deps.db, integration.id).await? {
        return Ok(run);
    }
    start_run(deps, running, &integration, trigger).await
}

/// Queues and spawns a run of `integration`.
async fn start_run(
    deps: &SyncDeps,
    running: &mut Running,
    integration: &integration::Model,
    trigger: SyncTrigger,
) -> DomainResult<sync_run::Model> {
    let run = sync_run::ActiveModel {
        integration_id: Set(integration.id),
        trigger: Set(trigger),
        status: Set(SyncRunStatus::Queued),
        queued_at: Set(now()),
        pages_read: Set(0),
        users_created: Set(0),
        users_updated: Set(0),
        users_suspended: Set(0),
        users_removed: Set(0),
        users_archived: Set(0),
        users_restored: Set(0),
        groups_created: Set(0),
        groups_updated: Set(0),
        groups_removed: Set(0),
        retries: Set(0),
        throttled_ms: Set(0),
        warning_count: Set(0),
        lease_owner: Set(Some(deps.owner.clone())),
        lease_expires_at: Set(Some(lease_until(deps))),
        ..Default::default()
    };
    let run = runs::insert(&deps.db, run).await;
    let run = match run {
        Ok(run) => run,
        // Another process queued a run of this integration first: that one it is.
        Err(err) if is_conflict(&err) => {
            return match active_run(&deps.db, integration.id).await? {
                Some(run) => Ok(run),
                None => Err(err.into()),
            };
        }
        Err(err) => return Err(err.into()),
    };
    deps.events.publish(run.clone());
    supersede_held(deps, &run).await?;
    running.spawn(deps, run.clone(), false);
    Ok(run)
}

/// A newer run of an integration ends its HELD runs (CANCELLED, saying why): their
/// removals were decided on an older read, and the newer run decides again (R15).
async fn supersede_held(deps: &SyncDeps, newer: &sync_run::Model) -> DomainResult<()> {
    const WHY: &str = "superseded by a newer sync, which decides the removals again; nothing of this run was removed";
    let held = runs::held_except(&deps.db, newer.integration_id, newer.id).await?;
    for old in held {
        if let Some(run) = runs::cancel_held(&deps.db, old.id, WHY, now()).await? {
            deps.events.publish(run);
        }
    }
    Ok(())
}

async fn confirm(
    deps: &SyncDeps,
    running: &mut Running,
    id: SyncRunId,
) -> DomainResult<sync_run::Model> {
    let run = sync_runs::get(&deps.db, id).await?;
    if run.status != SyncRunStatus::Held {
        return Err(DomainError::invalid(
            "id",
            "only a HELD sync run can be confirmed",
        ));
    }
    let latest = runs::latest(&deps.db, run.integration_id).await?;
    if latest.is_some_and(|l| l.id != run.id) {
        return Err(DomainError::invalid(
            "id",
            "a newer sync ran since; confirm that one instead",
        ));
    }
    let integration = integrations::get(&deps.db, IntegrationId(run.integration_id)).await?;
    check_syncable(&integration)?;
    let mut active = run.into_active_model();
    active.status = Set(SyncRunStatus::Queued);
    active.error = Set(None);
    active.lease_owner = Set(Some(deps.owner.clone()));
    active.lease_expires_at = Set(Some(lease_until(deps)));
    let run = match runs::update(&deps.db, active).await {
        Ok(run) => run,
        Err(err) if is_conflict(&err) => {
            return Err(DomainError::invalid(
                "id",
                "a sync of this integration is running; confirm after it ends",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    deps.events.publish(run.clone());
    running.spawn(deps, run.clone(), true);
    Ok(run)
}

async fn cancel(deps: &SyncDeps, running: &mut Running, id: IntegrationId) -> DomainResult<()> {
    if let Some((_, handle)) = running.by_integration.remove(&id.0) {
        handle.abort();
    }
    runs::cancel_in_flight(
        &deps.db,
        Runs::OfIntegration(id.0),
        "cancelled; nothing was removed",
        now(),
    )
    .await?;
    Ok(())
}
