//! The running application, in two parts. [`App`] is what a request sees: database,
//! configuration, the services resolvers need (provider settings, HTTP client, secret box),
//! the sync event bus, the sync handle and the GraphQL schema; cheap to clone. [`Core`] owns
//! the background work (the sync engine's task) and shuts it down: whoever starts dirgate (the
//! CLI, a test, a benchmark) holds the `Core`, and dropping it stops the background work.

use crate::{
    config::Config,
    crypto::{KeyError, SecretBox},
    directory::tokens,
    graphql::{self, Authentication},
    providers::{self, ProviderSettings},
    ratelimit::RateLimits,
    services::Services,
    sync::{SyncDeps, SyncEvents, SyncHandle, engine, reconcile::Threshold, schedule::Schedule},
};
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Everything a request needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub events: SyncEvents,
    pub services: Arc<Services>,
    pub sync: SyncHandle,
    /// The schema with the Guard extension (the WebSocket endpoint parses through it).
    pub schema: graphql::DirgateSchema,
    /// The same schema without extensions, behind [`App::execute`], which guards first.
    bare_schema: graphql::DirgateSchema,
    /// The per-token rate limits of the GraphQL and SCIM edges.
    pub limits: Arc<RateLimits>,
    /// Verified API tokens (PostgreSQL; see `auth::cache`).
    pub tokens: Arc<crate::auth::cache::TokenCache>,
}

/// The owner of dirgate's background work: the sync engine's task and the token that stops
/// it. Holds the [`App`] that requests use.
pub struct Core {
    pub app: App,
    shutdown: CancellationToken,
    engine: Option<tokio::task::JoinHandle<()>>,
    /// Stops the sync-run event bus's tasks (PostgreSQL: the `NOTIFY` relay and the listener).
    events_stop: CancellationToken,
    event_tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Core {
    /// Starts the application on a connected, migrated database, with the encryption key
    /// from the configuration or the data directory.
    pub fn start(db: DatabaseConnection, config: Config) -> Result<Self, KeyError> {
        let secrets = SecretBox::load(config.encryption_key.as_deref(), &config.data_dir)?;
        let providers = config.provider_settings();
        Ok(Self::with_parts(db, config, providers, secrets))
    }

    /// Starts the application from its parts (tests bring their own provider settings).
    pub fn with_parts(
        db: DatabaseConnection,
        config: Config,
        providers: ProviderSettings,
        secrets: SecretBox,
    ) -> Self {
        let mut schedule = Schedule::system(config.sync_interval_minutes);
        schedule.tick = std::time::Duration::from_secs(config.scheduler_tick_seconds);
        schedule.lease = std::time::Duration::from_secs(config.sync_lease_seconds);
        schedule.full_every = chrono::Duration::hours(config.full_sync_hours.into());
        Self::with_schedule(db, config, providers, secrets, schedule)
    }

    /// [`Core::with_parts`] with a schedule of one's own (tests inject a clock).
    pub fn with_schedule(
        db: DatabaseConnection,
        config: Config,
        providers: ProviderSettings,
        secrets: SecretBox,
        schedule: Schedule,
    ) -> Self {
        crate::metrics::install();
        let services = Arc::new(Services {
            providers: Arc::new(providers),
            http: providers::http_client(),
            secrets,
            redirect_uri: config.redirect_uri(),
        });
        let config = Arc::new(config);
        let shutdown = CancellationToken::new();
        // One name for this process, under which both the sync engine and the webhook
        // deliverer take their leases (an operator reading `leased_by` sees one process).
        let owner = engine::process_identity();
        // The bus outlives the engine: runs stopped at shutdown announce it.
        let events_stop = CancellationToken::new();
        let (events, mut event_tasks) = SyncEvents::start(&db, events_stop.clone());
        let tokens = crate::auth::cache::TokenCache::new();
        event_tasks.extend(background(
            &db,
            &config,
            &services,
            &tokens,
            &owner,
            &events_stop,
        ));
        let (sync, engine) = engine::start(
            SyncDeps {
                db: db.clone(),
                services: services.clone(),
                events: events.clone(),
                threshold: Threshold::default(),
                schedule,
                owner,
            },
            shutdown.clone(),
        );
        let schemas = graphql::build_schemas(
            db.clone(),
            config.clone(),
            events.clone(),
            services.clone(),
            sync.clone(),
        );
        let limits = Arc::new(RateLimits::new(
            config.graphql_requests_per_second,
            config.scim_requests_per_second,
        ));
        let app = App {
            db,
            config,
            events,
            services,
            sync,
            schema: schemas.guarded,
            bare_schema: schemas.bare,
            limits,
            tokens,
        };
        Self {
            app,
            shutdown,
            engine: Some(engine),
            events_stop,
            event_tasks,
        }
    }

    /// Stops the background work (the sync engine cancels its runs in flight, then the event
    /// bus's tasks stop) and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(engine) = self.engine.take() {
            let _ = engine.await;
        }
        self.events_stop.cancel();
        for task in std::mem::take(&mut self.event_tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Core {
    /// A `Core` dropped without [`Core::stop`] still stops its background work (without
    /// waiting for it).
    fn drop(&mut self) {
        self.shutdown.cancel();
        self.events_stop.cancel();
    }
}

impl App {
    /// After a sign-in completed: the first sync starts at once (R5, `SyncHandle::authorized`).
    pub async fn authorized(&self, integration: &entity::integration::Model) {
        self.sync.authorized(integration).await;
    }

    /// Authenticates a bearer token (`None`: no header was sent).
    pub async fn authenticate(&self, bearer: Option<&str>) -> Authentication {
        match bearer {
            None => Authentication::Missing,
            Some(token) => match tokens::authenticate(&self.db, &self.tokens, token).await {
                Ok(caller) => Authentication::Caller(caller),
                Err(err) => Authentication::Refused(err),
            },
        }
    }

    /// Runs one GraphQL request as `auth`, within the request budget
    /// (`--request-timeout-seconds`): past it the work is dropped and the answer is `TIMEOUT`.
    pub async fn execute(
        &self,
        request: impl Into<async_graphql::Request>,
        auth: Authentication,
    ) -> async_graphql::Response {
        use async_graphql::ErrorExtensions;
        let started = std::time::Instant::now();
        let mut request: async_graphql::Request = request.into();
        let (operation, projection);
        match graphql::limits::bounded_document(&auth, &request.query, &request.variables) {
            Ok(document) => {
                operation =
                    graphql::limits::operation_type(&document, request.operation_name.as_deref());
                projection = graphql::projection::Projection::of_document(&document);
                request.set_parsed_query(document);
            }
            Err(err) => {
                crate::metrics::graphql_request(
                    "none",
                    graphql::error::code_of(Some(&err)),
                    started.elapsed(),
                );
                return async_graphql::Response::from_errors(vec![err]);
            }
        }
        let (request, loaders) = graphql::prepare(request, &self.db, auth, projection);
        let seconds = self.config.request_timeout_seconds;
        let budget = std::time::Duration::from_secs(seconds);
        // The request's batches run in this task, polled after its fields: see `graphql::gate`.
        let driver = loaders.driver();
        let run = async {
            tokio::select! {
                biased;
                response = self.bare_schema.execute(request) => response,
                () = driver => unreachable!("the driver never ends by itself"),
            }
        };
        let response = match tokio::time::timeout(budget, run).await {
            Ok(mut response) => {
                response.errors = std::mem::take(&mut response.errors)
                    .into_iter()
                    .map(graphql::limits::code_uncoded)
                    .collect();
                response
            }
            Err(_) => {
                tracing::warn!(
                    seconds,
                    "a GraphQL request ran past its budget and was dropped"
                );
                let err = crate::DomainError::Timeout { seconds }.extend();
                async_graphql::Response::from_errors(vec![crate::graphql::error::request_error(
                    err,
                )])
            }
        };
        crate::metrics::graphql_request(
            operation,
            graphql::error::code_of(response.errors.first()),
            started.elapsed(),
        );
        response
    }
}

/// Drops directory events and webhook delivery attempts older than the retention, at start and
/// then hourly, until `stop`.
async fn prune_events(db: DatabaseConnection, days: u32, stop: CancellationToken) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let before = crate::directory::now() - chrono::Duration::days(days.into());
        match crate::directory::events::prune(&db, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                pruned = n,
                days,
                "directory events past their retention pruned"
            ),
            Err(err) => tracing::warn!(error = %err, "cannot prune directory events"),
        }
        match crate::webhooks::prune_attempts(&db, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                pruned = n,
                days,
                "webhook attempts past the retention pruned"
            ),
            Err(err) => tracing::warn!(error = %err, "cannot prune webhook attempts"),
        }
    }
}

/// The process's background tasks beside the sync engine, stopped by `stop`: the token
/// cache's revocation listener, the change-event pruner, and (when enabled) the webhook
/// deliverer, leasing under `owner`.
fn background(
    db: &DatabaseConnection,
    config: &Arc<Config>,
    services: &Arc<Services>,
    tokens: &Arc<crate::auth::cache::TokenCache>,
    owner: &str,
    stop: &CancellationToken,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(crate::auth::cache::listen(
            db.clone(),
            tokens.clone(),
            stop.clone(),
        )),
        tokio::spawn(prune_events(
            db.clone(),
            config.event_retention_days,
            stop.clone(),
        )),
    ];
    if config.webhook_delivery {
        tasks.push(tokio::spawn(crate::webhooks::deliver::run(
            crate::webhooks::deliver::Deliverer {
                db: db.clone(),
                services: services.clone(),
                allow_private: config.webhook_allow_private_urls,
                retry_ms: config.webhook_retry_ms.clone(),
                owner: owner.to_owned(),
                lease: std::time::Duration::from_secs(config.webhook_lease_seconds),
            },
            stop.clone(),
        )));
    }
    tasks
}
