//! Microsoft Graph v1.0: `/users`, `/groups`, `/groups/{id}/members`, with `$select`, `$top`
//! (1–999) and `@odata.nextLink` paging; errors in Graph's `{"error":{...}}` body.

use crate::{
    Fake, Kind, State_, Tenant, User, base_url, bearer, model::Change, page_token, read_page_token,
};
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::MutexGuard;

type Params = HashMap<String, String>;

pub(crate) fn routes() -> Router<Fake> {
    Router::new()
        .route("/v1.0/users", get(users))
        .route("/v1.0/groups", get(groups))
        .route("/v1.0/groups/{id}", get(one_group))
        .route("/v1.0/groups/{id}/members", get(members))
        .route(
            "/v1.0/groups/{id}/transitiveMembers/microsoft.graph.user",
            get(transitive_users),
        )
        .route(
            "/v1.0/groups/{id}/transitiveMembers/microsoft.graph.group",
            get(transitive_groups),
        )
        .route("/v1.0/users/delta", get(users_delta))
        .route("/v1.0/groups/delta", get(groups_delta))
}

/// Graph's error body.
pub fn error_body(code: &str, message: &str) -> Value {
    json!({ "error": {
        "code": code, "message": message,
        "innerError": { "date": "2026-11-28T10:00:00", "request-id": "00000000-0000-0000-0000-000000000000",
                        "client-request-id": "00000000-0000-0000-0000-000000000000" }
    } })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(error_body(code, message))).into_response()
}

/// The Entra tenant the request's access token was issued for: the locked state and the
/// tenant's key (borrowing, not copying, a directory that may hold 100,000 users).
fn tenant<'a>(
    fake: &'a Fake,
    headers: &HeaderMap,
) -> Result<(MutexGuard<'a, State_>, String), Response> {
    let Some((key, _)) = bearer(fake, headers) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        ));
    };
    let guard = fake.lock();
    match guard.dir.tenants.get(&key) {
        Some(t) if t.kind == Kind::Entra => Ok((guard, key)),
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure.",
        )),
    }
}

/// `$top` and `$skiptoken`, checked as Graph does.
fn paging(params: &Params) -> Result<(usize, usize), Response> {
    let top = match params.get("$top") {
        None => 100,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    &format!(
                        "Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
                    ),
                ));
            }
        },
    };
    let offset = match params.get("$skiptoken") {
        None => 0,
        Some(token) => read_page_token(token).ok_or_else(|| {
            error(StatusCode::BAD_REQUEST, "Directory_ExpiredPageToken", "The specified page token value has expired and can no longer be included in your request.")
        })?,
    };
    Ok((top, offset))
}

fn select(value: Value, params: &Params) -> Value {
    let Some(fields) = params.get("$select") else {
        return value;
    };
    let wanted: Vec<&str> = fields.split(',').map(str::trim).collect();
    let Value::Object(map) = value else {
        return value;
    };
    let picked: Map<String, Value> = map
        .into_iter()
        .filter(|(k, _)| k == "id" || k.starts_with('@') || wanted.contains(&k.as_str()))
        .collect();
    Value::Object(picked)
}

/// A user of a listing (`/users`, a group's members): its `$select`ed properties, and with
/// `$expand=manager(...)` its manager's id.
fn listed_user(user: &User, params: &Params) -> Value {
    let mut value = select(user_json(user), params);
    let expand = params
        .get("$expand")
        .is_some_and(|e| e.starts_with("manager"));
    if let (true, Some(manager), Value::Object(map)) = (expand, &user.hr.manager, &mut value) {
        map.insert(
            "manager".into(),
            json!({ "@odata.type": "#microsoft.graph.user", "id": manager }),
        );
    }
    value
}

/// A user as Graph shows it, serialised straight from the stored user (a delta page of 999
/// users is written without building a `Value` tree; the fake shares the benchmarks' cores).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphUser<'a> {
    id: &'a str,
    user_principal_name: &'a str,
    mail: Option<&'a str>,
    display_name: &'a str,
    given_name: Option<&'a str>,
    surname: Option<&'a str>,
    job_title: Option<&'a str>,
    department: Option<&'a str>,
    employee_id: Option<&'a str>,
    employee_type: Option<&'a str>,
    office_location: Option<&'a str>,
    company_name: Option<&'a str>,
    /// `null` when the user has neither a division nor a cost center.
    employee_org_data: Option<OrgData<'a>>,
    employee_hire_date: Option<&'a str>,
    mobile_phone: Option<&'a str>,
    country: Option<&'a str>,
    preferred_language: Option<&'a str>,
    /// The manager, as `/users/delta` carries it (`$select=manager`); empty without one.
    #[serde(rename = "manager@delta")]
    manager_delta: Vec<ManagerLink<'a>>,
    account_enabled: bool,
    other_mails: &'a [String],
    proxy_addresses: Vec<String>,
}

/// `employeeOrgData`.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OrgData<'a> {
    division: Option<&'a str>,
    cost_center: Option<&'a str>,
}

/// A user's manager in `manager@delta`.
#[derive(serde::Serialize)]
struct ManagerLink<'a> {
    #[serde(rename = "@odata.type")]
    odata_type: &'static str,
    id: &'a str,
}

impl<'a> GraphUser<'a> {
    fn of(user: &'a User) -> Self {
        let mut proxy_addresses = vec![format!(
            "SMTP:{}",
            user.mail.as_deref().unwrap_or(&user.user_name)
        )];
        proxy_addresses.extend(user.aliases.iter().map(|a| format!("smtp:{a}")));
        Self {
            id: &user.id,
            user_principal_name: &user.user_name,
            mail: user.mail.as_deref(),
            display_name: &user.display_name,
            given_name: user.given_name.as_deref(),
            surname: user.surname.as_deref(),
            job_title: user.job_title.as_deref(),
            department: user.department.as_deref(),
            employee_id: user.employee_id.as_deref(),
            employee_type: user.employee_type.as_deref(),
            office_location: user.hr.office_location.as_deref(),
            company_name: user.hr.company_name.as_deref(),
            employee_org_data: (user.hr.division.is_some() || user.hr.cost_center.is_some())
                .then_some(OrgData {
                    division: user.hr.division.as_deref(),
                    cost_center: user.hr.cost_center.as_deref(),
                }),
            employee_hire_date: user.hr.hire_date.as_deref(),
            mobile_phone: user.hr.mobile_phone.as_deref(),
            country: user.hr.country.as_deref(),
            preferred_language: user.hr.preferred_language.as_deref(),
            manager_delta: user
                .hr
                .manager
                .iter()
                .map(|id| ManagerLink {
                    odata_type: "#microsoft.graph.user",
                    id,
                })
                .collect(),
            account_enabled: !user.suspended,
            other_mails: &user.aliases,
            proxy_addresses,
        }
    }
}

/// A user as Graph shows it.
pub fn user_json(user: &User) -> Value {
    serde_json::to_value(GraphUser::of(user)).unwrap_or(Value::Null)
}

fn page(
    base: &str,
    path: &str,
    params: &Params,
    items: Vec<Value>,
    total: usize,
    top: usize,
    offset: usize,
) -> Response {
    let mut body = json!({
        "@odata.context": format!("{base}/v1.0/$metadata#{}", path.trim_start_matches("/v1.0/")),
        "value": items,
    });
    if offset + top < total {
        let mut query: Vec<String> = params
            .iter()
            .filter(|(k, _)| k.as_str() != "$skiptoken")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        query.sort();
        query.push(format!("$skiptoken={}", page_token(offset + top)));
        body["@odata.nextLink"] = json!(format!("{base}{path}?{}", query.join("&")));
    }
    Json(body).into_response()
}

async fn users(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    let (top, offset) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items = tenant
        .users
        .values()
        .skip(offset)
        .take(top)
        .map(|u| listed_user(u, &params))
        .collect();
    page(
        &base_url(&headers),
        "/v1.0/users",
        &params,
        items,
        tenant.users.len(),
        top,
        offset,
    )
}

async fn groups(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    let (top, offset) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    // `$filter=startswith(displayName,'term')`, the one filter the fake knows (case-insensitive,
    // as Graph's is; `''` is a quote).
    let prefix = match params.get("$filter") {
        None => None,
        Some(f) => match f
            .strip_prefix("startswith(displayName,'")
            .and_then(|r| r.strip_suffix("')"))
        {
            Some(term) => Some(term.replace("''", "'").to_lowercase()),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Request_UnsupportedQuery",
                    "Unsupported Query.",
                );
            }
        },
    };
    let matching: Vec<&crate::model::Group> = tenant
        .groups
        .values()
        .filter(|g| {
            prefix
                .as_deref()
                .is_none_or(|p| g.display_name.to_lowercase().starts_with(p))
        })
        .collect();
    let items = matching
        .iter()
        .skip(offset)
        .take(top)
        .map(|g| select(group_full_json(g), &params))
        .collect();
    page(
        &base_url(&headers),
        "/v1.0/groups",
        &params,
        items,
        matching.len(),
        top,
        offset,
    )
}

/// A group with every property the fake serves.
fn group_full_json(g: &crate::model::Group) -> Value {
    json!({
        "id": g.id, "displayName": g.display_name, "mail": g.email,
        "description": g.description, "securityEnabled": true,
        "mailEnabled": g.email.is_some(), "groupTypes": [],
    })
}

fn no_group(id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

async fn one_group(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    match guard.dir.tenants[&key].groups.get(&id) {
        Some(g) => Json(select(group_full_json(g), &params)).into_response(),
        None => no_group(&id),
    }
}

/// `transitiveMembers/microsoft.graph.user`: the users of a group and of every group nested in
/// it, each once, in id order (a cycle ends).
async fn transitive_users(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    transitive(fake, headers, id, params, true)
}

/// `transitiveMembers/microsoft.graph.group`: the groups nested in a group, at any depth.
async fn transitive_groups(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    transitive(fake, headers, id, params, false)
}

fn transitive(fake: Fake, headers: HeaderMap, id: String, params: Params, users: bool) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    if !tenant.groups.contains_key(&id) {
        return no_group(&id);
    }
    let (top, offset) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let (found_users, found_groups) = tenant.transitive_members(&id);
    let items: Vec<Value> = if users {
        found_users
            .iter()
            .skip(offset)
            .take(top)
            .filter_map(|u| tenant.users.get(*u))
            .map(|u| listed_user(u, &params))
            .collect()
    } else {
        found_groups
            .iter()
            .skip(offset)
            .take(top)
            .filter_map(|g| tenant.groups.get(*g))
            .map(|g| select(group_full_json(g), &params))
            .collect()
    };
    let total = if users {
        found_users.len()
    } else {
        found_groups.len()
    };
    let kind = if users { "user" } else { "group" };
    page(
        &base_url(&headers),
        &format!("/v1.0/groups/{id}/transitiveMembers/microsoft.graph.{kind}"),
        &params,
        items,
        total,
        top,
        offset,
    )
}

async fn members(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    let (top, offset) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(members) = tenant.members.get(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let items = members
        .iter()
        .skip(offset)
        .take(top)
        .map(|m| json!({ "@odata.type": odata_type(tenant, m), "id": m }))
        .collect();
    page(
        &base_url(&headers),
        &format!("/v1.0/groups/{id}/members"),
        &params,
        items,
        members.len(),
        top,
        offset,
    )
}

/// A position in a tenant's change log: `(epoch, seq)`, and for an initial enumeration the
/// offset reached.
fn delta_token(epoch: u64, seq: usize, offset: Option<usize>) -> String {
    let raw = match offset {
        Some(o) => format!("d:{epoch}:{seq}:{o}"),
        None => format!("d:{epoch}:{seq}"),
    };
    URL_SAFE_NO_PAD.encode(raw)
}

fn read_delta_token(token: &str) -> Option<(u64, usize, Option<usize>)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = raw.strip_prefix("d:")?.split(':');
    let epoch = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let offset = match parts.next() {
        Some(o) => Some(o.parse().ok()?),
        None => None,
    };
    Some((epoch, seq, offset))
}

/// The page size a delta request asks for with `Prefer: odata.maxpagesize=N`.
fn max_page_size(headers: &HeaderMap) -> usize {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix("odata.maxpagesize=")?.parse().ok())
        .filter(|n: &usize| (1..=999).contains(n))
        .unwrap_or(100)
}

/// Members listed per group object in a first delta round; a bigger group comes in several.
const MEMBERS_PER_OBJECT: usize = 10;

fn sync_state_not_found() -> Response {
    error(
        StatusCode::GONE,
        "syncStateNotFound",
        "The sync state generation is not found. Start a new full synchronization.",
    )
}

/// Where a delta request stands: starting or paging an enumeration, or reading changes.
enum DeltaStep {
    Enumerate { seq: usize, offset: usize },
    Changes { seq: usize },
}

fn delta_step(tenant: &Tenant, params: &Params) -> Result<DeltaStep, Response> {
    let token = params
        .get("$deltatoken")
        .or_else(|| params.get("$skiptoken"));
    let Some(token) = token else {
        return Ok(DeltaStep::Enumerate {
            seq: tenant.changes.len(),
            offset: 0,
        });
    };
    // `$deltatoken=latest`: no enumeration, just a link from now on.
    if token == "latest" && params.contains_key("$deltatoken") {
        return Ok(DeltaStep::Changes {
            seq: tenant.changes.len(),
        });
    }
    let Some((epoch, seq, offset)) = read_delta_token(token) else {
        return Err(sync_state_not_found());
    };
    if epoch != tenant.delta_epoch || seq > tenant.changes.len() {
        return Err(sync_state_not_found());
    }
    Ok(match offset {
        Some(offset) => DeltaStep::Enumerate { seq, offset },
        None => DeltaStep::Changes { seq },
    })
}

/// A delta page's body: its objects and the link to go on with.
#[derive(serde::Serialize)]
struct DeltaPage<T> {
    #[serde(rename = "@odata.context")]
    context: String,
    value: Vec<T>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<String>,
    #[serde(rename = "@odata.deltaLink", skip_serializing_if = "Option::is_none")]
    delta_link: Option<String>,
}

fn delta_page<T: serde::Serialize>(
    base: &str,
    path: &str,
    items: Vec<T>,
    tenant: &Tenant,
    next: Option<(usize, usize)>,
) -> Response {
    let link = |token: String, kind: &str| Some(format!("{base}{path}?${kind}={token}"));
    let (next_link, delta_link) = match next {
        Some((seq, offset)) => (
            link(
                delta_token(tenant.delta_epoch, seq, Some(offset)),
                "skiptoken",
            ),
            None,
        ),
        None => (
            None,
            link(
                delta_token(tenant.delta_epoch, tenant.changes.len(), None),
                "deltatoken",
            ),
        ),
    };
    let body = DeltaPage {
        context: format!(
            "{base}/v1.0/$metadata#{}",
            path.trim_start_matches("/v1.0/")
        ),
        value: items,
        next_link,
        delta_link,
    };
    // Written at once into a buffer of about the page's size.
    let mut bytes = Vec::with_capacity(512 * body.value.len() + 512);
    match serde_json::to_writer(&mut bytes, &body) {
        Ok(()) => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            &e.to_string(),
        ),
    }
}

fn removed(id: &str) -> Value {
    json!({ "id": id, "@removed": { "reason": "deleted" } })
}

async fn users_delta(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    let base = base_url(&headers);
    let size = max_page_size(&headers);
    match delta_step(tenant, &params) {
        Err(r) => r,
        Ok(DeltaStep::Enumerate { seq, offset }) => {
            let items: Vec<GraphUser> = tenant
                .users
                .values()
                .skip(offset)
                .take(size)
                .map(GraphUser::of)
                .collect();
            let next = (offset + size < tenant.users.len()).then_some((seq, offset + size));
            delta_page(&base, "/v1.0/users/delta", items, tenant, next)
        }
        Ok(DeltaStep::Changes { seq }) => {
            let mut seen = std::collections::BTreeSet::new();
            let mut items = Vec::new();
            for change in tenant.changes[seq..].iter().rev() {
                if let Change::User { id, .. } = change
                    && seen.insert(id.clone())
                {
                    items.push(match tenant.users.get(id) {
                        Some(user) => user_json(user),
                        None => removed(id),
                    });
                }
            }
            items.reverse();
            delta_page(&base, "/v1.0/users/delta", items, tenant, None)
        }
    }
}

/// The `@odata.type` of the member `id`: a group of the tenant, else a user.
fn odata_type(tenant: &Tenant, id: &str) -> &'static str {
    if tenant.is_group(id) {
        "#microsoft.graph.group"
    } else {
        "#microsoft.graph.user"
    }
}

fn member_json(tenant: &Tenant, id: &str, gone: bool) -> Value {
    let mut v = json!({ "@odata.type": odata_type(tenant, id), "id": id });
    if gone {
        v["@removed"] = json!({ "reason": "deleted" });
    }
    v
}

/// A group's properties as Graph shows them (beside its `id`).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct GraphGroup<'a> {
    display_name: &'a str,
    description: Option<&'a str>,
    mail: Option<&'a str>,
}

impl<'a> GraphGroup<'a> {
    fn of(g: &'a crate::model::Group) -> Self {
        Self {
            display_name: &g.display_name,
            description: g.description.as_deref(),
            mail: g.email.as_deref(),
        }
    }
}

/// A member listed in `members@delta`.
#[derive(serde::Serialize)]
struct GraphMember<'a> {
    #[serde(rename = "@odata.type")]
    kind: &'static str,
    id: &'a str,
}

impl<'a> GraphMember<'a> {
    fn of(tenant: &Tenant, id: &'a str) -> Self {
        Self {
            kind: odata_type(tenant, id),
            id,
        }
    }
}

/// A group object of a first delta round: its properties on its first object only, and a
/// share of its members.
#[derive(serde::Serialize)]
struct GraphGroupObject<'a> {
    id: &'a str,
    #[serde(flatten)]
    properties: Option<GraphGroup<'a>>,
    #[serde(rename = "members@delta")]
    members: Vec<GraphMember<'a>>,
}

impl<'a> GraphGroupObject<'a> {
    fn of(
        tenant: &Tenant,
        id: &'a str,
        group: Option<&'a crate::model::Group>,
        members: Option<&[&'a String]>,
    ) -> Self {
        Self {
            id,
            properties: group.map(GraphGroup::of),
            members: members
                .unwrap_or_default()
                .iter()
                .map(|m| GraphMember::of(tenant, m))
                .collect(),
        }
    }
}

fn group_json(tenant: &Tenant, id: &str) -> Option<Value> {
    let g = tenant.groups.get(id)?;
    let mut value = serde_json::to_value(GraphGroup::of(g)).ok()?;
    value["id"] = json!(g.id);
    Some(value)
}

async fn groups_delta(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    let base = base_url(&headers);
    let size = max_page_size(&headers);
    match delta_step(tenant, &params) {
        Err(r) => r,
        Ok(DeltaStep::Enumerate { seq, offset }) => {
            // As Graph does with big groups, a group's members come in several objects: the
            // first with the group's properties, the next with only `id` and more members.
            let mut items = Vec::new();
            for id in tenant.groups.keys().skip(offset).take(size) {
                let members: Vec<&String> = tenant.members.get(id).into_iter().flatten().collect();
                let mut chunks = members.chunks(MEMBERS_PER_OBJECT);
                let group = tenant.groups.get(id);
                items.push(GraphGroupObject::of(tenant, id, group, chunks.next()));
                items.extend(
                    chunks.map(|chunk| GraphGroupObject::of(tenant, id, None, Some(chunk))),
                );
            }
            let next = (offset + size < tenant.groups.len()).then_some((seq, offset + size));
            delta_page(&base, "/v1.0/groups/delta", items, tenant, next)
        }
        Ok(DeltaStep::Changes { seq }) => {
            let mut touched: std::collections::BTreeMap<String, Vec<Value>> =
                std::collections::BTreeMap::new();
            for change in &tenant.changes[seq..] {
                match change {
                    Change::Group { id, .. } => {
                        touched.entry(id.clone()).or_default();
                    }
                    Change::Member {
                        group,
                        user,
                        removed,
                    } => {
                        touched
                            .entry(group.clone())
                            .or_default()
                            .push(member_json(tenant, user, *removed));
                    }
                    Change::User { .. } => {}
                }
            }
            let items = touched
                .into_iter()
                .map(|(id, members)| match group_json(tenant, &id) {
                    Some(mut g) => {
                        if !members.is_empty() {
                            g["members@delta"] = json!(members);
                        }
                        g
                    }
                    None => removed(&id),
                })
                .collect();
            delta_page(&base, "/v1.0/groups/delta", items, tenant, None)
        }
    }
}
