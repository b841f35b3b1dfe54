//! One sync run, from RUNNING to SUCCEEDED, HELD, FAILED or CANCELLED: it opens a session
//! with the integration's grant (a rotated refresh token is stored the moment the provider
//! issues it), reads the directory through the integration's provider and applies it
//! (`reconcile`), renews its lease as it goes, and on a refused grant puts the integration in
//! NEEDS_REAUTH with its data kept (R16).

use super::{
    SyncDeps,
    ending::{figures, provider_label, save_end},
    leases::heartbeat,
    reconcile::{self, Counts, DeltaLinks, Job, Outcome, ReconcileError, Report},
};
use crate::store;
use crate::{
    auth::Actor,
    directory::{IntegrationId, devices, events::NewEvent, integrations, now},
    error::{DomainError, DomainResult},
    providers::{
        IncrementalProvider, ProviderError,
        clean::Warnings,
        entra::Entra,
        google::Google,
        http::Session,
        scope::{InOrgUnits, Scope, Scoped},
        scope_by_ids::ListedScope,
    },
};
use entity::{
    enums::{DirectoryKind, IntegrationStatus, SyncRunStatus},
    integration, sync_run,
};
use sea_orm::{IntoActiveModel, Set};
use std::sync::Arc;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
    run.retries = c.retries;
    run.throttled_ms = c.throttled_ms;
    run.warning_count = c.warnings;
    run
}

async fn save(deps: &SyncDeps, run: sync_run::Model) -> DomainResult<sync_run::Model> {
    let run = crate::store::runs::save(&deps.db, run).await?;
    deps.events.publish(run.clone());
    Ok(run)
}

/// One run, from RUNNING to SUCCEEDED, HELD or FAILED.
pub(super) async fn execute(
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
    let started = std::time::Instant::now();
    let (progress, mut reported) = watch::channel(Counts::default());
    let warnings = Warnings::new();
    let integration = integrations::get(&deps.db, IntegrationId(run.integration_id)).await;
    let provider = integration
        .as_ref()
        .map_or("unknown", |i| provider_label(i.kind));
    let outcome = match &integration {
        Err(err) => Err(ReconcileError::Domain(err.clone())),
        Ok(integration) => {
            let heartbeat = heartbeat(&deps, run.id, &stop);
            tokio::pin!(heartbeat);
            let report = report_progress(&deps, &run, reported.clone());
            tokio::pin!(report);
            let sync = sync(&deps, integration, confirmed, &progress, &stop, &warnings);
            tokio::pin!(sync);
            loop {
                tokio::select! {
                    outcome = &mut sync => break outcome,
                    () = &mut heartbeat => {}
                    () = &mut report => {}
                }
            }
        }
    };
    // What was read and written before the end, for a run that fails part-way.
    let so_far = reported.borrow_and_update().clone();
    // A run whose lease was taken over is another process's business now.
    let still_mine = store::runs::still_leased(&deps.db, run.id, &deps.owner).await;
    if !matches!(still_mine, Ok(true)) {
        tracing::warn!(
            run = run.id,
            "this process lost the run's lease; its outcome is dropped"
        );
        return;
    }
    let run = ended(&deps, with_counts(run, &so_far), &outcome);
    if let Err(ReconcileError::Provider(ProviderError::NeedsReauth { detail, .. })) = &outcome {
        mark_needs_reauth(&deps, run.integration_id, detail).await;
    }
    tracing::info!(
        run = run.id,
        integration = run.integration_id,
        status = ?run.status,
        error = run.error.as_deref().unwrap_or_default(),
        "sync run finished"
    );
    let mut figures = figures(&run, provider, started.elapsed());
    figures.warnings = warnings
        .by_action()
        .map(|(action, n)| (action.metric_label(), n));
    crate::metrics::sync_run(&figures);
    save_end(&deps, run, &warnings, &stop).await;
}

/// `run` as `outcome` ends it: its status, its counts, and what its error says.
fn ended(
    deps: &SyncDeps,
    mut run: sync_run::Model,
    outcome: &Result<(Outcome, Vec<i64>), ReconcileError>,
) -> sync_run::Model {
    run.finished_at = Some(now());
    match outcome {
        Err(ReconcileError::Stopped) => {
            run.status = SyncRunStatus::Cancelled;
            run.error =
                Some("stopped at a batch boundary: dirgate shut down; nothing was removed".into());
        }
        Ok((Outcome::Applied(counts), _)) => {
            run = with_counts(run, counts);
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
            run = with_counts(run, counts);
            run.status = SyncRunStatus::Held;
            run.error = Some(format!(
                "held: this sync would remove {would_remove} of {of} users (more than {}% and more than {}); nothing was removed. Confirm the run to apply it.",
                deps.threshold.percent, deps.threshold.min_users
            ));
        }
        Err(err) => {
            run.status = SyncRunStatus::Failed;
            run.error = Some(match err {
                ReconcileError::Provider(p) => format!("{p}; nothing was removed"),
                ReconcileError::Domain(DomainError::Internal(cause)) => {
                    tracing::error!(error = %cause, run = run.id, "sync failed");
                    "internal error (see the server log); nothing was removed".into()
                }
                ReconcileError::Domain(DomainError::Unavailable(cause)) => format!(
                    "stopped: {cause}; what was written before stays, nothing was removed, and the next sync goes on from there"
                ),
                ReconcileError::Domain(d) => format!("{d}; nothing was removed"),
                ReconcileError::Stopped => "stopped; nothing was removed".into(),
            });
        }
    }
    run
}

/// The least time between two progress writes of one run: a directory of many small pages
/// does not turn into a write per page.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Writes the run's counts as they change (pages read, users created, ...) and announces
/// them, so a RUNNING run shows its progress to every reader and subscriber, in every
/// process. Never completes by itself.
async fn report_progress(
    deps: &SyncDeps,
    run: &sync_run::Model,
    mut counts: watch::Receiver<Counts>,
) {
    loop {
        if counts.changed().await.is_err() {
            return std::future::pending().await;
        }
        let now = with_counts(run.clone(), &counts.borrow_and_update());
        let written = store::runs::save_progress(&deps.db, now.clone()).await;
        match written {
            Ok(true) => deps.events.publish(now),
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(run = run.id, error = %err, "cannot record a run's progress")
            }
        }
        tokio::time::sleep(PROGRESS_EVERY).await;
    }
}

async fn mark_needs_reauth(deps: &SyncDeps, integration_id: i64, detail: &str) {
    let Ok(Some(model)) = store::integrations::find(&deps.db, integration_id).await else {
        return;
    };
    let mut active = model.into_active_model();
    active.status = Set(IntegrationStatus::NeedsReauth);
    // Nothing is scheduled until it is re-authenticated (R16).
    active.next_sync_at = Set(None);
    active.status_reason = Set(Some(format!(
        "the provider refused the grant: {detail}; re-authenticate the integration"
    )));
    active.updated_at = Set(now());
    let write = async {
        let txn = crate::db::begin_write(&deps.db).await?;
        let model = store::integrations::update(&txn, active).await?;
        crate::directory::events::record(
            &txn,
            vec![NewEvent::integration("integration.needs_reauth", &model)],
        )
        .await?;
        txn.commit().await?;
        DomainResult::Ok(())
    };
    if let Err(err) = write.await {
        tracing::error!(error = %err, "cannot mark an integration as needing re-authentication");
    }
}

/// Reads and applies the directory, then sets when the next scheduled sync is due, whatever
/// the outcome (R5).
async fn sync(
    deps: &SyncDeps,
    integration: &integration::Model,
    confirmed: bool,
    progress: &watch::Sender<Counts>,
    stop: &CancellationToken,
    warnings: &Arc<Warnings>,
) -> Result<(Outcome, Vec<i64>), ReconcileError> {
    let result = read_and_apply(deps, integration, confirmed, progress, stop, warnings).await;
    let next =
        deps.schedule.clock.now() + deps.schedule.interval(integration.sync_interval_minutes);
    let synced = store::integrations::Synced {
        next_sync_at: next,
        last_synced_at: result.is_ok().then(|| deps.schedule.clock.now()),
        delta_state: match &result {
            Ok((_, Some(state))) => Some(serde_json::to_string(state).ok()),
            _ => None,
        },
    };
    store::integrations::synced(&deps.db, integration.id, synced).await?;
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
/// the provider issues it) and reconciles through the integration's provider. Returns the
/// delta state to store, if any.
async fn read_and_apply(
    deps: &SyncDeps,
    integration: &integration::Model,
    confirmed: bool,
    progress: &watch::Sender<Counts>,
    stop: &CancellationToken,
    warnings: &Arc<Warnings>,
) -> Result<(Report, Option<DeltaState>), ReconcileError> {
    let session = super::session::open(&deps.db, &deps.services, integration)?;
    // The phases count what they wrote; the session, what the provider made it wait.
    let with_waits = |mut c: Counts| {
        let stats = session.throttle_stats();
        c.retries = i32::try_from(stats.retries).unwrap_or(i32::MAX);
        c.throttled_ms = i64::try_from(stats.throttled_for.as_millis()).unwrap_or(i64::MAX);
        c.warnings = i32::try_from(warnings.count()).unwrap_or(i32::MAX);
        c
    };
    let progress = |c: &Counts| {
        progress.send_replace(with_waits(c.clone()));
    };
    let job = Job {
        db: &deps.db,
        integration,
        threshold: deps.threshold,
        confirmed,
        progress: &progress,
        stop,
        warnings,
    };
    let (mut report, state) = read(deps, &job, &session).await?;
    match &mut report.outcome {
        Outcome::Applied(counts) | Outcome::Held { counts, .. } => {
            *counts = with_waits(std::mem::take(counts));
        }
    }
    Ok((report, state))
}

/// Reads the integration's directory through its provider and scope, and applies it.
async fn read(
    deps: &SyncDeps,
    job: &Job<'_>,
    session: &Arc<Session>,
) -> Result<(Report, Option<DeltaState>), ReconcileError> {
    let integration = job.integration;
    let settings = &deps.services.providers;
    Ok(match integration.kind {
        DirectoryKind::GoogleWorkspace => {
            let google = Google::new(
                session.clone(),
                &settings.google.api,
                settings.google_page_size,
            );
            // Google keeps no change feed: every run reads the scope in full.
            let report = match scope_of(integration)? {
                Scope::All => reconcile::full_sync(job, &google).await?,
                Scope::Groups { groups } => {
                    reconcile::full_sync(job, &ListedScope::new(&google, &groups)).await?
                }
                Scope::OrgUnits { paths } => {
                    reconcile::full_sync(job, &InOrgUnits::new(&google, &paths)).await?
                }
            };
            (report, None)
        }
        DirectoryKind::EntraId => {
            let graph = Entra::new(
                session.clone(),
                &settings.entra.api,
                settings.entra_page_size,
            );
            match scope_of(integration)? {
                Scope::All => incremental_or_full(deps, job, &graph).await?,
                Scope::Groups { groups } => {
                    scoped_incremental_or_full(deps, job, &graph, &groups).await?
                }
                Scope::OrgUnits { .. } => return Err(unsupported_scope(integration).into()),
            }
        }
        DirectoryKind::Scim => return Err(DomainError::PushOnlyIntegration.into()),
    })
}

/// The integration's scope (R19); a stored scope this version cannot read fails the run
/// rather than read more than was chosen.
fn scope_of(integration: &integration::Model) -> DomainResult<Scope> {
    Scope::of_stored(integration.scope.as_deref()).map_err(DomainError::internal)
}

/// A scope the integration's provider cannot read (refused when it is set; a stored one
/// fails the run).
fn unsupported_scope(integration: &integration::Model) -> DomainError {
    DomainError::invalid(
        "scope",
        format!(
            "this scope is not supported for {:?} integrations",
            integration.kind
        ),
    )
}

/// For a provider that can read changes only: reads changes when the integration holds delta
/// links from a full read less than `full_every` ago, else reads everything (and so gets fresh
/// links); an expired link falls back to a full read.
async fn incremental_or_full<P: IncrementalProvider>(
    deps: &SyncDeps,
    job: &Job<'_>,
    provider: &P,
) -> Result<(Report, Option<DeltaState>), ReconcileError> {
    let started = deps.schedule.clock.now();
    let stored = stored_state(deps, job.integration, started);
    let keep = |report: Report, full_at| {
        let state = report
            .delta
            .clone()
            .map(|links| DeltaState { links, full_at });
        (report, state)
    };
    if let Some(state) = stored {
        match reconcile::delta_sync(job, provider, &state.links).await {
            Err(ReconcileError::Provider(ProviderError::DeltaExpired { detail, .. })) => {
                tracing::info!(
                    integration = job.integration.id,
                    detail,
                    "the delta token expired; reading the whole directory"
                );
            }
            other => return other.map(|report| keep(report, state.full_at)),
        }
    }
    let report = reconcile::full_sync(job, &provider.full_read()).await?;
    Ok(keep(report, started))
}

/// An Entra integration scoped to chosen groups (R19): re-syncs read the tenant's change feed
/// kept to the scope (`reconcile::scoped_delta_sync`); the first run, one after `full_every`,
/// an expired link, or a change to the scope's membership reads the scope itself (the chosen
/// groups' transitive members), keeping links taken just before (`$deltatoken=latest`), so a
/// change made during the read is read again by the next run.
async fn scoped_incremental_or_full(
    deps: &SyncDeps,
    job: &Job<'_>,
    graph: &Entra,
    groups: &[String],
) -> Result<(Report, Option<DeltaState>), ReconcileError> {
    let started = deps.schedule.clock.now();
    if let Some(state) = stored_state(deps, job.integration, started) {
        match reconcile::scoped_delta_sync(job, graph, &state.links).await {
            Ok(Some(report)) => {
                let state = report.delta.clone().map(|links| DeltaState {
                    links,
                    full_at: state.full_at,
                });
                return Ok((report, state));
            }
            Ok(None) => tracing::info!(
                integration = job.integration.id,
                "the scope's membership changed; reading the scope again"
            ),
            Err(ReconcileError::Provider(ProviderError::DeltaExpired { detail, .. })) => {
                tracing::info!(
                    integration = job.integration.id,
                    detail,
                    "the delta token expired; reading the scope again"
                );
            }
            Err(other) => return Err(other),
        }
    }
    let (users, groups_link) = graph.latest_links().await?;
    let report = reconcile::full_sync(job, &Scoped::new(graph, groups)).await?;
    // A held run keeps no links: the next run reads the scope again, and so finds the
    // removals it held.
    let state = matches!(report.outcome, Outcome::Applied(_)).then(|| DeltaState {
        links: DeltaLinks {
            users,
            groups: groups_link,
        },
        full_at: started,
    });
    Ok((report, state))
}

/// The integration's stored delta state, when it is from a full read less than `full_every`
/// before `now`.
fn stored_state(
    deps: &SyncDeps,
    integration: &integration::Model,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<DeltaState> {
    integration
        .delta_state
        .as_deref()
        .and_then(|s| serde_json::from_str::<DeltaState>(s).ok())
        .filter(|state| now - state.full_at < deps.schedule.full_every)
}
