//! The SCIM 2.0 endpoint (RFC 7643/7644, R13): under `/scim/v2/{integration}`, `/Users` and
//! `/Groups` (create, read, list with filters and paging, replace, patch, delete),
//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`.
//!
//! A request passes [`authenticate`] (the integration's own bearer token, compared in constant
//! time — another integration's token is a 401, never data — and a per-token rate limit), then a
//! handler. Resources are kept as the client sent them (`scim_resource`, canonical names) and
//! dirgate's columns are derived from them, so GraphQL sees every change at once. Deleting a
//! user removes or archives it (R14); a user created or changed here is auto-assigned (R12).

mod groups;
mod list;
pub mod patch;
pub mod schema;
mod search;
mod users;

use groups::{create_group, delete_group, get_group, list_groups, patch_group, replace_group};
use search::{search_all, search_groups, search_users};
use users::{create_user, delete_user, get_user, list_users, patch_user, replace_user};

use crate::{app::App, directory::scim_tokens::token_matches, error::DomainError};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use entity::{enums::DirectoryKind, integration};
use sea_orm::DatabaseConnection;

use serde_json::{Value, json};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

/// The most resources one list answer carries.
pub const MAX_RESULTS: usize = 1000;

/// A SCIM error answer (RFC 7644 §3.12).
#[derive(Debug)]
pub struct ScimError {
    status: StatusCode,
    scim_type: Option<&'static str>,
    detail: String,
    retry_after: Option<u64>,
}

impl ScimError {
    fn new(status: StatusCode, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
            retry_after: None,
        }
    }

    fn bad(scim_type: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }

    fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, None, format!("{what} not found"))
    }

    fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            None,
            "a valid bearer token for this integration is required",
        )
    }
}

/// The one mapping of domain errors to SCIM answers (RFC 7644 §3.12). Only an internal error
/// is a 5xx, and it logs its cause; its detail never carries database text.
impl From<DomainError> for ScimError {
    fn from(err: DomainError) -> Self {
        use DomainError as E;
        let detail = err.to_string();
        match err {
            E::Unauthenticated(_) => Self::unauthorized(),
            E::Forbidden => Self::new(StatusCode::FORBIDDEN, None, detail),
            E::NotFound { what } => Self::not_found(what),
            E::InvalidInput { .. } | E::ConfirmationMismatch | E::PushOnlyIntegration => {
                Self::bad("invalidValue", detail)
            }
            E::LimitExceeded { .. } => Self::bad("tooMany", detail),
            E::NameTaken(_) | E::AlreadyExists { .. } => {
                Self::new(StatusCode::CONFLICT, Some("uniqueness"), detail)
            }
            E::NeedsReauth => Self::new(StatusCode::CONFLICT, None, detail),
            E::RateLimited => Self::new(StatusCode::TOO_MANY_REQUESTS, None, detail),
            E::Timeout { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, None, detail),
            E::Unavailable(_) => {
                let mut err = Self::new(StatusCode::SERVICE_UNAVAILABLE, None, detail);
                err.retry_after = Some(crate::storage::RETRY_AFTER_SECS);
                err
            }
            E::Internal(cause) => {
                tracing::error!(error = %cause, source = ?cause.source(), "SCIM request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "internal error (see the server log)",
                )
            }
        }
    }
}

/// A SCIM error answer for a plain-text refusal of the framework (`http::typed_errors`).
pub fn plain_error(status: StatusCode, detail: String) -> Response {
    let scim_type = (status == StatusCode::BAD_REQUEST).then_some("invalidSyntax");
    ScimError::new(status, scim_type, detail).into_response()
}

impl From<sea_orm::DbErr> for ScimError {
    fn from(err: sea_orm::DbErr) -> Self {
        DomainError::from(err).into()
    }
}

impl From<schema::Invalid> for ScimError {
    fn from(err: schema::Invalid) -> Self {
        Self::bad(err.scim_type, err.detail)
    }
}

impl From<patch::PatchError> for ScimError {
    fn from(err: patch::PatchError) -> Self {
        Self::bad(err.scim_type, err.detail)
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": [schema::ERROR],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut response = scim_json(self.status, &body, None);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dirgate SCIM\""),
            );
        }
        response
    }
}

type ScimResult<T> = Result<T, ScimError>;

fn scim_json(status: StatusCode, body: &Value, etag: Option<&str>) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/scim+json"),
    );
    if let Some(tag) = etag.and_then(|t| HeaderValue::from_str(t).ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// The endpoint's state: the app, and each integration's writer lock.
#[derive(Clone)]
pub struct Scim {
    app: App,
    /// One user write at a time per integration, so two concurrent creates of one `userName`
    /// cannot both pass the uniqueness check (within this process).
    writers: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The SCIM routes, ready to merge into the server's router.
pub fn router(app: App) -> Router {
    let state = Scim {
        app,
        writers: Arc::default(),
    };
    const BASE: &str = "/scim/v2/{integration}";
    Router::new()
        .route(
            &format!("{BASE}/ServiceProviderConfig"),
            get(service_provider_config),
        )
        .route(&format!("{BASE}/ResourceTypes"), get(resource_types))
        .route(&format!("{BASE}/ResourceTypes/{{id}}"), get(resource_type))
        .route(&format!("{BASE}/Schemas"), get(schemas))
        .route(&format!("{BASE}/Schemas/{{id}}"), get(schema_by_id))
        .route(&format!("{BASE}/Users"), get(list_users).post(create_user))
        .route(
            &format!("{BASE}/Users/{{id}}"),
            get(get_user)
                .put(replace_user)
                .patch(patch_user)
                .delete(delete_user),
        )
        .route(
            &format!("{BASE}/Groups"),
            get(list_groups).post(create_group),
        )
        .route(
            &format!("{BASE}/Groups/{{id}}"),
            get(get_group)
                .put(replace_group)
                .patch(patch_group)
                .delete(delete_group),
        )
        .route(&format!("{BASE}/Users/.search"), post(search_users))
        .route(&format!("{BASE}/Groups/.search"), post(search_groups))
        .route(&format!("{BASE}/.search"), post(search_all))
        .route(&format!("{BASE}/{{*rest}}"), any(unknown_endpoint))
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(middleware::from_fn(measure))
        .with_state(state)
}

/// Checks the bearer token against the integration named in the path, and the rate limit;
/// passes the integration on to the handler.
async fn authenticate(
    State(scim): State<Scim>,
    Path(params): Path<HashMap<String, String>>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::auth::bearer_token);
    let id: Option<i64> = params.get("integration").and_then(|i| i.parse().ok());
    let (Some(presented), Some(id)) = (presented, id) else {
        return ScimError::unauthorized().into_response();
    };
    let found = match crate::store::integrations::find(&scim.app.db, id).await {
        Ok(found) => found,
        Err(err) => return ScimError::from(err).into_response(),
    };
    // Unknown integration, not SCIM, or the wrong token: the same 401, so a token tells
    // nothing about other integrations.
    let Some(model) = found
        .filter(|m| m.kind == DirectoryKind::Scim)
        .filter(|m| token_matches(m, presented))
    else {
        return ScimError::unauthorized().into_response();
    };
    if let Err(wait) = scim.app.limits.scim(model.id) {
        crate::metrics::rate_limited("scim");
        let mut err = ScimError::new(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "too many requests for this token; retry later",
        );
        err.retry_after = Some(crate::ratelimit::retry_after_secs(wait));
        return err.into_response();
    }
    let id = model.id;
    request.extensions_mut().insert(model);
    let mut response = next.run(request).await;
    response.extensions_mut().insert(Authenticated(id));
    response.extensions_mut().insert(crate::auth::Proven);
    response
}

/// The integration a SCIM request authenticated as, left on its response for [`measure`].
#[derive(Clone, Copy)]
struct Authenticated(i64);

/// Counts every SCIM request by method, status and integration (only one whose token was
/// valid: an unauthenticated request cannot mint labels) and times it.
async fn measure(request: Request, next: Next) -> Response {
    let method = match *request.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        _ => "other",
    };
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let integration = response.extensions().get::<Authenticated>().map(|a| a.0);
    crate::metrics::scim_request(
        method,
        response.status().as_u16(),
        integration,
        started.elapsed(),
    );
    response
}

impl Scim {
    fn db(&self) -> &DatabaseConnection {
        &self.app.db
    }

    fn writer(&self, integration: i64) -> Arc<tokio::sync::Mutex<()>> {
        self.writers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(integration)
            .or_default()
            .clone()
    }

    fn base(&self, integration: &integration::Model) -> String {
        crate::directory::scim_tokens::base_url(&self.app.config.public_url(), integration.id)
    }
}

type Integration = axum::Extension<integration::Model>;

async fn service_provider_config(State(scim): State<Scim>, i: Integration) -> Response {
    scim_json(
        StatusCode::OK,
        &schema::service_provider_config(&scim.base(&i), MAX_RESULTS),
        None,
    )
}

fn list_of(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [schema::LIST],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// One discovery document by id, or a SCIM 404.
fn one_of(all: Vec<Value>, id: &str, what: &str) -> Response {
    match all.into_iter().find(|r| r["id"] == id) {
        Some(found) => scim_json(StatusCode::OK, &found, None),
        None => ScimError::not_found(what).into_response(),
    }
}

async fn resource_types(State(scim): State<Scim>, i: Integration) -> Response {
    let all = schema::resource_types(&scim.base(&i));
    scim_json(StatusCode::OK, &list_of(all), None)
}

async fn resource_type(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    one_of(schema::resource_types(&scim.base(&i)), &id, "resource type")
}

async fn schemas(State(scim): State<Scim>, i: Integration) -> Response {
    let all = schema::schemas(&scim.base(&i));
    scim_json(StatusCode::OK, &list_of(all), None)
}

async fn schema_by_id(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
) -> Response {
    one_of(schema::schemas(&scim.base(&i)), &id, "schema")
}

async fn unknown_endpoint() -> Response {
    ScimError::not_found("endpoint").into_response()
}

fn version_of(updated: chrono::DateTime<chrono::Utc>) -> String {
    format!("W/\"{}\"", updated.timestamp_micros())
}

/// `If-Match`: a stale version is refused (412) and changes nothing.
fn check_if_match(headers: &HeaderMap, current: &str) -> ScimResult<()> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tags) if tags.trim() != "*" && !tags.split(',').any(|t| t.trim() == current) => {
            Err(ScimError::new(
                StatusCode::PRECONDITION_FAILED,
                None,
                "the resource changed since that version",
            ))
        }
        _ => Ok(()),
    }
}

/// Every SCIM request body: JSON (serde_json refuses nesting past 128 and lone surrogates),
/// then [`schema::check_body`] (nesting, list lengths, the text policy).
fn parse_body(body: &Bytes) -> ScimResult<Value> {
    let value = serde_json::from_slice(body)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("the body is not JSON: {e}")))?;
    schema::check_body(&value)?;
    Ok(value)
}

/// A non-empty string value.
fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

/// Whether `id` could name a resource: ids are at most 128 characters and pass the text
/// policy. Anything else is a 404 without a query (PostgreSQL refuses a NUL in text).
fn plausible_id(id: &str) -> bool {
    crate::text::check_len(id, crate::text::Lines::Single, 128).is_ok()
}

/// A new resource id: a random (version 4) UUID.
fn new_scim_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_trouble_is_503_with_retry_after() {
        let err = ScimError::from(DomainError::Unavailable(crate::storage::DISK_FULL));
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.retry_after, Some(crate::storage::RETRY_AFTER_SECS));
        assert!(err.detail.contains("disk is full"), "{}", err.detail);
        let answer = err.into_response();
        assert_eq!(answer.headers()["retry-after"], "30");
    }
}
