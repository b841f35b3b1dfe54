//! The running application: database, configuration, the sync event bus and the GraphQL
//! schema, shared by the HTTP server, the CLI and the tests.

use crate::{
    auth::tokens,
    config::Config,
    graphql::{self, Authentication},
    sync::SyncEvents,
};
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Everything a request needs. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub events: SyncEvents,
    pub schema: graphql::DirgateSchema,
}

impl App {
    /// Builds the application on a connected, migrated database.
    pub fn new(db: DatabaseConnection, config: Config) -> Self {
        let config = Arc::new(config);
        let events = SyncEvents::default();
        let schema = graphql::build_schema(db.clone(), config.clone(), events.clone());
        Self {
            db,
            config,
            events,
            schema,
        }
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

    /// Runs one GraphQL request as `auth`.
    pub async fn execute(
        &self,
        request: impl Into<async_graphql::Request>,
        auth: Authentication,
    ) -> async_graphql::Response {
        let request = graphql::prepare(request.into(), &self.db, auth);
        self.schema.execute(request).await
    }
}
