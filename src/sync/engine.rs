//! The sync actor: a handle (in the GraphQL context) sends commands; one loop owns the runs.
//! A request while a run of the integration is queued or running returns that run (R6); SCIM
//! integrations are refused (R6); integrations needing re-authentication are refused (R16).
//! Each run reads the directory through its provider and applies it (`reconcile`), stores a
//! rotated refresh token, and on `invalid_grant` puts the integration in NEEDS_REAUTH with its
//! data kept (R16).

use super::{
    SyncEvents,
    reconcile::{self, Counts, DeltaLinks, Job, Outcome, ReconcileError, Report, Threshold},
    schedule::Schedule,
};
use crate::{
    auth::Actor,
    directory::{IntegrationId, SyncRunId, connect, devices, integrations, now, sync_runs},
    error::{DomainError, DomainResult},
    providers::{ProviderError, entra::Entra, google::Google, http::Session},
    services::Services,
};
use entity::{
    enums::{DirectoryKind, IntegrationStatus, SyncRunStatus, SyncTrigger},
    integration, sync_run,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, Set,
};
use std::sync::Arc;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

/// What the engine needs.
#[derive(Clone)]
pub struct SyncDeps {
    pub db: DatabaseConnection,
    pub services: Arc<Services>,
    pub events: SyncEvents,
    pub threshold: Threshold,
    pub schedule: Schedule,
    /// This process, as the owner of the runs it executes (several processes may share a
    /// database).
    pub owner: String,
}

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
        let handle = self
            .tasks
            .spawn(execute(deps.clone(), run.clone(), confirmed, stop));
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = ticks.tick() => {
                if let Err(err) = schedule_due(&deps, &mut running).await {
                    tracing::warn!(error = %err, "the scheduler could not look for due syncs");
                }
            }
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
    if let Err(err) = mark_cancelled(
        &deps.db,
        sync_run::Column::Id.is_in(mine),
        "stopped: dirgate shut down mid-batch; nothing was removed",
    )
    .await
    {
        tracing::warn!(error = %err, "cannot mark the runs in flight as cancelled");
    }
}

/// Marks the queued or running runs that `which` selects as CANCELLED, saying why.
async fn mark_cancelled(
    db: &DatabaseConnection,
    which: sea_orm::sea_query::SimpleExpr,
    why: &str,
) -> DomainResult<()> {
    use sea_orm::sea_query::Expr;
    sync_run::Entity::update_many()
        .col_expr(
            sync_run::Column::Status,
            Expr::value(SyncRunStatus::Cancelled),
        )
        .col_expr(sync_run::Column::FinishedAt, Expr::value(now()))
        .col_expr(sync_run::Column::Error, Expr::value(why))
        .filter(which)
        .filter(sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]))
        .exec(db)
        .await?;
    Ok(())
}

/// Requests a SCHEDULED sync of every ACTIVE Entra/Google integration that is due. Integrations
/// needing re-authentication are not scheduled (R16).
async fn schedule_due(deps: &SyncDeps, running: &mut Running) -> DomainResult<()> {
    expire_leases(deps).await?;
    crate::directory::connect::forget_spent_verifiers(&deps.db).await?;
    let now = deps.schedule.clock.now();
    let due = integration::Entity::find()
        .filter(integration::Column::Status.eq(IntegrationStatus::Active))
        .filter(
            integration::Column::Kind
                .is_in([DirectoryKind::EntraId, DirectoryKind::GoogleWorkspace]),
        )
        .filter(
            sea_orm::Condition::any()
                .add(integration::Column::NextSyncAt.is_null())
                .add(integration::Column::NextSyncAt.lte(now)),
        )
        .all(&deps.db)
        .await?;
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

/// Runs whose process stopped renewing its lease (killed, or cut off from the database) are
/// marked FAILED without a sweep, and their integrations made due at once, so another process
/// syncs them again.
async fn expire_leases(deps: &SyncDeps) -> DomainResult<()> {
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

fn lease_until(deps: &SyncDeps) -> chrono::DateTime<chrono::Utc> {
    now() + chrono::Duration::from_std(deps.schedule.lease).unwrap_or(chrono::Duration::MAX)
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
    Ok(sync_run::Entity::find()
        .filter(sync_run::Column::IntegrationId.eq(integration))
        .filter(sync_run::Column::Status.is_in([SyncRunStatus::Queued, SyncRunStatus::Running]))
        .one(db)
        .await?)
}

fn check_syncable(integration: &integration::Model) -> DomainResult<()> {
    if integration.kind == DirectoryKind::Scim {
        return Err(DomainError::PushOnlyIntegration);
    }
    match integration.status {
        IntegrationStatus::Active => Ok(()),
        IntegrationStatus::NeedsReauth => Err(DomainError::NeedsReauth),
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
        lease_owner: Set(Some(deps.owner.clone())),
        lease_expires_at: Set(Some(lease_until(deps))),
        ..Default::default()
    }
    .insert(&deps.db)
    .await;
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
    running.spawn(deps, run.clone(), false);
    Ok(run)
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
    let latest = sync_run::Entity::find()
        .filter(sync_run::Column::IntegrationId.eq(run.integration_id))
        .order_by_desc(sync_run::Column::Id)
        .one(&deps.db)
        .await?;
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
    let run = match active.update(&deps.db).await {
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
    mark_cancelled(
        &deps.db,
        sync_run::Column::IntegrationId.eq(id.0),
        "cancelled; nothing was removed",
    )
    .await?;
    Ok(())
}

fn with_counts(mut run: sync_run::Model, c: &Counts) -> sync_run::Model {
    run.pages_read = c.pages_read;
    run.users_created = c.users_created;
    run.users_updated = c.users_updated;
    run.users_suspended = c.users_suspended;
    run.users_removed = c.users_removed;
    run.users_archived = c.users_archived;
    run.users_restored = c.users_restored;
    run.groups_created = c.groups_created;
    run.groups_updated = c.groups_updated;
    run.groups_removed = c.groups_removed;
    run
}

async fn save(deps: &SyncDeps, run: sync_run::Model) -> DomainResult<sync_run::Model> {
    let mut active = run.into_active_model();
    for col in [
        sync_run::Column::Status,
        sync_run::Column::StartedAt,
        sync_run::Column::FinishedAt,
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
        sync_run::Column::Error,
    ] {
        active.reset(col);
    }
    let run = active.update(&deps.db).await?;
    deps.events.publish(run.clone());
    Ok(run)
}

/// One run, from RUNNING to SUCCEEDED, HELD or FAILED.
async fn execute(
    deps: SyncDeps,
    mut run: sync_run::Model,
    confirmed: bool,
    stop: CancellationToken,
) {
    run.status = SyncRunStatus::Running;
    run.started_at = Some(now());
    let run = match save(&deps, run).await {
        Ok(run) => run,
        Err(err) => {
            tracing::error!(error = %err, "cannot start a sync run");
            return;
        }
    };
    let outcome = {
        let heartbeat = heartbeat(&deps, run.id, &stop);
        tokio::pin!(heartbeat);
        let sync = sync(&deps, &run, confirmed, &stop);
        tokio::pin!(sync);
        loop {
            tokio::select! {
                outcome = &mut sync => break outcome,
                () = &mut heartbeat => {}
            }
        }
    };
    // A run whose lease was taken over is another process's business now.
    let still_mine = sync_run::Entity::find_by_id(run.id)
        .filter(sync_run::Column::LeaseOwner.eq(deps.owner.as_str()))
        .filter(sync_run::Column::Status.eq(SyncRunStatus::Running))
        .one(&deps.db)
        .await;
    if !matches!(still_mine, Ok(Some(_))) {
        tracing::warn!(
            run = run.id,
            "this process lost the run's lease; its outcome is dropped"
        );
        return;
    }
    let mut run = run;
    run.finished_at = Some(now());
    match outcome {
        Err(ReconcileError::Stopped) => {
            run.status = SyncRunStatus::Cancelled;
            run.error =
                Some("stopped at a batch boundary: dirgate shut down; nothing was removed".into());
        }
        Ok((Outcome::Applied(counts), _)) => {
            run = with_counts(run, &counts);
            run.status = SyncRunStatus::Succeeded;
        }
        Ok((
            Outcome::Held {
                counts,
                would_remove,
                of,
            },
            _,
        )) => {
            run = with_counts(run, &counts);
            run.status = SyncRunStatus::Held;
            run.error = Some(format!(
                "held: this sync would remove {would_remove} of {of} users (more than {}% and more than {}); nothing was removed. Confirm the run to apply it.",
                deps.threshold.percent, deps.threshold.min_users
            ));
        }
        Err(err) => {
            run.status = SyncRunStatus::Failed;
            run.error = Some(match &err {
                ReconcileError::Provider(p) => format!("{p}; nothing was removed"),
                ReconcileError::Domain(DomainError::Internal(cause)) => {
                    tracing::error!(error = %cause, run = run.id, "sync failed");
                    "internal error (see the server log); nothing was removed".into()
                }
                ReconcileError::Domain(d) => format!("{d}; nothing was removed"),
                ReconcileError::Stopped => "stopped; nothing was removed".into(),
            });
            if let ReconcileError::Provider(ProviderError::NeedsReauth { detail, .. }) = &err {
                mark_needs_reauth(&deps, run.integration_id, detail).await;
            }
        }
    }
    tracing::info!(
        run = run.id,
        integration = run.integration_id,
        status = ?run.status,
        error = run.error.as_deref().unwrap_or_default(),
        "sync run finished"
    );
    if let Err(err) = save(&deps, run).await {
        tracing::error!(error = %err, "cannot save a sync run");
    }
}

/// Renews the run's lease until the future is dropped; stops the run when the lease was lost
/// (another process marked it failed). Never completes by itself.
async fn heartbeat(deps: &SyncDeps, run: i64, stop: &CancellationToken) {
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

async fn mark_needs_reauth(deps: &SyncDeps, integration_id: i64, detail: &str) {
    let Ok(Some(model)) = integration::Entity::find_by_id(integration_id)
        .one(&deps.db)
        .await
    else {
        return;
    };
    let mut active = model.into_active_model();
    active.status = Set(IntegrationStatus::NeedsReauth);
    active.status_reason = Set(Some(format!(
        "the provider refused the grant: {detail}; re-authenticate the integration"
    )));
    active.updated_at = Set(now());
    if let Err(err) = active.update(&deps.db).await {
        tracing::error!(error = %err, "cannot mark an integration as needing re-authentication");
    }
}

/// Reads and applies the directory, then sets when the next scheduled sync is due, whatever
/// the outcome (R5).
async fn sync(
    deps: &SyncDeps,
    run: &sync_run::Model,
    confirmed: bool,
    stop: &CancellationToken,
) -> Result<(Outcome, Vec<i64>), ReconcileError> {
    let integration = integrations::get(&deps.db, IntegrationId(run.integration_id)).await?;
    let result = read_and_apply(deps, run, &integration, confirmed, stop).await;
    let next =
        deps.schedule.clock.now() + deps.schedule.interval(integration.sync_interval_minutes);
    let mut update = integration::Entity::update_many()
        .col_expr(
            integration::Column::NextSyncAt,
            sea_orm::sea_query::Expr::value(next),
        )
        .filter(integration::Column::Id.eq(integration.id));
    if result.is_ok() {
        update = update.col_expr(
            integration::Column::LastSyncedAt,
            sea_orm::sea_query::Expr::value(deps.schedule.clock.now()),
        );
    }
    if let Ok((_, Some(state))) = &result {
        update = update.col_expr(
            integration::Column::DeltaState,
            sea_orm::sea_query::Expr::value(serde_json::to_string(state).ok()),
        );
    }
    update.exec(&deps.db).await?;
    let (
        Report {
            outcome, touched, ..
        },
        _,
    ) = result?;
    if integration.auto_assign_devices && !touched.is_empty() {
        devices::auto_assign_users(&deps.db, &Actor::sync(), &touched).await?;
    }
    Ok((outcome, touched))
}

/// Where an Entra integration's incremental reads start, and when it was last read in full;
/// stored as JSON in `integrations.delta_state`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeltaState {
    #[serde(flatten)]
    pub links: DeltaLinks,
    pub full_at: chrono::DateTime<chrono::Utc>,
}

/// Opens a session with the integration's grant (a rotated refresh token is stored the moment
/// the provider issues it) and reconciles. Entra integrations read changes only (Graph delta) when they
/// hold delta links from a full read less than `full_every` ago, else read everything (and
/// so get fresh links); an expired delta token falls back to a full read. Returns the delta
/// state to store, if any.
async fn read_and_apply(
    deps: &SyncDeps,
    run: &sync_run::Model,
    integration: &integration::Model,
    confirmed: bool,
    stop: &CancellationToken,
) -> Result<(Report, Option<DeltaState>), ReconcileError> {
    let refresh_token = connect::open_refresh_token(&deps.services.secrets, integration)?;
    let settings = deps.services.providers.clone();
    let store = {
        let (db, services, id) = (deps.db.clone(), deps.services.clone(), integration.id);
        Arc::new(move |token: String| {
            let (db, services) = (db.clone(), services.clone());
            Box::pin(async move {
                if let Err(err) = store_refresh_token(&db, &services, id, &token).await {
                    tracing::error!(error = %err, integration = id, "cannot store a rotated refresh token");
                }
            }) as std::pin::Pin<Box<dyn Future<Output = ()> + Send>>
        })
    };
    let session = Arc::new(
        Session::new(
            deps.services.http.clone(),
            settings.clone(),
            integration.kind,
            integration.tenant.clone(),
            refresh_token,
        )
        .on_rotate(store),
    );
    let publish_run = run.clone();
    let events = deps.events.clone();
    let progress = move |c: &Counts| events.publish(with_counts(publish_run.clone(), c));
    let job = Job {
        db: &deps.db,
        integration,
        threshold: deps.threshold,
        confirmed,
        progress: &progress,
        stop,
    };
    match integration.kind {
        DirectoryKind::GoogleWorkspace => {
            let provider = Google::new(
                session.clone(),
                &settings.google.api,
                settings.google_page_size,
            );
            reconcile::full_sync(&job, &provider)
                .await
                .map(|report| (report, None))
        }
        _ => {
            let graph = Entra::new(
                session.clone(),
                &settings.entra.api,
                settings.entra_page_size,
            );
            let started = deps.schedule.clock.now();
            let stored = integration
                .delta_state
                .as_deref()
                .and_then(|s| serde_json::from_str::<DeltaState>(s).ok())
                .filter(|state| started - state.full_at < deps.schedule.full_every);
            let incremental = match &stored {
                Some(state) => match reconcile::delta_sync(&job, &graph, &state.links).await {
                    Err(ReconcileError::Provider(ProviderError::DeltaExpired {
                        detail, ..
                    })) => {
                        tracing::info!(
                            integration = integration.id,
                            detail,
                            "the delta token expired; reading the whole directory"
                        );
                        None
                    }
                    other => Some(other.map(|report| {
                        let state = report.delta.clone().map(|links| DeltaState {
                            links,
                            full_at: state.full_at,
                        });
                        (report, state)
                    })),
                },
                None => None,
            };
            match incremental {
                Some(result) => result,
                None => reconcile::full_sync(&job, &graph.delta())
                    .await
                    .map(|report| {
                        let state = report.delta.clone().map(|links| DeltaState {
                            links,
                            full_at: started,
                        });
                        (report, state)
                    }),
            }
        }
    }
}

async fn store_refresh_token(
    db: &DatabaseConnection,
    services: &Services,
    id: i64,
    token: &str,
) -> DomainResult<()> {
    let sealed = connect::seal_refresh_token(&services.secrets, id, token);
    integration::Entity::update_many()
        .col_expr(
            integration::Column::RefreshTokenEnc,
            sea_orm::sea_query::Expr::value(sealed),
        )
        .filter(integration::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}
