//! The HTTP server: `POST/GET /graphql`, `/graphql/ws` (graphql-transport-ws), GraphiQL at
//! `/`, `/healthz`; CORS for the configured origins, a body size limit, graceful shutdown.
//!
//! A request's path: router → [`graphql::post`] negotiates the media type (406), reads the
//! bearer token → `App::authenticate` (no valid token: 401, the document is never read) → the
//! token's rate limit (429) → `Content-Type` (415) → the body as one JSON request (else 400) →
//! `App::execute` bounds the document (`graphql::limits`) and runs the schema within the
//! request budget → resolvers call `directory::*` → the answer's status and body follow
//! GraphQL over HTTP ([`graphql`]). Every 4xx body is GraphQL JSON with
//! `extensions.code` ([`typed_errors`] converts the framework's plain-text ones).

mod conn;
pub use conn::{Bounds, max_connections};
pub(crate) mod slots;
use slots::Proof;
pub mod graphiql;
pub mod graphql;
pub mod ws;

use crate::{
    app::App,
    auth::bearer_token,
    error::DomainError,
    graphql::{Authentication, error as gql_error, loaders},
};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::{
    Json, Router,
    extract::{State, WebSocketUpgrade},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{Html, IntoResponse, Response},
    routing::get,
};
use std::{future::Future, sync::Arc};
use tokio::net::TcpListener;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::RequestBodyTimeoutLayer,
    trace::TraceLayer,
};

/// The longest request id kept from a client.
const MAX_REQUEST_ID: usize = 64;

/// A client's `x-request-id` is kept only when it is 1–64 letters, digits, `-`, `_` or `.`:
/// anything else (which would reach the logs as written) is dropped and replaced by a UUID.
async fn refuse_odd_request_ids(mut request: axum::extract::Request, next: Next) -> Response {
    let odd = request.headers().get("x-request-id").is_some_and(|v| {
        let v = v.as_bytes();
        v.is_empty()
            || v.len() > MAX_REQUEST_ID
            || !v
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    });
    if odd {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// The span of one request: its id, method and path (not the query string).
fn request_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// Builds the router for `app`.
pub fn router(app: App) -> Router {
    let page = match &app.config.graphiql_token {
        Some(token) => graphiql::Page::with_token(token),
        None => graphiql::Page::new(),
    };
    let mut router = Router::new()
        .route("/", get(move || async move { page.response() }))
        .route("/graphiql/{version}/{file}", get(graphiql::asset))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/oauth/callback", get(oauth_callback))
        .merge(crate::scim::router(app.clone()).with_state(()))
        .layer(RequestBodyLimitLayer::new(app.config.max_body_bytes))
        // A body that stops coming: each of its frames must arrive within the timeout.
        .layer(RequestBodyTimeoutLayer::new(
            Bounds::of(&app.config).body_read_timeout,
        ))
        .layer(middleware::from_fn(typed_errors))
        // Outermost (the last layer added): every request gets an id (`x-request-id`, kept
        // when the client sent a well-formed one), answered back, and carried by every log
        // line of the request.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::DEBUG),
                ),
        )
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn(refuse_odd_request_ids));
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
    let bounds = Bounds::of(&app.config);
    conn::serve(router(app), listener, bounds, shutdown).await
}

/// Plain-text 4xx answers of the framework (a body over the limit, a malformed query string,
/// a wrong method) become the edge's own error format: SCIM errors under `/scim/`, GraphQL
/// errors elsewhere.
async fn typed_errors(request: axum::extract::Request, next: Next) -> Response {
    let scim = request.uri().path().starts_with("/scim/");
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !status.is_client_error() || !plain || status == StatusCode::NOT_FOUND {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let mut message = String::from_utf8_lossy(&text).trim().to_owned();
    if message.is_empty() {
        message = status
            .canonical_reason()
            .unwrap_or("bad request")
            .to_owned();
    }
    let mut rebuilt = if scim {
        crate::scim::plain_error(status, message)
    } else {
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "LIMIT_EXCEEDED"
        } else {
            gql_error::BAD_REQUEST
        };
        graphql::Media::Json.refuse(status, gql_error::coded(message, code))
    };
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name, value.clone());
        }
    }
    rebuilt
}

/// Subscriptions. The token comes in the `connection_init` payload as
/// `{"Authorization": "Bearer <token>"}`; a connection without a valid one is closed.
async fn graphql_ws(
    State(app): State<App>,
    proof: Option<axum::Extension<Proof>>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    // A message is bounded like a request body (the default would be 64 MiB).
    upgrade
        .max_message_size(app.config.max_body_bytes)
        .max_frame_size(app.config.max_body_bytes)
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let schema = app.schema.clone();
            ws::relay(socket, move |incoming, outgoing| {
                GraphQLWebSocket::new_with_pair(outgoing, incoming, schema, protocol)
                    .on_connection_init(move |payload| async move {
                        let token = ["Authorization", "authorization"]
                            .iter()
                            .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                            .map(|v| bearer_token(v).unwrap_or(v.trim()).to_owned());
                        match app.authenticate(token.as_deref()).await {
                        Authentication::Caller(caller) => {
                            // Authenticated: never closed to make room for a newcomer.
                            if let Some(axum::Extension(proof)) = &proof {
                                proof.prove();
                            }
                            // A token holds a bounded number of subscription connections; the
                            // permit goes with the connection's data, so it is freed with it.
                            let permit = match caller.actor().token_id() {
                                None => None,
                                Some(token) => Some(app.limits.socket(token).ok_or(
                                    DomainError::LimitExceeded {
                                        limit: "subscription connections per token",
                                        max: crate::ratelimit::MAX_SOCKETS_PER_TOKEN,
                                    },
                                )?),
                            };
                            let loader = loaders::for_request(
                                app.db.clone(),
                                crate::graphql::projection::Projection::ALL,
                            );
                            // A subscription lives long: read fresh rows for every event.
                            loader.disable_cache();
                            let mut data = async_graphql::Data::default();
                            data.insert(Authentication::Caller(caller));
                            data.insert(permit);
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
    let callback = match checked_callback(query) {
        Ok(callback) => callback,
        Err(why) => return callback_page(StatusCode::BAD_REQUEST, "Sign-in failed", why),
    };
    let result = crate::directory::connect::complete(
        &app.db,
        &crate::auth::Actor::oauth_callback(),
        &app.services.oauth(),
        callback,
    )
    .await;
    if let Ok(model) = &result {
        app.authorized(model).await;
    }
    outcome_page(result)
}

/// The callback's parameters, once they pass: a state, and every value within the text
/// policy and 4,096 characters (what the browser brings is outside input like any other);
/// else why not.
fn checked_callback(
    query: CallbackQuery,
) -> Result<crate::directory::connect::Callback, &'static str> {
    let Some(state) = query.state.filter(|s| !s.is_empty()) else {
        return Err("The request carries no state.");
    };
    let fields = [
        &query.code,
        &query.error,
        &query.error_description,
        &query.error_subcode,
    ];
    if std::iter::once(&Some(state.clone()))
        .chain(fields)
        .flatten()
        .any(|v| crate::text::check_len(v, crate::text::Lines::Multi, 4096).is_err())
    {
        return Err("The request carries a value that is too long or holds control characters.");
    }
    Ok(crate::directory::connect::Callback {
        state,
        code: query.code,
        error: query.error,
        error_description: query.error_description,
        error_subcode: query.error_subcode,
    })
}

/// The page that ends the sign-in: connected, not yet (with the integration's status and
/// reason), or failed (500 only for dirgate's own failure, which is logged).
fn outcome_page(result: Result<entity::integration::Model, DomainError>) -> Response {
    use entity::enums::IntegrationStatus as S;
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

/// Ready to serve: the database answers and holds every migration this binary knows (a load
/// balancer keeps traffic away until then). 503 with the reason otherwise.
async fn readyz(State(app): State<App>) -> impl IntoResponse {
    let unavailable = |body: serde_json::Value| (StatusCode::SERVICE_UNAVAILABLE, Json(body));
    match crate::db::pending_migrations(&app.db).await {
        Ok(0) => {
            match crate::storage::writable(|| crate::store::events::probe_write(&app.db)).await {
                Ok(()) => (
                    StatusCode::OK,
                    Json(serde_json::json!({ "status": "ready" })),
                ),
                Err(cause) => unavailable(serde_json::json!({
                    "status": "writes refused",
                    "cause": cause,
                })),
            }
        }
        Ok(pending) => unavailable(serde_json::json!({
            "status": "migrations pending",
            "pending": pending,
        })),
        Err(err) => {
            tracing::error!(error = %err, "readiness check: database unreachable");
            unavailable(serde_json::json!({ "status": "database unreachable" }))
        }
    }
}

/// Prometheus' text format; needs an API token of any role (`Authorization: Bearer`, which
/// Prometheus sends with `authorization: {credentials_file: ...}`), since the figures name
/// integrations and show traffic.
async fn metrics(
    State(app): State<App>,
    proof: Option<axum::Extension<Proof>>,
    headers: axum::http::HeaderMap,
) -> Response {
    if graphql::authenticate(&app, &headers)
        .await
        .caller()
        .is_err()
    {
        let mut response = (
            StatusCode::UNAUTHORIZED,
            "/metrics needs `Authorization: Bearer <API token>` (any role)\n",
        )
            .into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"dirgate\""),
        );
        return response;
    }
    if let Some(axum::Extension(proof)) = proof {
        proof.prove();
    }
    match crate::metrics::render(&app.db) {
        Some(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            text,
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "another metrics recorder is installed in this process\n",
        )
            .into_response(),
    }
}

async fn healthz(State(app): State<App>) -> impl IntoResponse {
    match crate::store::ping(&app.db).await {
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
