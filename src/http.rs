//! The HTTP server: `POST/GET /graphql`, `/graphql/ws` (graphql-transport-ws), GraphiQL at
//! `/`, `/healthz`; CORS for the configured origins, a body size limit, graceful shutdown.
//!
//! A request's path: router → [`graphql_post`] reads the bearer token → `App::authenticate`
//! → `App::execute` runs the schema with a fresh loader → resolvers call `directory::*`.

use crate::{
    app::App,
    error::DomainError,
    graphql::{Authentication, loaders},
};
use async_graphql::{ErrorExtensions, Response as GqlResponse, http::GraphiQLSource, parser};
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use axum::{
    Json, Router,
    extract::{State, WebSocketUpgrade},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use sea_orm::ConnectionTrait;
use std::{future::Future, sync::Arc};
use tokio::net::TcpListener;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
};

/// Builds the router for `app`.
pub fn router(app: App) -> Router {
    let mut router = Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .route("/oauth/callback", get(oauth_callback))
        .merge(crate::scim::router(app.clone()).with_state(()))
        .layer(RequestBodyLimitLayer::new(app.config.max_body_bytes));
    let origins: Vec<HeaderValue> = app
        .config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
        .collect();
    if !origins.is_empty() {
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        );
    }
    router.with_state(app)
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("dirgate")
            .finish(),
    )
}

/// The token of an `Authorization: Bearer` header; `Err` for a header of another shape.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, DomainError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let refused = DomainError::Unauthenticated("the Authorization header must be `Bearer <token>`");
    let value = value.to_str().map_err(|_| refused.clone())?;
    bearer_token(value).map(Some).ok_or(refused)
}

/// The token of a `Bearer <token>` value (scheme case-insensitive).
pub(crate) fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

async fn authenticate(app: &App, headers: &HeaderMap) -> Authentication {
    match bearer(headers) {
        Ok(token) => app.authenticate(token).await,
        Err(err) => Authentication::Refused(err),
    }
}

async fn graphql_post(
    State(app): State<App>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let auth = authenticate(&app, &headers).await;
    app.execute(request.into_inner(), auth).await.into()
}

/// Queries may be sent with GET; mutations only with POST.
async fn graphql_get(
    State(app): State<App>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> Response {
    let request = request.into_inner();
    let is_mutation = parser::parse_query(&request.query).is_ok_and(|doc| {
        doc.operations
            .iter()
            .any(|(_, op)| op.node.ty == parser::types::OperationType::Mutation)
    });
    if is_mutation {
        let err = DomainError::invalid("query", "mutations must be sent with POST").extend();
        let body = GqlResponse::from_errors(vec![err.into_server_error(Default::default())]);
        return (StatusCode::METHOD_NOT_ALLOWED, GraphQLResponse::from(body)).into_response();
    }
    let auth = authenticate(&app, &headers).await;
    GraphQLResponse::from(app.execute(request, auth).await).into_response()
}

/// Subscriptions. The token comes in the `connection_init` payload as
/// `{"Authorization": "Bearer <token>"}`; a connection without a valid one is closed.
async fn graphql_ws(
    State(app): State<App>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            let schema = app.schema.clone();
            GraphQLWebSocket::new(stream, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = ["Authorization", "authorization"]
                        .iter()
                        .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                        .map(|v| bearer_token(v).unwrap_or(v.trim()).to_owned());
                    match app.authenticate(token.as_deref()).await {
                        Authentication::Caller(caller) => {
                            let loader = loaders::for_request(app.db.clone());
                            // A subscription lives long: read fresh rows for every event.
                            loader.disable_cache();
                            let mut data = async_graphql::Data::default();
                            data.insert(Authentication::Caller(caller));
                            data.insert(Arc::new(loader));
                            Ok(data)
                        }
                        Authentication::Refused(err) => Err(err.into()),
                        Authentication::Missing => Err(DomainError::Unauthenticated(
                            "send `Authorization: Bearer <token>` in the connection_init payload",
                        )
                        .into()),
                    }
                })
                .serve()
        })
}

/// What a provider sends to the redirect URI.
#[derive(serde::Deserialize)]
struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    error_subcode: Option<String>,
}

/// The provider sends the admin's browser here after sign-in; the single-use `state`
/// authorises the request. Answers with a page saying what happened.
async fn oauth_callback(
    State(app): State<App>,
    axum::extract::Query(query): axum::extract::Query<CallbackQuery>,
) -> Response {
    let Some(state) = query.state.filter(|s| !s.is_empty()) else {
        return callback_page(
            StatusCode::BAD_REQUEST,
            "Sign-in failed",
            "The request carries no state.",
        );
    };
    let callback = crate::directory::connect::Callback {
        state,
        code: query.code,
        error: query.error,
        error_description: query.error_description,
        error_subcode: query.error_subcode,
    };
    let result = crate::directory::connect::complete(
        &app.db,
        &crate::auth::Actor::oauth_callback(),
        &app.services.oauth(),
        callback,
    )
    .await;
    use entity::enums::IntegrationStatus as S;
    if let Ok(model) = &result {
        app.authorized(model).await;
    }
    match result {
        Ok(model) if model.status == S::Active => callback_page(
            StatusCode::OK,
            "Connected",
            &format!(
                "The integration \"{}\" is connected and ACTIVE{}.",
                model.name,
                model
                    .tenant
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default()
            ),
        ),
        Ok(model) => callback_page(
            StatusCode::OK,
            "Not connected yet",
            &format!(
                "The integration \"{}\" is {:?}: {}",
                model.name,
                model.status,
                model.status_reason.unwrap_or_default()
            ),
        ),
        Err(err) => {
            let status = if err.code() == "INTERNAL" {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            if let DomainError::Internal(cause) = &err {
                tracing::error!(error = %cause, "OAuth callback failed");
            }
            callback_page(status, "Sign-in failed", &err.to_string())
        }
    }
}

fn callback_page(status: StatusCode, title: &str, message: &str) -> Response {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>dirgate: {t}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:3em auto\"><h1>{t}</h1><p>{m}</p>\
         <p><a href=\"/\">Back to dirgate</a></p></body></html>",
        t = escape(title),
        m = escape(message)
    );
    (status, Html(body)).into_response()
}

async fn healthz(State(app): State<App>) -> impl IntoResponse {
    match app.db.execute_unprepared("SELECT 1").await {
        Ok(_) => (StatusCode::OK, Json(serde_json::json!({ "status": "ok" }))),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable" })),
            )
        }
    }
}
