//! Microsoft Graph v1.0: `/users`, `/groups`, `/groups/{id}/members`, with `$select`, `$top`
//! (1–999) and `@odata.nextLink` paging; errors in Graph's `{"error":{...}}` body.

use crate::{Fake, Kind, Tenant, User, base_url, bearer, page_token, read_page_token};
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

type Params = HashMap<String, String>;

pub(crate) fn routes() -> Router<Fake> {
    Router::new()
        .route("/v1.0/users", get(users))
        .route("/v1.0/groups", get(groups))
        .route("/v1.0/groups/{id}/members", get(members))
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

/// The Entra tenant the request's access token was issued for.
fn tenant(fake: &Fake, headers: &HeaderMap) -> Result<Tenant, Response> {
    let Some((key, _)) = bearer(fake, headers) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        ));
    };
    match fake.lock().dir.tenants.get(&key) {
        Some(t) if t.kind == Kind::Entra => Ok(t.clone()),
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

/// A user as Graph shows it.
pub fn user_json(user: &User) -> Value {
    let mut proxies = vec![format!(
        "SMTP:{}",
        user.mail.as_deref().unwrap_or(&user.user_name)
    )];
    proxies.extend(user.aliases.iter().map(|a| format!("smtp:{a}")));
    json!({
        "id": user.id, "userPrincipalName": user.user_name, "mail": user.mail,
        "displayName": user.display_name, "givenName": user.given_name, "surname": user.surname,
        "jobTitle": user.job_title, "department": user.department, "employeeId": user.employee_id,
        "accountEnabled": !user.suspended, "otherMails": user.aliases, "proxyAddresses": proxies,
    })
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
    let tenant = match tenant(&fake, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (top, offset) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items = tenant
        .users
        .values()
        .skip(offset)
        .take(top)
        .map(|u| select(user_json(u), &params))
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
    let tenant = match tenant(&fake, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (top, offset) = match paging(&params) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items = tenant
        .groups
        .values()
        .skip(offset)
        .take(top)
        .map(|g| {
            select(
                json!({
                    "id": g.id, "displayName": g.display_name, "mail": g.email,
                    "description": g.description, "securityEnabled": true,
                    "mailEnabled": g.email.is_some(), "groupTypes": [],
                }),
                &params,
            )
        })
        .collect();
    page(
        &base_url(&headers),
        "/v1.0/groups",
        &params,
        items,
        tenant.groups.len(),
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
    let tenant = match tenant(&fake, &headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
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
        .map(|m| json!({ "@odata.type": "#microsoft.graph.user", "id": m }))
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
