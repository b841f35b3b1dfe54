//! Google Admin SDK Directory API: `/admin/directory/v1/users` (with the `orgUnitPath` query),
//! `/users/{key}`, `/groups`, `/groups/{key}`, `/groups/{key}/members` (with
//! `includeDerivedMembership`), `/customer/my_customer/orgunits`, with `maxResults` and
//! `pageToken`; Google's error body.

use crate::{Fake, Kind, State_, bearer, page_token, read_page_token};
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::MutexGuard;

type Params = HashMap<String, String>;

pub(crate) fn routes() -> Router<Fake> {
    Router::new()
        .route("/admin/directory/v1/users", get(users))
        .route("/admin/directory/v1/users/{key}", get(user))
        .route("/admin/directory/v1/groups", get(groups))
        .route("/admin/directory/v1/groups/{key}", get(group))
        .route(
            "/admin/directory/v1/customer/{customer}/orgunits",
            get(org_units),
        )
        .route("/admin/directory/v1/groups/{key}/members", get(members))
}

/// Google's error body.
pub fn error_body(status: StatusCode, reason: &str, message: &str) -> Value {
    let domain = if reason.contains("RateLimit") || reason.contains("quota") {
        "usageLimits"
    } else {
        "global"
    };
    let status_name = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    json!({ "error": {
        "code": status.as_u16(), "message": message,
        "errors": [{ "message": message, "domain": domain, "reason": reason }],
        "status": status_name,
    } })
}

fn error(status: StatusCode, reason: &str, message: &str) -> Response {
    (status, Json(error_body(status, reason, message))).into_response()
}

/// The Google domain the request's access token was issued for: the locked state and the
/// tenant's key.
fn tenant<'a>(
    fake: &'a Fake,
    headers: &HeaderMap,
) -> Result<(MutexGuard<'a, State_>, String), Response> {
    let Some((key, _)) = bearer(fake, headers) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Invalid Credentials",
        ));
    };
    let guard = fake.lock();
    match guard.dir.tenants.get(&key) {
        Some(t) if t.kind == Kind::Google => Ok((guard, key)),
        _ => Err(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not Authorized to access this resource/api",
        )),
    }
}

fn paging(params: &Params, max: usize) -> Result<(usize, usize), Response> {
    let size = match params.get("maxResults") {
        None => 100.min(max),
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "Invalid Input: maxResults",
                ));
            }
        },
    };
    let offset = match params.get("pageToken") {
        None => 0,
        Some(token) => read_page_token(token).ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "invalid",
                "Invalid Input: pageToken",
            )
        })?,
    };
    Ok((size, offset))
}

fn next_token(offset: usize, size: usize, total: usize) -> Option<String> {
    (offset + size < total).then(|| page_token(offset + size))
}

fn user_json(tenant: &crate::model::Tenant, u: &crate::model::User) -> Value {
    let hr = &u.hr;
    let manager = hr
        .manager
        .as_ref()
        .and_then(|id| tenant.users.get(id))
        .map(|m| vec![json!({ "value": m.user_name, "type": "manager" })])
        .unwrap_or_default();
    json!({
        "kind": "admin#directory#user", "id": u.id, "primaryEmail": u.user_name,
        "name": { "givenName": u.given_name, "familyName": u.surname, "fullName": u.display_name },
        "isAdmin": false, "suspended": u.suspended, "archived": false,
        "orgUnitPath": u.org_unit_path, "aliases": u.aliases,
        "organizations": [{ "title": u.job_title, "department": u.department, "description": u.employee_type,
            "name": hr.company_name, "costCenter": hr.cost_center, "location": hr.office_location, "primary": true }],
        "externalIds": u.employee_id.as_ref().map(|e| vec![json!({ "value": e, "type": "organization" })]).unwrap_or_default(),
        "phones": hr.mobile_phone.as_ref().map(|p| vec![json!({ "value": p, "type": "mobile" })]).unwrap_or_default(),
        "addresses": hr.country.as_ref().map(|c| vec![json!({ "type": "work", "country": c, "primary": true })]).unwrap_or_default(),
        "languages": hr.preferred_language.as_ref().map(|l| vec![json!({ "languageCode": l, "preference": "preferred" })]).unwrap_or_default(),
        "relations": manager,
        "creationTime": "2024-02-01T10:00:00.000Z",
    })
}

/// `query=orgUnitPath='/Sales'` (quoted or not), the one user search the fake knows: the users
/// of that unit and the units below. `Ok(None)` without a query.
fn org_unit_query(params: &Params) -> Result<Option<String>, Response> {
    let Some(q) = params.get("query") else {
        return Ok(None);
    };
    match q.strip_prefix("orgUnitPath=") {
        Some(path) => {
            let path = path.trim_matches('\'');
            let path = path.replace("\\'", "'");
            Ok(Some(path))
        }
        None => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "Invalid Input: query",
        )),
    }
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
    if !params.contains_key("customer") && !params.contains_key("domain") {
        return error(StatusCode::BAD_REQUEST, "badRequest", "Bad Request");
    }
    let (size, offset) = match paging(&params, 500) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let unit = match org_unit_query(&params) {
        Ok(unit) => unit,
        Err(r) => return r,
    };
    let matching: Vec<&crate::model::User> = tenant
        .users
        .values()
        .filter(|u| {
            unit.as_deref()
                .is_none_or(|unit| crate::model::in_unit(&u.org_unit_path, unit))
        })
        .collect();
    let users: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|u| user_json(tenant, u))
        .collect();
    let mut body = json!({ "kind": "admin#directory#users", "etag": "\"fake\"", "users": users });
    if let Some(token) = next_token(offset, size, matching.len()) {
        body["nextPageToken"] = json!(token);
    }
    Json(body).into_response()
}

/// `users.get`: one user by id or primary email.
async fn user(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(user_key): Path<String>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    let found = tenant
        .users
        .get(&user_key)
        .or_else(|| tenant.users.values().find(|u| u.user_name == user_key));
    match found {
        Some(u) => Json(user_json(tenant, u)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Resource Not Found: userKey",
        ),
    }
}

fn group_json(tenant: &crate::model::Tenant, g: &crate::model::Group) -> Value {
    json!({
        "kind": "admin#directory#group", "id": g.id, "email": g.email, "name": g.display_name,
        "description": g.description,
        "directMembersCount": tenant.members.get(&g.id).map(|m| m.len()).unwrap_or(0).to_string(),
    })
}

/// `groups.get`: one group by id or email.
async fn group(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(group_key): Path<String>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    match find_group(tenant, &group_key) {
        Some(g) => Json(group_json(tenant, g)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Resource Not Found: groupKey",
        ),
    }
}

fn find_group<'a>(
    tenant: &'a crate::model::Tenant,
    group_key: &str,
) -> Option<&'a crate::model::Group> {
    tenant
        .groups
        .values()
        .find(|g| g.id == group_key || g.email.as_deref() == Some(group_key))
}

/// `orgunits.list` with `type=all`: every org unit below the root, in one response (Google
/// does not page it).
async fn org_units(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(customer): Path<String>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    if customer != "my_customer" {
        return error(StatusCode::BAD_REQUEST, "badRequest", "Bad Request");
    }
    let tenant = &guard.dir.tenants[&key];
    let units: Vec<Value> = tenant
        .org_units()
        .iter()
        .map(|path| {
            let at = path.rfind('/').unwrap_or(0);
            let parent = if at == 0 { "/" } else { &path[..at] };
            json!({
                "kind": "admin#directory#orgUnit", "name": &path[at + 1..],
                "orgUnitPath": path, "orgUnitId": format!("id:{}", path.len()),
                "parentOrgUnitPath": parent, "description": "",
            })
        })
        .collect();
    Json(json!({ "kind": "admin#directory#org_units", "organizationUnits": units })).into_response()
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
    let (size, offset) = match paging(&params, 200) {
        Ok(p) => p,
        Err(r) => return r,
    };
    // `query=name:'term'*` (or `name:term*`), the one search the fake knows: a name prefix,
    // case-insensitive.
    let prefix = match params.get("query") {
        None => None,
        Some(q) => match q
            .strip_prefix("name:")
            .and_then(|r| r.strip_suffix('*'))
            .map(|r| r.trim_matches('\''))
        {
            Some(term) => Some(term.to_lowercase()),
            None => return error(StatusCode::BAD_REQUEST, "invalid", "Invalid Input: query"),
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
    let groups: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(size)
        .map(|g| group_json(tenant, g))
        .collect();
    let mut body = json!({ "kind": "admin#directory#groups", "groups": groups });
    if let Some(token) = next_token(offset, size, matching.len()) {
        body["nextPageToken"] = json!(token);
    }
    Json(body).into_response()
}

async fn members(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(group_key): Path<String>,
    Query(params): Query<Params>,
) -> Response {
    let (guard, key) = match tenant(&fake, &headers) {
        Ok(found) => found,
        Err(r) => return r,
    };
    let tenant = &guard.dir.tenants[&key];
    let (size, offset) = match paging(&params, 200) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(group) = find_group(tenant, &group_key) else {
        return error(
            StatusCode::NOT_FOUND,
            "notFound",
            "Resource Not Found: groupKey",
        );
    };
    // The tenant's users, then the accounts of other domains (also `type: USER`); with
    // `includeDerivedMembership=true`, every user and group reachable through nested groups,
    // each once.
    let external = tenant.external_members.get(&group.id);
    let derived = params.get("includeDerivedMembership").map(String::as_str) == Some("true");
    let ids: Vec<&String> = if derived {
        let (users, groups) = tenant.transitive_members(&group.id);
        users.into_iter().chain(groups).collect()
    } else {
        tenant
            .members
            .get(&group.id)
            .into_iter()
            .flatten()
            .collect()
    };
    let ids: Vec<&String> = ids
        .into_iter()
        .chain(external.into_iter().flatten())
        .collect();
    let members: Vec<Value> = ids
        .iter()
        .skip(offset)
        .take(size)
        .filter_map(|id| match (tenant.users.get(*id), tenant.groups.get(*id)) {
            (Some(u), _) => Some((u.id.as_str(), u.user_name.clone(), "USER")),
            // A nested group: its own id and address, `type: GROUP`.
            (None, Some(g)) => {
                let email = g
                    .email
                    .clone()
                    .unwrap_or_else(|| format!("{id}@groups.example"));
                Some((g.id.as_str(), email, "GROUP"))
            }
            (None, None) => external
                .is_some_and(|e| e.contains(*id))
                .then(|| (id.as_str(), format!("{id}@partner.example"), "USER")),
        })
        .map(|(id, email, kind)| {
            json!({
                "kind": "admin#directory#member", "id": id, "email": email,
                "role": "MEMBER", "type": kind, "status": "ACTIVE",
            })
        })
        .collect();
    let mut body = json!({ "kind": "admin#directory#members", "members": members });
    if let Some(token) = next_token(offset, size, ids.len()) {
        body["nextPageToken"] = json!(token);
    }
    Json(body).into_response()
}
