//! The running application: database, configuration, the services resolvers need (provider
//! settings, HTTP client, secret box), the sync event bus and the GraphQL schema, shared by
//! the HTTP server, the CLI and the tests.

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
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

/// Everything a request needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub events: SyncEvents,
    pub services: Arc<Services>,
    pub sync: SyncHandle,
    pub schema: graphql::DirgateSchema,
    /// The per-token rate limits of the GraphQL and SCIM edges.
    pub limits: Arc<RateLimits>,
    shutdown: CancellationToken,
    engine: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl App {
    /// Builds the application on a connected, migrated database, with the encryption key
    /// from the configuration or the data directory.
    pub fn new(db: DatabaseConnection, config: Config) -> Result<Self, KeyError> {
        let secrets = SecretBox::load(config.encryption_key.as_deref(), &config.data_dir)?;
        let providers = config.provider_settings();
        Ok(Self::with_parts(db, config, providers, secrets))
    }

    /// Builds the application from its parts (tests bring their own provider settings).
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

    /// [`App::with_parts`] with a schedule of one's own (tests inject a clock).
    pub fn with_schedule(
        db: DatabaseConnection,
        config: Config,
        providers: ProviderSettings,
        secrets: SecretBox,
        schedule: Schedule,
    ) -> Self {
        let services = Arc::new(Services {
            providers: Arc::new(providers),
            http: providers::http_client(),
            secrets,
            redirect_uri: config.redirect_uri(),
        });
        let config = Arc::new(config);
        let events = SyncEvents::default();
        let shutdown = CancellationToken::new();
        let (sync, engine) = engine::start(
            SyncDeps {
                db: db.clone(),
                services: services.clone(),
                events: events.clone(),
                threshold: Threshold::default(),
                schedule,
                owner: engine::process_identity(),
            },
            shutdown.clone(),
        );
        let schema = graphql::build_schema(
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
        Self {
            db,
            config,
            events,
            services,
            sync,
            schema,
            limits,
            shutdown,
            engine: Arc::new(Mutex::new(Some(engine))),
        }
    }

    /// Stops the background work (the sync engine cancels its runs in flight) and waits for it.
    pub async fn stop(&self) {
        self.shutdown.cancel();
        let engine = self.engine.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(engine) = engine {
            let _ = engine.await;
        }
    }

    /// After a sign-in completed: the first sync starts at once (R5, `SyncHandle::authorized`).
    pub async fn authorized(&self, integration: &entity::integration::Model) {
        self.sync.authorized(integration).await;
    }

    /// Authenticates a bearer token (`None`: no header was sent).
    pub async fn authenticate(&self, bearer: Option<&str>) -> Authentication {
        match bearer {
            None => Authentication::Missing,
            Some(token) => match tokens::authenticate(&self.db, token).await {
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
        let request = graphql::prepare(request.into(), &self.db, auth);
        let seconds = self.config.request_timeout_seconds;
        let budget = std::time::Duration::from_secs(seconds);
        match tokio::time::timeout(budget, self.schema.execute(request)).await {
            Ok(response) => response,
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
        }
    }
}
