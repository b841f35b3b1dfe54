//! The SCIM 2.0 endpoint (RFC 7643/7644, R13): under `/scim/v2/{integration}`, `/Users` and
//! `/Groups` (create, read, list with filters and paging, replace, patch, delete),
//! `/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`.
//!
//! A request passes [`authenticate`] (the integration's own bearer token, compared in constant
//! time — another integration's token is a 401, never data — and a per-token rate limit), then a
//! handler. Resources are kept as the client sent them (`scim_resource`, canonical names) and
//! dirgate's columns are derived from them, so GraphQL sees every change at once. Deleting a
//! user removes or archives it (R14); a user created or changed here is auto-assigned (R12).

pub mod filter;
mod groups;
pub mod patch;
pub mod query;
pub mod schema;
mod users;

use groups::*;
use users::*;

use crate::{
    app::App,
    auth::Actor,
    directory::{devices, match_key, now, scim::token_matches},
    error::DomainError,
};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use entity::{
    device, directory_group, directory_user,
    enums::{DirectoryKind, UserStatus},
    group_membership, integration, user_alias,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set,
    TransactionTrait,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::{
    collections::{HashMap, HashSet},
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
    let found = match integration::Entity::find_by_id(id).one(&scim.app.db).await {
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
        let mut err = ScimError::new(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "too many requests for this token; retry later",
        );
        err.retry_after = Some(crate::ratelimit::retry_after_secs(wait));
        return err.into_response();
    }
    request.extensions_mut().insert(model);
    next.run(request).await
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
        crate::directory::scim::base_url(&self.app.config.public_url(), integration.id)
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

/// The body of `POST /.search` (RFC 7644 §3.4.3).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchRequest {
    #[serde(default)]
    schemas: Vec<String>,
    filter: Option<String>,
    start_index: Option<i64>,
    count: Option<i64>,
    #[serde(default)]
    attributes: Vec<String>,
    #[serde(default)]
    excluded_attributes: Vec<String>,
}

fn search_params(body: &Bytes) -> ScimResult<ListParams> {
    let search: SearchRequest = serde_json::from_value(parse_body(body)?)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("not a SearchRequest: {e}")))?;
    const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";
    if !search
        .schemas
        .iter()
        .any(|s| s.eq_ignore_ascii_case(SEARCH))
    {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("`schemas` must be [\"{SEARCH}\"]"),
        ));
    }
    let join = |v: Vec<String>| (!v.is_empty()).then(|| v.join(","));
    Ok(ListParams {
        filter: search.filter,
        start_index: search.start_index.map(|n| n.to_string()),
        count: search.count.map(|n| n.to_string()),
        attributes: join(search.attributes),
        excluded_attributes: join(search.excluded_attributes),
    })
}

async fn search_users(scim: State<Scim>, i: Integration, body: Bytes) -> ScimResult<Response> {
    list_users(scim, i, Query(search_params(&body)?)).await
}

/// `POST /.search` at the root: users and groups together, users first. A filter on an
/// attribute one type lacks matches nothing of that type.
async fn search_all(State(scim): State<Scim>, i: Integration, body: Bytes) -> ScimResult<Response> {
    let params = search_params(&body)?;
    let paging = params.paging()?;
    let filter = params.filter()?;
    let base = scim.base(&i);
    let users = directory_user::Entity::find()
        .filter(directory_user::Column::IntegrationId.eq(i.id))
        .filter(directory_user::Column::Status.ne(UserStatus::Archived));
    let groups =
        directory_group::Entity::find().filter(directory_group::Column::IntegrationId.eq(i.id));
    let user_condition = params.condition(scim.db(), query::Resource::User);
    let group_condition = params.condition(scim.db(), query::Resource::Group);
    // `None`: no filter. A type whose attributes the filter does not have matches nothing.
    let (user_condition, group_condition) = match (user_condition, group_condition) {
        (Err(err), Err(_)) => return Err(err),
        (Ok(u), Err(_)) => (u, Some(query::Translated::nothing())),
        (Err(_), Ok(g)) => (Some(query::Translated::nothing()), g),
        (Ok(u), Ok(g)) => (u, g),
    };
    let inexact = [&user_condition, &group_condition]
        .iter()
        .any(|c| c.as_ref().is_some_and(|t| !t.exact));
    if inexact {
        // Bounded candidates of both types; the evaluator decides.
        let everything = Paging {
            start: 1,
            count: query::MAX_INEXACT_ROWS as usize,
        };
        let users = match window(scim.db(), users, user_condition.clone(), &everything).await? {
            Window::Page { rows, .. } | Window::Candidates(rows) => rows,
        };
        let groups = match window(scim.db(), groups, group_condition.clone(), &everything).await? {
            Window::Page { rows, .. } | Window::Candidates(rows) => rows,
        };
        let matching: Vec<Value> = render_users(scim.db(), &base, &users)
            .await?
            .into_iter()
            .chain(render_groups(scim.db(), &base, &groups, params.wants_members()).await?)
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
            .collect();
        return Ok(list_response(&params, matching, &paging));
    }
    let user_total = count(scim.db(), users.clone(), user_condition.clone()).await?;
    let group_total = count(scim.db(), groups.clone(), group_condition.clone()).await?;
    let offset = (paging.start - 1) as u64;
    let wanted = paging.count as u64;
    let mut page = Vec::new();
    if offset < user_total && wanted > 0 {
        let rows = apply(users, user_condition.clone())
            .order_by_asc(directory_user::Column::Id)
            .offset(offset)
            .limit(wanted)
            .all(scim.db())
            .await?;
        page.extend(render_users(scim.db(), &base, &rows).await?);
    }
    let left = wanted - page.len() as u64;
    if left > 0 {
        let rows = apply(groups, group_condition.clone())
            .order_by_asc(directory_group::Column::Id)
            .offset(offset.saturating_sub(user_total))
            .limit(left)
            .all(scim.db())
            .await?;
        page.extend(render_groups(scim.db(), &base, &rows, params.wants_members()).await?);
    }
    Ok(page_response(
        &params,
        user_total + group_total,
        page,
        &paging,
    ))
}

async fn search_groups(scim: State<Scim>, i: Integration, body: Bytes) -> ScimResult<Response> {
    list_groups(scim, i, Query(search_params(&body)?)).await
}

// ---------------------------------------------------------------------------------------------
// Listing: filter, paging, attribute selection.

/// The query parameters of a list or a read.
#[derive(Debug, Default, Deserialize)]
pub struct ListParams {
    filter: Option<String>,
    #[serde(rename = "startIndex")]
    start_index: Option<String>,
    count: Option<String>,
    attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    excluded_attributes: Option<String>,
}

struct Paging {
    start: usize,
    count: usize,
}

impl ListParams {
    fn paging(&self) -> ScimResult<Paging> {
        let number = |raw: &Option<String>, name: &str| -> ScimResult<Option<i64>> {
            raw.as_deref()
                .map(|v| {
                    v.trim().parse::<i64>().map_err(|_| {
                        ScimError::bad("invalidValue", format!("`{name}` must be an integer"))
                    })
                })
                .transpose()
        };
        // RFC 7644 §3.4.2.4: below 1 means 1; a negative count means 0.
        let start = number(&self.start_index, "startIndex")?.unwrap_or(1).max(1) as usize;
        let count = number(&self.count, "count")?
            .unwrap_or(MAX_RESULTS as i64)
            .clamp(0, MAX_RESULTS as i64) as usize;
        Ok(Paging { start, count })
    }

    fn filter(&self) -> ScimResult<Option<filter::Filter>> {
        self.filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .map(|f| filter::parse(f).map_err(|e| ScimError::bad("invalidFilter", e)))
            .transpose()
    }

    /// The filter as a condition on `resource` (`None` without a filter).
    fn condition(
        &self,
        db: &DatabaseConnection,
        resource: query::Resource,
    ) -> ScimResult<Option<query::Translated>> {
        self.filter()?
            .map(|f| {
                query::translate(&f, resource, db.get_database_backend())
                    .map_err(|e| ScimError::bad("invalidFilter", e))
            })
            .transpose()
    }

    fn wants_members(&self) -> bool {
        let listed = |raw: &Option<String>| {
            raw.as_deref().is_some_and(|a| {
                a.split(',')
                    .any(|x| x.trim().eq_ignore_ascii_case("members"))
            })
        };
        if self.attributes.is_some() {
            return listed(&self.attributes);
        }
        !listed(&self.excluded_attributes)
    }

    /// Applies `attributes` / `excludedAttributes` to a rendered resource.
    fn project(&self, resource: Value) -> Value {
        let paths = |raw: &str| -> Vec<String> {
            raw.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        };
        if let Some(wanted) = self.attributes.as_deref() {
            let mut out = Map::new();
            for always in ["schemas", "id"] {
                if let Some(v) = resource.get(always) {
                    out.insert(always.into(), v.clone());
                }
            }
            for path in paths(wanted) {
                copy_path(&resource, &mut out, &path);
            }
            return Value::Object(out);
        }
        if let Some(excluded) = self.excluded_attributes.as_deref() {
            let mut resource = resource;
            for path in paths(excluded) {
                remove_path(&mut resource, &path);
            }
            return resource;
        }
        resource
    }
}

fn copy_path(from: &Value, to: &mut Map<String, Value>, path: &str) {
    let Ok(parsed) = filter::parse_attr_path(path) else {
        return;
    };
    let (source, target) = match &parsed.uri {
        Some(uri) if !uri.to_ascii_lowercase().contains(":core:") => {
            let Some((key, ext)) = from
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(uri)))
            else {
                return;
            };
            let holder = to
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            (ext, holder.as_object_mut().expect("an object"))
        }
        _ => (from, &mut *to),
    };
    let Some((key, value)) = source
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(&parsed.attr)))
    else {
        return;
    };
    match &parsed.sub {
        None => {
            target.insert(key.clone(), value.clone());
        }
        Some(sub) => {
            let pick = |v: &Value| {
                let mut o = Map::new();
                if let Some((k, x)) = v
                    .as_object()
                    .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(sub)))
                {
                    o.insert(k.clone(), x.clone());
                }
                Value::Object(o)
            };
            let picked = match value {
                Value::Array(items) => Value::Array(items.iter().map(pick).collect()),
                other => pick(other),
            };
            target.insert(key.clone(), picked);
        }
    }
}

fn remove_path(resource: &mut Value, path: &str) {
    let Ok(parsed) = filter::parse_attr_path(path) else {
        return;
    };
    if ["id", "schemas"]
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&parsed.attr))
        && parsed.uri.is_none()
    {
        return;
    }
    let Some(root) = resource.as_object_mut() else {
        return;
    };
    let scope = match &parsed.uri {
        Some(uri) if !uri.to_ascii_lowercase().contains(":core:") => {
            match root
                .iter_mut()
                .find(|(k, _)| k.eq_ignore_ascii_case(uri))
                .and_then(|(_, v)| v.as_object_mut())
            {
                Some(ext) => ext,
                None => return,
            }
        }
        _ => root,
    };
    let Some(key) = scope
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&parsed.attr))
        .cloned()
    else {
        return;
    };
    match &parsed.sub {
        None => {
            scope.remove(&key);
        }
        Some(sub) => {
            let strip = |v: &mut Value| {
                if let Some(o) = v.as_object_mut()
                    && let Some(k) = o.keys().find(|k| k.eq_ignore_ascii_case(sub)).cloned()
                {
                    o.remove(&k);
                }
            };
            match scope.get_mut(&key) {
                Some(Value::Array(items)) => items.iter_mut().for_each(strip),
                Some(other) => strip(other),
                None => {}
            }
        }
    }
}

/// A list answer paged in memory (discovery lists, and the bounded candidates of an inexact
/// filter).
fn list_response(params: &ListParams, matching: Vec<Value>, paging: &Paging) -> Response {
    let total = matching.len() as u64;
    let page: Vec<Value> = matching
        .into_iter()
        .skip(paging.start - 1)
        .take(paging.count)
        .collect();
    page_response(params, total, page, paging)
}

/// A list answer for one page counted in the database.
fn page_response(params: &ListParams, total: u64, page: Vec<Value>, paging: &Paging) -> Response {
    let page: Vec<Value> = page.into_iter().map(|r| params.project(r)).collect();
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [schema::LIST],
            "totalResults": total,
            "startIndex": paging.start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }),
        None,
    )
}

/// What a list reads from the database.
enum Window<M> {
    /// The filter was decided in SQL: the number of matches and the requested page.
    Page { total: u64, rows: Vec<M> },
    /// The filter's condition is a superset: every candidate (at most
    /// `query::MAX_INEXACT_ROWS`), for the evaluator to decide and page.
    Candidates(Vec<M>),
}

fn apply<E: EntityTrait>(
    select: sea_orm::Select<E>,
    condition: Option<query::Translated>,
) -> sea_orm::Select<E> {
    match condition {
        Some(t) => select.filter(t.condition),
        None => select,
    }
}

async fn count<E>(
    db: &DatabaseConnection,
    select: sea_orm::Select<E>,
    condition: Option<query::Translated>,
) -> ScimResult<u64>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    Ok(apply(select, condition).count(db).await?)
}

/// Reads what a list needs: a count and one page, or the bounded candidates of an inexact
/// filter (more than `query::MAX_INEXACT_ROWS` is `400 tooMany`). Rows come in id order.
///
/// The page is found by id first (an index-only read on `(integration_id, id, status)`), then
/// read whole. When the count is small, the matching ids are read without `ORDER BY … LIMIT`
/// and sorted here: with a selective filter a planner would otherwise walk the id index and
/// test every row.
async fn window<E>(
    db: &DatabaseConnection,
    select: sea_orm::Select<E>,
    condition: Option<query::Translated>,
    paging: &Paging,
) -> ScimResult<Window<E::Model>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    const SMALL: u64 = 1_000;
    use sea_orm::{Iterable, ModelTrait, PrimaryKeyToColumn};
    let id = E::PrimaryKey::iter()
        .next()
        .expect("every entity has a primary key")
        .into_column();
    let id_of = |model: &E::Model| match model.get(id) {
        sea_orm::Value::BigInt(Some(v)) => v,
        _ => 0,
    };
    if let Some(t) = condition.as_ref().filter(|t| !t.exact) {
        let mut rows = select
            .filter(t.condition.clone())
            .limit(query::MAX_INEXACT_ROWS + 1)
            .all(db)
            .await?;
        if rows.len() as u64 > query::MAX_INEXACT_ROWS {
            return Err(ScimError::bad(
                "tooMany",
                format!(
                    "the filter leaves more than {} candidates; narrow it by value",
                    query::MAX_INEXACT_ROWS
                ),
            ));
        }
        rows.sort_by_key(|m| id_of(m));
        return Ok(Window::Candidates(rows));
    }
    let select = apply(select, condition);
    let total = select.clone().count(db).await?;
    let offset = (paging.start - 1) as u64;
    if paging.count == 0 || offset >= total {
        return Ok(Window::Page {
            total,
            rows: Vec::new(),
        });
    }
    let ids_of = select.clone().select_only().column(id);
    let ids: Vec<i64> = if total <= SMALL {
        let mut all: Vec<i64> = ids_of.into_tuple().all(db).await?;
        all.sort_unstable();
        all.into_iter()
            .skip(offset as usize)
            .take(paging.count)
            .collect()
    } else {
        ids_of
            .order_by_asc(id)
            .offset(offset)
            .limit(paging.count as u64)
            .into_tuple()
            .all(db)
            .await?
    };
    let mut rows = E::find().filter(id.is_in(ids)).all(db).await?;
    rows.sort_by_key(|m| id_of(m));
    Ok(Window::Page { total, rows })
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
