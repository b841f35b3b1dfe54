//! The control API under `/_control`, for tests and demos: read and change the directory,
//! approve the app for a tenant, revoke grants, expire delta tokens, inject faults, and count
//! requests.

use crate::{Fake, Fault, Group, User, model::Change};
use axum::{
    Json, Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{delete, get, post, put},
};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub(crate) fn routes() -> Router<Fake> {
    Router::new()
        .route("/_control/directory", get(directory))
        .route("/_control/tenants", post(add_tenant))
        .route("/_control/tenants/{tenant}/users", post(put_user))
        .route(
            "/_control/tenants/{tenant}/users/{id}",
            delete(delete_user).patch(patch_user),
        )
        .route("/_control/tenants/{tenant}/groups", post(put_group))
        .route(
            "/_control/tenants/{tenant}/groups/{id}",
            delete(delete_group),
        )
        .route(
            "/_control/tenants/{tenant}/groups/{id}/members/{user}",
            put(add_member).delete(remove_member),
        )
        .route("/_control/tenants/{tenant}/messy", post(add_messy))
        .route("/_control/tenants/{tenant}/approve-app", post(approve_app))
        .route("/_control/tenants/{tenant}/revoke", post(revoke))
        .route(
            "/_control/tenants/{tenant}/expire-delta",
            post(expire_delta),
        )
        .route("/_control/faults", post(add_fault).delete(clear_faults))
        .route("/_control/requests", get(requests))
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": format!("{what} not found") })),
    )
        .into_response()
}

/// Runs `f` on the tenant with key `tenant`.
fn with_tenant(
    fake: &Fake,
    tenant: &str,
    f: impl FnOnce(&mut crate::Tenant) -> Response,
) -> Response {
    let mut state = fake.lock();
    match state.dir.tenants.get_mut(tenant) {
        Some(t) => f(t),
        None => not_found("tenant"),
    }
}

async fn directory(State(fake): State<Fake>) -> Json<Value> {
    Json(serde_json::to_value(fake.directory()).unwrap_or(Value::Null))
}

/// A new, empty tenant.
#[derive(Deserialize)]
struct NewTenant {
    kind: crate::Kind,
    id: String,
    domain: String,
}

async fn add_tenant(State(fake): State<Fake>, Json(new): Json<NewTenant>) -> Response {
    let tenant = crate::Tenant::new(new.kind, &new.id, &new.domain);
    let key = match new.kind {
        crate::Kind::Entra => new.id.clone(),
        crate::Kind::Google => new.domain.clone(),
    };
    let mut state = fake.lock();
    if state.dir.tenants.contains_key(&key) {
        return (
            StatusCode::CONFLICT,
            Json(json!({ "error": "tenant exists" })),
        )
            .into_response();
    }
    state.dir.tenants.insert(key.clone(), tenant);
    (StatusCode::CREATED, Json(json!({ "key": key }))).into_response()
}

async fn put_user(
    State(fake): State<Fake>,
    Path(tenant): Path<String>,
    Json(user): Json<User>,
) -> Response {
    with_tenant(&fake, &tenant, |t| {
        t.put_user(user.clone());
        (StatusCode::CREATED, Json(json!(user))).into_response()
    })
}

/// Fields of a user to change; absent fields stay.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserPatch {
    display_name: Option<String>,
    user_name: Option<String>,
    mail: Option<String>,
    department: Option<String>,
    job_title: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    employee_type: Option<Option<String>>,
    suspended: Option<bool>,
    aliases: Option<Vec<String>>,
    /// The HR attributes, replaced whole.
    hr: Option<crate::model::Hr>,
}

/// A field that may be `null`: `Some(None)` when it is, `None` when it is absent.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

async fn patch_user(
    State(fake): State<Fake>,
    Path((tenant, id)): Path<(String, String)>,
    Json(patch): Json<UserPatch>,
) -> Response {
    with_tenant(&fake, &tenant, |t| {
        let changed = t.change_user(&id, |user| {
            if let Some(v) = patch.display_name {
                user.display_name = v
            }
            if let Some(v) = patch.user_name {
                user.user_name = v
            }
            if let Some(v) = patch.mail {
                user.mail = Some(v)
            }
            if let Some(v) = patch.department {
                user.department = Some(v)
            }
            if let Some(v) = patch.job_title {
                user.job_title = Some(v)
            }
            if let Some(v) = patch.employee_type {
                user.employee_type = v
            }
            if let Some(v) = patch.suspended {
                user.suspended = v
            }
            if let Some(v) = patch.aliases {
                user.aliases = v
            }
            if let Some(v) = patch.hr {
                user.hr = v
            }
        });
        match changed {
            Some(user) => Json(json!(user)).into_response(),
            None => not_found("user"),
        }
    })
}

async fn delete_user(
    State(fake): State<Fake>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    with_tenant(&fake, &tenant, |t| match t.remove_user(&id) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => not_found("user"),
    })
}

async fn put_group(
    State(fake): State<Fake>,
    Path(tenant): Path<String>,
    Json(group): Json<Group>,
) -> Response {
    with_tenant(&fake, &tenant, |t| {
        t.members.entry(group.id.clone()).or_default();
        t.groups.insert(group.id.clone(), group.clone());
        t.record(Change::Group {
            id: group.id.clone(),
            removed: false,
        });
        (StatusCode::CREATED, Json(json!(group))).into_response()
    })
}

async fn delete_group(
    State(fake): State<Fake>,
    Path((tenant, id)): Path<(String, String)>,
) -> Response {
    with_tenant(&fake, &tenant, |t| {
        if t.groups.remove(&id).is_none() {
            return not_found("group");
        }
        t.members.remove(&id);
        // A deleted group leaves the groups it was nested in, as in Graph and Google.
        for members in t.members.values_mut() {
            members.remove(&id);
        }
        t.record(Change::Group {
            id: id.clone(),
            removed: true,
        });
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn add_member(
    State(fake): State<Fake>,
    Path((tenant, id, user)): Path<(String, String, String)>,
) -> Response {
    with_tenant(&fake, &tenant, |t| {
        if !t.add_member(&id, &user) {
            return not_found("group or user");
        }
        StatusCode::NO_CONTENT.into_response()
    })
}

/// Adds the records real directories hold and fixtures lack (`Tenant::add_messy_records`).
async fn add_messy(State(fake): State<Fake>, Path(tenant): Path<String>) -> Response {
    with_tenant(&fake, &tenant, |t| {
        t.add_messy_records();
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn remove_member(
    State(fake): State<Fake>,
    Path((tenant, id, user)): Path<(String, String, String)>,
) -> Response {
    with_tenant(&fake, &tenant, |t| {
        t.remove_member(&id, &user);
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn approve_app(State(fake): State<Fake>, Path(tenant): Path<String>) -> Response {
    with_tenant(&fake, &tenant, |t| {
        t.app_approved = true;
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn revoke(State(fake): State<Fake>, Path(tenant): Path<String>) -> Response {
    if !fake.lock().dir.tenants.contains_key(&tenant) {
        return not_found("tenant");
    }
    fake.revoke(&tenant);
    StatusCode::NO_CONTENT.into_response()
}

async fn expire_delta(State(fake): State<Fake>, Path(tenant): Path<String>) -> Response {
    with_tenant(&fake, &tenant, |t| {
        t.delta_epoch += 1;
        StatusCode::NO_CONTENT.into_response()
    })
}

async fn add_fault(State(fake): State<Fake>, Json(fault): Json<Fault>) -> Response {
    fake.inject(fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(fake): State<Fake>) -> Response {
    fake.lock().faults.clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn requests(
    State(fake): State<Fake>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let state = fake.lock();
    match q.get("path") {
        Some(path) => {
            Json(json!({ "path": path, "count": state.requests.get(path).copied().unwrap_or(0) }))
        }
        None => Json(json!(state.requests)),
    }
}
