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
pub mod patch;
pub mod schema;

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
    IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    RelationTrait, Set, TransactionTrait,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
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

impl From<DomainError> for ScimError {
    fn from(err: DomainError) -> Self {
        tracing::error!(error = %err, "SCIM request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "internal error (see the server log)",
        )
    }
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

/// The endpoint's state: the app, and each integration's request count this second.
#[derive(Clone)]
pub struct Scim {
    app: App,
    windows: Arc<Mutex<HashMap<i64, (Instant, u32)>>>,
    /// One user write at a time per integration, so two concurrent creates of one `userName`
    /// cannot both pass the uniqueness check (within this process).
    writers: Arc<Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The SCIM routes, ready to merge into the server's router.
pub fn router(app: App) -> Router {
    let state = Scim {
        app,
        windows: Arc::default(),
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
        .and_then(crate::http::bearer_token);
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
    if let Some(wait) = scim.throttle(model.id) {
        let mut err = ScimError::new(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "too many requests for this token; retry later",
        );
        err.retry_after = Some(wait);
        return err.into_response();
    }
    request.extensions_mut().insert(model);
    next.run(request).await
}

impl Scim {
    /// Counts a request of `integration` in the current one-second window; `Some(seconds)`
    /// to wait when the window is full.
    fn throttle(&self, integration: i64) -> Option<u64> {
        let limit = self.app.config.scim_requests_per_second;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let window = windows.entry(integration).or_insert((now, 0));
        if now.duration_since(window.0) >= Duration::from_secs(1) {
            *window = (now, 0);
        }
        window.1 += 1;
        (window.1 > limit).then_some(1)
    }

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
    let search: SearchRequest = serde_json::from_slice(body)
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

async fn search_users(scim: State<Scim>, i: Integration, body: Bytes) -> Response {
    match search_params(&body) {
        Ok(params) => list_users(scim, i, Query(params)).await,
        Err(err) => err.into_response(),
    }
}

/// `POST /.search` at the root: users and groups together.
async fn search_all(State(scim): State<Scim>, i: Integration, body: Bytes) -> Response {
    let run = async {
        let params = search_params(&body)?;
        let paging = params.paging()?;
        let filter = params.filter()?;
        let base = scim.base(&i);
        let users = directory_user::Entity::find()
            .filter(directory_user::Column::IntegrationId.eq(i.id))
            .filter(directory_user::Column::Status.ne(UserStatus::Archived))
            .order_by_asc(directory_user::Column::Id)
            .all(scim.db())
            .await?;
        let groups = directory_group::Entity::find()
            .filter(directory_group::Column::IntegrationId.eq(i.id))
            .order_by_asc(directory_group::Column::Id)
            .all(scim.db())
            .await?;
        let members = if params.wants_members() {
            let ids: Vec<i64> = groups.iter().map(|g| g.id).collect();
            Some(members_of(scim.db(), &ids).await?)
        } else {
            None
        };
        let empty = Vec::new();
        let matching: Vec<Value> = render_users(scim.db(), &base, &users)
            .await?
            .into_iter()
            .chain(groups.iter().map(|g| {
                let m = members.as_ref().map(|m| m.get(&g.id).unwrap_or(&empty));
                render_group(&base, g, m)
            }))
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
            .collect();
        Ok::<_, ScimError>(list_response(&params, matching, &paging))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn search_groups(scim: State<Scim>, i: Integration, body: Bytes) -> Response {
    match search_params(&body) {
        Ok(params) => list_groups(scim, i, Query(params)).await,
        Err(err) => err.into_response(),
    }
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

fn list_response(params: &ListParams, matching: Vec<Value>, paging: &Paging) -> Response {
    let total = matching.len();
    let page: Vec<Value> = matching
        .into_iter()
        .skip(paging.start - 1)
        .take(paging.count)
        .map(|r| params.project(r))
        .collect();
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

fn parse_body(body: &Bytes) -> ScimResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ScimError::bad("invalidSyntax", format!("the body is not JSON: {e}")))
}

fn new_scim_id() -> String {
    let mut bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

// ---------------------------------------------------------------------------------------------
// Users.

/// What dirgate's columns hold, derived from a SCIM user.
struct UserColumns {
    user_name: String,
    email: Option<String>,
    aliases: Vec<String>,
    display_name: String,
    given_name: Option<String>,
    family_name: Option<String>,
    title: Option<String>,
    department: Option<String>,
    employee_number: Option<String>,
    manager: Option<String>,
    active: bool,
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .map(str::to_owned)
        .filter(|s| !s.is_empty())
}

fn user_columns(resource: &Map<String, Value>) -> ScimResult<UserColumns> {
    let user_name = text(resource.get("userName"))
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| ScimError::bad("invalidValue", "`userName` is required"))?;
    let name = resource.get("name");
    let given_name = text(name.and_then(|n| n.get("givenName")));
    let family_name = text(name.and_then(|n| n.get("familyName")));
    let emails: Vec<(&Value, String)> = resource
        .get("emails")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| text(e.get("value")).map(|v| (e, v)))
                .collect()
        })
        .unwrap_or_default();
    let primary = emails
        .iter()
        .find(|(e, _)| e.get("primary") == Some(&Value::Bool(true)))
        .or_else(|| {
            emails
                .iter()
                .find(|(e, _)| e.get("type").and_then(Value::as_str) == Some("work"))
        })
        .or(emails.first())
        .map(|(_, v)| v.clone());
    let aliases = emails
        .iter()
        .map(|(_, v)| v.clone())
        .filter(|v| Some(v) != primary.as_ref())
        .collect();
    let display_name = text(resource.get("displayName"))
        .or_else(|| text(name.and_then(|n| n.get("formatted"))))
        .or_else(|| {
            let parts: Vec<&str> = [given_name.as_deref(), family_name.as_deref()]
                .into_iter()
                .flatten()
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
        .unwrap_or_else(|| user_name.clone());
    let enterprise = resource.get(schema::ENTERPRISE);
    Ok(UserColumns {
        email: primary,
        aliases,
        display_name,
        given_name,
        family_name,
        title: text(resource.get("title")),
        department: text(enterprise.and_then(|e| e.get("department"))),
        employee_number: text(enterprise.and_then(|e| e.get("employeeNumber"))),
        manager: text(
            enterprise
                .and_then(|e| e.get("manager"))
                .and_then(|m| m.get("value")),
        ),
        active: resource.get("active") != Some(&Value::Bool(false)),
        user_name,
    })
}

fn stored_resource(raw: Option<&str>) -> Map<String, Value> {
    raw.and_then(|r| serde_json::from_str::<Map<String, Value>>(r).ok())
        .unwrap_or_default()
}

/// The groups users are direct members of: `user row id → [(group SCIM id, name)]`.
async fn groups_of(
    db: &DatabaseConnection,
    users: &[i64],
) -> ScimResult<HashMap<i64, Vec<(String, String)>>> {
    let mut out: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for chunk in users.chunks(1000) {
        let rows: Vec<(i64, String, String)> = group_membership::Entity::find()
            .select_only()
            .column(group_membership::Column::UserId)
            .column_as(directory_group::Column::ExternalId, "external_id")
            .column_as(directory_group::Column::DisplayName, "display_name")
            .join(
                sea_orm::JoinType::InnerJoin,
                group_membership::Relation::Group.def(),
            )
            .filter(group_membership::Column::UserId.is_in(chunk.iter().copied()))
            .order_by_asc(directory_group::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
        for (user, id, name) in rows {
            out.entry(user).or_default().push((id, name));
        }
    }
    Ok(out)
}

/// Users rendered with their groups, in one query for all of them.
async fn render_users(
    db: &DatabaseConnection,
    base: &str,
    rows: &[directory_user::Model],
) -> ScimResult<Vec<Value>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let groups = groups_of(db, &ids).await?;
    Ok(rows
        .iter()
        .map(|r| {
            render_user(
                base,
                r,
                groups.get(&r.id).map(Vec::as_slice).unwrap_or_default(),
            )
        })
        .collect())
}

fn render_user(base: &str, row: &directory_user::Model, groups: &[(String, String)]) -> Value {
    let mut resource = stored_resource(row.scim_resource.as_deref());
    if resource.is_empty() {
        resource.insert("userName".into(), json!(row.user_name));
        resource.insert("displayName".into(), json!(row.display_name));
    }
    let mut schemas = vec![json!(schema::USER)];
    if resource.contains_key(schema::ENTERPRISE) {
        schemas.push(json!(schema::ENTERPRISE));
    }
    resource.insert("schemas".into(), Value::Array(schemas));
    resource.insert("id".into(), json!(row.external_id));
    // `active` is answered when the client set it, or when the user is suspended.
    if resource.contains_key("active") || row.status == UserStatus::Suspended {
        resource.insert("active".into(), json!(row.status == UserStatus::Active));
    }
    if !groups.is_empty() {
        resource.insert(
            "groups".into(),
            Value::Array(
                groups
                    .iter()
                    .map(|(id, name)| {
                        json!({
                            "value": id,
                            "display": name,
                            "type": "direct",
                            "$ref": format!("{base}/Groups/{id}"),
                        })
                    })
                    .collect(),
            ),
        );
    }
    resource.insert(
        "meta".into(),
        json!({
            "resourceType": "User",
            "created": row.created_at.to_rfc3339(),
            "lastModified": row.updated_at.to_rfc3339(),
            "location": format!("{base}/Users/{}", row.external_id),
            "version": version_of(row.updated_at),
        }),
    );
    Value::Object(resource)
}

async fn user_response(
    scim: &Scim,
    integration: &integration::Model,
    status: StatusCode,
    row: &directory_user::Model,
    params: &ListParams,
) -> ScimResult<Response> {
    let rendered = render_users(
        scim.db(),
        &scim.base(integration),
        std::slice::from_ref(row),
    )
    .await?
    .pop()
    .unwrap_or_default();
    Ok(scim_json(
        status,
        &params.project(rendered),
        Some(&version_of(row.updated_at)),
    ))
}

fn canonical_user(body: &Value) -> ScimResult<Map<String, Value>> {
    Ok(schema::canonical_resource(
        body,
        &schema::user_attributes(),
        schema::USER,
        Some((schema::ENTERPRISE, schema::enterprise_attributes())),
    )?)
}

/// The integration's user with SCIM id `id` (archived users are gone, for SCIM).
async fn find_user(
    db: &DatabaseConnection,
    integration: i64,
    id: &str,
) -> ScimResult<directory_user::Model> {
    directory_user::Entity::find()
        .filter(directory_user::Column::IntegrationId.eq(integration))
        .filter(directory_user::Column::ExternalId.eq(id))
        .filter(directory_user::Column::Status.ne(UserStatus::Archived))
        .one(db)
        .await?
        .ok_or_else(|| ScimError::not_found("user"))
}

/// The first key of the PostgreSQL advisory lock that serialises SCIM user writes of one
/// integration (the second is the integration's id).
const SCIM_USER_LOCK: i32 = 0x5c1d;

/// Writes a user (a new one when `existing` is `None`) from its canonical resource, refusing
/// a `userName` another user of the integration has (409). A user created or changed here is
/// auto-assigned (R12).
async fn save_user(
    scim: &Scim,
    integration: &integration::Model,
    existing: Option<directory_user::Model>,
    resource: Map<String, Value>,
) -> ScimResult<directory_user::Model> {
    let columns = user_columns(&resource)?;
    let writer = scim.writer(integration.id);
    let _one_at_a_time = writer.lock().await;
    let db = scim.db();
    let key = match_key(&columns.user_name);
    let txn = db.begin().await?;
    // Across processes sharing a PostgreSQL database: the same, held until the transaction ends.
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, $2)",
            [SCIM_USER_LOCK.into(), (integration.id as i32).into()],
        ))
        .await?;
    }
    let clash = directory_user::Entity::find()
        .filter(directory_user::Column::IntegrationId.eq(integration.id))
        .filter(directory_user::Column::UserNameKey.eq(&key))
        .all(&txn)
        .await?;
    let mut existing = existing;
    for other in clash {
        if existing.as_ref().is_some_and(|e| e.id == other.id) {
            continue;
        }
        if other.status == UserStatus::Archived && existing.is_none() {
            // A user deleted here (kept for its devices, R14) and created again comes back.
            existing = Some(other);
            continue;
        }
        return Err(ScimError::new(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("userName `{}` is taken", columns.user_name),
        ));
    }
    let at = now();
    let status = if columns.active {
        UserStatus::Active
    } else {
        UserStatus::Suspended
    };
    let mut active = match &existing {
        Some(row) => row.clone().into_active_model(),
        None => directory_user::ActiveModel {
            integration_id: Set(Some(integration.id)),
            external_id: Set(new_scim_id()),
            created_at: Set(at),
            ..Default::default()
        },
    };
    active.origin_name = Set(integration.name.clone());
    active.user_name = Set(columns.user_name.clone());
    active.user_name_key = Set(key);
    active.email_key = Set(columns.email.as_deref().map(match_key));
    active.email = Set(columns.email.clone());
    active.display_name = Set(columns.display_name.clone());
    active.given_name = Set(columns.given_name.clone());
    active.family_name = Set(columns.family_name.clone());
    active.job_title = Set(columns.title.clone());
    active.department = Set(columns.department.clone());
    active.employee_id = Set(columns.employee_number.clone());
    active.manager_external_id = Set(columns.manager.clone());
    active.status = Set(status);
    active.archived_at = Set(None);
    active.updated_at = Set(at);
    active.scim_external_id = Set(text(resource.get("externalId")));
    active.scim_resource = Set(Some(Value::Object(resource).to_string()));
    let row = match existing {
        Some(_) => active.update(&txn).await?,
        None => active.insert(&txn).await?,
    };
    user_alias::Entity::delete_many()
        .filter(user_alias::Column::UserId.eq(row.id))
        .exec(&txn)
        .await?;
    let mut seen = HashSet::new();
    let aliases: Vec<user_alias::ActiveModel> = columns
        .aliases
        .iter()
        .filter(|a| seen.insert(match_key(a)))
        .map(|a| user_alias::ActiveModel {
            user_id: Set(row.id),
            alias: Set(a.clone()),
            alias_key: Set(match_key(a)),
            ..Default::default()
        })
        .collect();
    if !aliases.is_empty() {
        user_alias::Entity::insert_many(aliases)
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    if integration.auto_assign_devices {
        devices::auto_assign_users(db, &Actor::sync(), &[row.id]).await?;
    }
    Ok(row)
}

async fn create_user(State(scim): State<Scim>, i: Integration, body: Bytes) -> Response {
    let run = async {
        let resource = canonical_user(&parse_body(&body)?)?;
        let row = save_user(&scim, &i, None, resource).await?;
        user_response(&scim, &i, StatusCode::CREATED, &row, &ListParams::default()).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn get_user(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> Response {
    let run = async {
        let row = find_user(scim.db(), i.id, &id).await?;
        user_response(&scim, &i, StatusCode::OK, &row, &params).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn replace_user(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        let row = find_user(scim.db(), i.id, &id).await?;
        check_if_match(&headers, &version_of(row.updated_at))?;
        let resource = canonical_user(&parse_body(&body)?)?;
        let row = save_user(&scim, &i, Some(row), resource).await?;
        user_response(&scim, &i, StatusCode::OK, &row, &ListParams::default()).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

fn known_user_path(path: &filter::PatchPath) -> bool {
    let a = &path.attr;
    if a.attr.eq_ignore_ascii_case("externalId") && a.uri.is_none() {
        return true;
    }
    let attrs = match &a.uri {
        Some(uri) if uri.eq_ignore_ascii_case(schema::ENTERPRISE) => {
            schema::enterprise_attributes()
        }
        Some(uri) if !uri.eq_ignore_ascii_case(schema::USER) => return false,
        _ => schema::user_attributes(),
    };
    attrs.iter().any(|x| {
        x.name.eq_ignore_ascii_case(&a.attr)
            && a.sub
                .as_deref()
                .is_none_or(|s| x.sub.iter().any(|y| y.name.eq_ignore_ascii_case(s)))
    })
}

async fn patch_user(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        let row = find_user(scim.db(), i.id, &id).await?;
        check_if_match(&headers, &version_of(row.updated_at))?;
        let body = parse_body(&body)?;
        let mut current = render_user(&scim.base(&i), &row, &[]);
        patch::apply(&mut current, &body, &known_user_path)?;
        let resource = canonical_user(&current)?;
        let row = save_user(&scim, &i, Some(row), resource).await?;
        user_response(&scim, &i, StatusCode::OK, &row, &ListParams::default()).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

/// Deletes a user: removed without a device, archived (detached from its groups) with one
/// (R14). Either way it is gone for SCIM.
async fn delete_user(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let row = find_user(scim.db(), i.id, &id).await?;
        check_if_match(&headers, &version_of(row.updated_at))?;
        let txn = scim.db().begin().await?;
        let has_device = device::Entity::find()
            .filter(device::Column::UserId.eq(row.id))
            .count(&txn)
            .await?
            > 0;
        if has_device {
            let mut active = row.into_active_model();
            active.status = Set(UserStatus::Archived);
            active.archived_at = Set(Some(now()));
            active.updated_at = Set(now());
            let row = active.update(&txn).await?;
            group_membership::Entity::delete_many()
                .filter(group_membership::Column::UserId.eq(row.id))
                .exec(&txn)
                .await?;
        } else {
            directory_user::Entity::delete_by_id(row.id)
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok::<_, ScimError>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn list_users(
    State(scim): State<Scim>,
    i: Integration,
    Query(params): Query<ListParams>,
) -> Response {
    let run = async {
        let paging = params.paging()?;
        let filter = params.filter()?;
        let mut query = directory_user::Entity::find()
            .filter(directory_user::Column::IntegrationId.eq(i.id))
            .filter(directory_user::Column::Status.ne(UserStatus::Archived))
            .order_by_asc(directory_user::Column::Id);
        // The lookups clients make before every create go to an index.
        match filter.as_ref().and_then(filter::Filter::simple_eq) {
            Some((attr, value)) if attr.eq_ignore_ascii_case("userName") => {
                query = query.filter(directory_user::Column::UserNameKey.eq(match_key(value)));
            }
            Some((attr, value)) if attr.eq_ignore_ascii_case("id") => {
                query = query.filter(directory_user::Column::ExternalId.eq(value));
            }
            Some((attr, value)) if attr.eq_ignore_ascii_case("externalId") => {
                query = query.filter(directory_user::Column::ScimExternalId.eq(value));
            }
            _ => {
                // Entra's `emails[type eq "work"].value eq "…"`: only users with that address
                // can match; the filter itself then decides.
                if let Some(address) = filter.as_ref().and_then(filter::Filter::email_eq) {
                    let key = match_key(address);
                    let with_alias = user_alias::Entity::find()
                        .select_only()
                        .column(user_alias::Column::UserId)
                        .filter(user_alias::Column::AliasKey.eq(key.clone()))
                        .into_query();
                    query = query.filter(
                        sea_orm::Condition::any()
                            .add(directory_user::Column::EmailKey.eq(key))
                            .add(directory_user::Column::Id.in_subquery(with_alias)),
                    );
                }
            }
        }
        if filter.is_none() {
            // No filter: count in the database, read one page.
            let total = query.clone().count(scim.db()).await? as usize;
            let rows = query
                .offset((paging.start - 1) as u64)
                .limit(paging.count as u64)
                .all(scim.db())
                .await?;
            let page: Vec<Value> = render_users(scim.db(), &scim.base(&i), &rows)
                .await?
                .into_iter()
                .map(|r| params.project(r))
                .collect();
            return Ok::<_, ScimError>(scim_json(
                StatusCode::OK,
                &json!({
                    "schemas": [schema::LIST],
                    "totalResults": total,
                    "startIndex": paging.start,
                    "itemsPerPage": page.len(),
                    "Resources": page,
                }),
                None,
            ));
        }
        let rows = query.all(scim.db()).await?;
        let matching: Vec<Value> = render_users(scim.db(), &scim.base(&i), &rows)
            .await?
            .into_iter()
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
            .collect();
        Ok(list_response(&params, matching, &paging))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

// ---------------------------------------------------------------------------------------------
// Groups.

/// Members of groups, as `(group row id → [(user SCIM id, display name)])`.
async fn members_of(
    db: &DatabaseConnection,
    groups: &[i64],
) -> ScimResult<HashMap<i64, Vec<(String, String)>>> {
    let mut out: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    if groups.is_empty() {
        return Ok(out);
    }
    for chunk in groups.chunks(1000) {
        let rows: Vec<(i64, String, String)> = group_membership::Entity::find()
            .select_only()
            .column(group_membership::Column::GroupId)
            .column_as(directory_user::Column::ExternalId, "external_id")
            .column_as(directory_user::Column::DisplayName, "display_name")
            .join(
                sea_orm::JoinType::InnerJoin,
                group_membership::Relation::User.def(),
            )
            .filter(group_membership::Column::GroupId.is_in(chunk.iter().copied()))
            .order_by_asc(directory_user::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
        for (group, id, name) in rows {
            out.entry(group).or_default().push((id, name));
        }
    }
    Ok(out)
}

fn render_group(
    base: &str,
    row: &directory_group::Model,
    members: Option<&Vec<(String, String)>>,
) -> Value {
    let mut resource = stored_resource(row.scim_resource.as_deref());
    resource.insert("schemas".into(), json!([schema::GROUP]));
    resource.insert("id".into(), json!(row.external_id));
    resource.insert("displayName".into(), json!(row.display_name));
    if let Some(members) = members {
        resource.insert(
            "members".into(),
            Value::Array(
                members
                    .iter()
                    .map(|(id, _)| {
                        json!({
                            "value": id,
                            "type": "User",
                            "$ref": format!("{base}/Users/{id}"),
                        })
                    })
                    .collect(),
            ),
        );
    }
    resource.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": row.created_at.to_rfc3339(),
            "lastModified": row.updated_at.to_rfc3339(),
            "location": format!("{base}/Groups/{}", row.external_id),
            "version": version_of(row.updated_at),
        }),
    );
    Value::Object(resource)
}

async fn find_group(
    db: &DatabaseConnection,
    integration: i64,
    id: &str,
) -> ScimResult<directory_group::Model> {
    directory_group::Entity::find()
        .filter(directory_group::Column::IntegrationId.eq(integration))
        .filter(directory_group::Column::ExternalId.eq(id))
        .one(db)
        .await?
        .ok_or_else(|| ScimError::not_found("group"))
}

fn canonical_group(body: &Value) -> ScimResult<Map<String, Value>> {
    Ok(schema::canonical_resource(
        body,
        &schema::group_attributes(),
        schema::GROUP,
        None,
    )?)
}

/// Writes a group and makes its members exactly those listed (when `members` is given).
async fn save_group(
    scim: &Scim,
    integration: &integration::Model,
    existing: Option<directory_group::Model>,
    mut resource: Map<String, Value>,
) -> ScimResult<directory_group::Model> {
    let display_name = text(resource.get("displayName"))
        .ok_or_else(|| ScimError::bad("invalidValue", "`displayName` is required"))?;
    let members: Option<Vec<String>> = resource.remove("members").map(|m| {
        m.as_array()
            .map(|a| a.iter().filter_map(|x| text(x.get("value"))).collect())
            .unwrap_or_default()
    });
    let db = scim.db();
    let txn = db.begin().await?;
    let wanted: Option<HashSet<i64>> = match &members {
        Some(ids) if !ids.is_empty() => {
            let found: Vec<(i64, String)> = directory_user::Entity::find()
                .select_only()
                .column(directory_user::Column::Id)
                .column(directory_user::Column::ExternalId)
                .filter(directory_user::Column::IntegrationId.eq(integration.id))
                .filter(directory_user::Column::Status.ne(UserStatus::Archived))
                .filter(directory_user::Column::ExternalId.is_in(ids.iter().cloned()))
                .into_tuple()
                .all(&txn)
                .await?;
            let known: HashSet<&str> = found.iter().map(|(_, e)| e.as_str()).collect();
            if let Some(missing) = ids.iter().find(|id| !known.contains(id.as_str())) {
                return Err(ScimError::bad(
                    "invalidValue",
                    format!("member `{missing}` is not a user of this integration"),
                ));
            }
            Some(found.into_iter().map(|(id, _)| id).collect())
        }
        Some(_) => Some(HashSet::new()),
        None => None,
    };
    let at = now();
    let mut active = match &existing {
        Some(row) => row.clone().into_active_model(),
        None => directory_group::ActiveModel {
            integration_id: Set(integration.id),
            external_id: Set(new_scim_id()),
            created_at: Set(at),
            ..Default::default()
        },
    };
    active.display_name = Set(display_name);
    active.email = Set(None);
    active.updated_at = Set(at);
    active.scim_external_id = Set(text(resource.get("externalId")));
    active.scim_resource = Set(Some(Value::Object(resource).to_string()));
    let row = match existing {
        Some(_) => active.update(&txn).await?,
        None => active.insert(&txn).await?,
    };
    if let Some(wanted) = wanted {
        let have: HashSet<i64> = group_membership::Entity::find()
            .select_only()
            .column(group_membership::Column::UserId)
            .filter(group_membership::Column::GroupId.eq(row.id))
            .into_tuple::<i64>()
            .all(&txn)
            .await?
            .into_iter()
            .collect();
        let gone: Vec<i64> = have.difference(&wanted).copied().collect();
        if !gone.is_empty() {
            group_membership::Entity::delete_many()
                .filter(group_membership::Column::GroupId.eq(row.id))
                .filter(group_membership::Column::UserId.is_in(gone))
                .exec(&txn)
                .await?;
        }
        let new: Vec<group_membership::ActiveModel> = wanted
            .difference(&have)
            .map(|user| group_membership::ActiveModel {
                group_id: Set(row.id),
                user_id: Set(*user),
                created_at: Set(at),
            })
            .collect();
        for chunk in new.chunks(5000) {
            group_membership::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&txn)
                .await?;
        }
    }
    txn.commit().await?;
    Ok(row)
}

async fn group_response(
    scim: &Scim,
    integration: &integration::Model,
    status: StatusCode,
    row: &directory_group::Model,
    params: &ListParams,
) -> ScimResult<Response> {
    let members = if params.wants_members() {
        members_of(scim.db(), &[row.id])
            .await?
            .remove(&row.id)
            .or(Some(Vec::new()))
    } else {
        None
    };
    let rendered = params.project(render_group(&scim.base(integration), row, members.as_ref()));
    Ok(scim_json(
        status,
        &rendered,
        Some(&version_of(row.updated_at)),
    ))
}

async fn create_group(State(scim): State<Scim>, i: Integration, body: Bytes) -> Response {
    let run = async {
        let resource = canonical_group(&parse_body(&body)?)?;
        let row = save_group(&scim, &i, None, resource).await?;
        group_response(&scim, &i, StatusCode::CREATED, &row, &ListParams::default()).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn get_group(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> Response {
    let run = async {
        let row = find_group(scim.db(), i.id, &id).await?;
        group_response(&scim, &i, StatusCode::OK, &row, &params).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn replace_group(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        let row = find_group(scim.db(), i.id, &id).await?;
        check_if_match(&headers, &version_of(row.updated_at))?;
        let mut resource = canonical_group(&parse_body(&body)?)?;
        // A PUT without `members` leaves them empty, as a replacement does.
        resource
            .entry("members")
            .or_insert_with(|| Value::Array(Vec::new()));
        let row = save_group(&scim, &i, Some(row), resource).await?;
        group_response(&scim, &i, StatusCode::OK, &row, &ListParams::default()).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

fn known_group_path(path: &filter::PatchPath) -> bool {
    let a = &path.attr;
    if a.uri
        .as_deref()
        .is_some_and(|u| !u.eq_ignore_ascii_case(schema::GROUP))
    {
        return false;
    }
    a.attr.eq_ignore_ascii_case("externalId")
        || schema::group_attributes().iter().any(|x| {
            x.name.eq_ignore_ascii_case(&a.attr)
                && a.sub
                    .as_deref()
                    .is_none_or(|s| x.sub.iter().any(|y| y.name.eq_ignore_ascii_case(s)))
        })
}

async fn patch_group(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let run = async {
        let row = find_group(scim.db(), i.id, &id).await?;
        check_if_match(&headers, &version_of(row.updated_at))?;
        let body = parse_body(&body)?;
        let members = members_of(scim.db(), &[row.id]).await?.remove(&row.id);
        let mut current = render_group(&scim.base(&i), &row, Some(&members.unwrap_or_default()));
        // Members are compared by `value` only.
        if let Some(Value::Array(items)) = current.get_mut("members") {
            for item in items.iter_mut() {
                *item = json!({ "value": item["value"] });
            }
        }
        patch::apply(&mut current, &body, &known_group_path)?;
        let mut resource = canonical_group(&current)?;
        resource
            .entry("members")
            .or_insert_with(|| Value::Array(Vec::new()));
        let row = save_group(&scim, &i, Some(row), resource).await?;
        group_response(&scim, &i, StatusCode::OK, &row, &ListParams::default()).await
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn delete_group(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let run = async {
        let row = find_group(scim.db(), i.id, &id).await?;
        check_if_match(&headers, &version_of(row.updated_at))?;
        directory_group::Entity::delete_by_id(row.id)
            .exec(scim.db())
            .await?;
        Ok::<_, ScimError>(StatusCode::NO_CONTENT.into_response())
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}

async fn list_groups(
    State(scim): State<Scim>,
    i: Integration,
    Query(params): Query<ListParams>,
) -> Response {
    let run = async {
        let paging = params.paging()?;
        let filter = params.filter()?;
        let mut query = directory_group::Entity::find()
            .filter(directory_group::Column::IntegrationId.eq(i.id))
            .order_by_asc(directory_group::Column::Id);
        match filter.as_ref().and_then(filter::Filter::simple_eq) {
            Some((attr, value)) if attr.eq_ignore_ascii_case("displayName") => {
                query = query.filter(directory_group::Column::DisplayName.eq(value));
            }
            Some((attr, value)) if attr.eq_ignore_ascii_case("id") => {
                query = query.filter(directory_group::Column::ExternalId.eq(value));
            }
            Some((attr, value)) if attr.eq_ignore_ascii_case("externalId") => {
                query = query.filter(directory_group::Column::ScimExternalId.eq(value));
            }
            _ => {}
        }
        let rows = query.all(scim.db()).await?;
        let filter_needs_members = params
            .filter
            .as_deref()
            .is_some_and(|f| f.to_ascii_lowercase().contains("members"));
        let members = if params.wants_members() || filter_needs_members {
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            Some(members_of(scim.db(), &ids).await?)
        } else {
            None
        };
        let base = scim.base(&i);
        let empty = Vec::new();
        let matching: Vec<Value> = rows
            .iter()
            .map(|r| {
                let m = members.as_ref().map(|m| m.get(&r.id).unwrap_or(&empty));
                render_group(&base, r, m)
            })
            .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
            .map(|mut r| {
                if !params.wants_members()
                    && let Some(o) = r.as_object_mut()
                {
                    o.remove("members");
                }
                r
            })
            .collect();
        Ok::<_, ScimError>(list_response(&params, matching, &paging))
    };
    run.await.unwrap_or_else(IntoResponse::into_response)
}
