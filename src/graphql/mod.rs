//! The GraphQL API skin: the schema, its types, the loaders, and the mapping of errors.
//! Resolvers check access, convert input, call `directory::*`, and convert output.

pub mod connection;
pub mod context;
pub mod error;
pub mod event_types;
pub mod filters;
mod gate;
pub mod ids;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod payload;
pub mod projection;
pub mod query;
pub mod scope;
pub mod subscription;
pub mod types;
pub mod webhooks;

use crate::{config::Config, services::Services, sync::SyncEvents};
use async_graphql::{Request, Schema};
pub use context::Authentication;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// Every read of the API. Needs an API token (ADMIN or VIEWER), sent as
/// `Authorization: Bearer <token>`; without one the request is refused (HTTP 401) before its
/// document is read.
///
/// Errors carry `extensions.code`: UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, INVALID_INPUT
/// (with `extensions.field`), ALREADY_EXISTS, NAME_TAKEN, CONFIRMATION_MISMATCH,
/// PUSH_ONLY_INTEGRATION, NEEDS_REAUTH, RATE_LIMITED (HTTP 429, Retry-After), LIMIT_EXCEEDED
/// (with `extensions.limit` and `extensions.max`), TIMEOUT, UNAVAILABLE (the database refuses
/// writes: a full disk, a read-only database; nothing changed; Retry-After),
/// GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED, BAD_REQUEST (HTTP 400) or INTERNAL.
#[derive(async_graphql::MergedObject, Default)]
pub struct Query(
    query::DirectoryQuery,
    webhooks::WebhookQuery,
    scope::ScopeQuery,
    scope::ScopePreviewQuery,
);

/// Every change made through the API. Needs an ADMIN token.
///
/// Each mutation takes one `input` and answers a nullable payload: what it changed, and
/// `userErrors`, what the caller can correct in its input (INVALID_INPUT, NOT_FOUND,
/// ALREADY_EXISTS, NAME_TAKEN, CONFIRMATION_MISMATCH, PUSH_ONLY_INTEGRATION, NEEDS_REAUTH);
/// then the payload's other fields are null and nothing changed. Anything else
/// (UNAUTHENTICATED, FORBIDDEN, RATE_LIMITED, LIMIT_EXCEEDED, TIMEOUT, UNAVAILABLE, INTERNAL,
/// or a value refused before the mutation runs) is a top-level error with a null payload.
#[derive(async_graphql::MergedObject, Default)]
pub struct Mutation(
    mutation::DirectoryMutation,
    webhooks::WebhookMutation,
    scope::ScopeMutation,
);

/// The schema type.
pub type DirgateSchema = Schema<Query, Mutation, subscription::Subscription>;

/// Deepest query accepted (introspection has a bound of its own, see [`limits`]).
pub const MAX_DEPTH: usize = limits::MAX_DEPTH;
/// Most complex query accepted (each field counts one).
pub const MAX_COMPLEXITY: usize = 1000;

fn builder() -> async_graphql::SchemaBuilder<Query, Mutation, subscription::Subscription> {
    // The depth limit is `limits::Guard`'s: async-graphql's would count introspection's own
    // `ofType` chain and refuse the standard introspection query.
    Schema::build(
        Query::default(),
        Mutation::default(),
        subscription::Subscription,
    )
    .limit_complexity(MAX_COMPLEXITY)
}

/// The schema, twice, with its shared data. `guarded` carries [`limits::Guard`] as an
/// extension and serves the WebSocket endpoint, where async-graphql parses each subscription
/// itself. `bare` has no extension — async-graphql then resolves each field without an
/// extension layer around it (a boxed future and two registry lookups per field, a few percent
/// of a nested query's CPU) — and serves only `App::execute`, which applies the same Guard
/// before it hands over the parsed document.
pub struct Schemas {
    pub guarded: DirgateSchema,
    pub bare: DirgateSchema,
}

/// The schemas with their shared data.
pub fn build_schemas(
    db: DatabaseConnection,
    config: Arc<Config>,
    events: SyncEvents,
    services: Arc<Services>,
    sync: crate::sync::SyncHandle,
) -> Schemas {
    let with_data = |builder: async_graphql::SchemaBuilder<_, _, _>| {
        builder
            .data(db.clone())
            .data(config.clone())
            .data(events.clone())
            .data(services.clone())
            .data(sync.clone())
            .finish()
    };
    Schemas {
        guarded: with_data(builder().extension(limits::Guard)),
        bare: with_data(builder()),
    }
}

/// The schema's SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// The schema's introspection (`__schema`: every type with its fields, arguments and enum
/// values, descriptions included), as JSON: what contract tests and front-end code
/// generators read.
pub async fn introspection() -> serde_json::Value {
    const QUERY: &str = "{ __schema { types { kind name description \
        fields(includeDeprecated: true) { name description \
          args { name description type { ...ty } } type { ...ty } } \
        inputFields { name description type { ...ty } } \
        enumValues(includeDeprecated: true) { name description } \
        interfaces { name } } \
        mutationType { name } queryType { name } } } \
      fragment ty on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }";
    let response = builder().finish().execute(QUERY).await;
    response.data.into_json().unwrap_or_default()
}

/// Adds what one request needs: who is calling, and a fresh loader, which is also returned
/// (its driver runs the request's batches).
pub fn prepare(
    request: Request,
    db: &DatabaseConnection,
    auth: Authentication,
    projection: projection::Projection,
) -> (Request, Arc<loaders::Loaders>) {
    let loaders = Arc::new(loaders::for_request(db.clone(), projection));
    (request.data(auth).data(loaders.clone()), loaders)
}
