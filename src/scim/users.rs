//! SCIM Users: the columns derived from a user resource, rendering (with the user's groups),
//! create, read, replace, patch, delete (R14) and list.

use super::{
    Integration, Scim, ScimError, ScimResult, check_if_match,
    list::{ListParams, Window, bounded, list_response, page_response},
    new_scim_id, parse_body, patch, plausible_id, schema, scim_json, text, version_of,
};
use crate::scim_filter as filter;
use crate::store::scim::{Resource, read};
use crate::{
    auth::Actor,
    directory::{devices, match_key, now},
};
use crate::{
    directory::events,
    providers::{
        ExternalUser,
        fields::{ScimAttr, USER_FIELDS, set_user},
    },
    store,
};
use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use entity::{directory_user, enums::UserStatus, integration};
use sea_orm::{DatabaseConnection, IntoActiveModel, Set};
use serde_json::{Map, Value, json};

/// What dirgate's columns hold, derived from a SCIM user: its synced fields (as a
/// directory's record, `providers::fields`), aliases and status, and its manager.
pub(super) struct UserColumns {
    user: ExternalUser,
}

/// A synced field's value in a SCIM user resource (where `providers::fields` says it sits).
fn scim_value<'a>(resource: &'a Map<String, Value>, at: &ScimAttr) -> Option<&'a Value> {
    let parent = if at.enterprise {
        resource.get(schema::ENTERPRISE)?.get(at.attr)?
    } else {
        resource.get(at.attr)?
    };
    let parent = match at.of_type {
        Some(kind) => parent
            .as_array()?
            .iter()
            .find(|e| e.get("type").and_then(Value::as_str) == Some(kind))?,
        None => parent,
    };
    match at.sub {
        Some(sub) => parent.get(sub),
        None => Some(parent),
    }
}

pub(super) fn user_columns(resource: &Map<String, Value>) -> ScimResult<UserColumns> {
    let mut user = ExternalUser {
        suspended: resource.get("active") == Some(&Value::Bool(false)),
        ..ExternalUser::default()
    };
    for field in USER_FIELDS {
        if let Some(at) = &field.scim {
            (field.given_mut)(&mut user).set(text(scim_value(resource, at)).as_deref());
        }
    }
    if user.user_name.trim().is_empty() {
        return Err(ScimError::bad("invalidValue", "`userName` is required"));
    }
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
    user.email = primary;
    user.aliases = aliases;
    if user.display_name.is_empty() {
        let name = resource.get("name");
        user.display_name = text(name.and_then(|n| n.get("formatted")))
            .or_else(|| {
                let parts: Vec<&str> = [user.given_name.as_deref(), user.family_name.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            })
            .unwrap_or_else(|| user.user_name.clone());
    }
    user.manager_external_id = text(
        resource
            .get(schema::ENTERPRISE)
            .and_then(|e| e.get("manager"))
            .and_then(|m| m.get("value")),
    );
    Ok(UserColumns { user })
}

pub(super) fn stored_resource(raw: Option<&str>) -> Map<String, Value> {
    raw.and_then(|r| serde_json::from_str::<Map<String, Value>>(r).ok())
        .unwrap_or_default()
}

/// Users rendered with their groups, in one query for all of them.
pub(super) async fn render_users(
    db: &DatabaseConnection,
    base: &str,
    rows: &[directory_user::Model],
) -> ScimResult<Vec<Value>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let groups = read::groups_of(db, &ids).await?;
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

pub(super) fn render_user(
    base: &str,
    row: &directory_user::Model,
    groups: &[(String, String)],
) -> Value {
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

pub(super) async fn user_response(
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

pub(super) fn canonical_user(body: &Value) -> ScimResult<Map<String, Value>> {
    Ok(schema::canonical_resource(
        body,
        &schema::user_attributes(),
        schema::USER,
        Some((schema::ENTERPRISE, schema::enterprise_attributes())),
    )?)
}

/// The integration's user with SCIM id `id` (archived users are gone, for SCIM).
pub(super) async fn find_user(
    db: &DatabaseConnection,
    integration: i64,
    id: &str,
) -> ScimResult<directory_user::Model> {
    if !plausible_id(id) {
        return Err(ScimError::not_found("user"));
    }
    read::user(db, integration, id)
        .await?
        .ok_or_else(|| ScimError::not_found("user"))
}

/// The user a write under `user_name` is for: `existing`, or the archived user of that name
/// when there is none (a user deleted here, kept for its devices (R14) and created again
/// comes back); `409 uniqueness` when another user of the integration has it.
fn claim_name(
    mut existing: Option<directory_user::Model>,
    named: Vec<directory_user::Model>,
    user_name: &str,
) -> ScimResult<Option<directory_user::Model>> {
    for other in named {
        if existing.as_ref().is_some_and(|e| e.id == other.id) {
            continue;
        }
        if other.status == UserStatus::Archived && existing.is_none() {
            existing = Some(other);
            continue;
        }
        return Err(ScimError::new(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("userName `{user_name}` is taken"),
        ));
    }
    Ok(existing)
}

/// Inserts or updates a user's row; its event when the API sees a change.
async fn write_user_row(
    txn: &impl store::Db,
    existing: Option<directory_user::Model>,
    active: directory_user::ActiveModel,
) -> ScimResult<(directory_user::Model, Option<events::NewEvent>)> {
    Ok(match existing {
        Some(before) => {
            let row = store::users::save(txn, active, false).await?;
            let event = events::user_change(&before, &row);
            (row, event)
        }
        None => {
            let row = store::users::save(txn, active, true).await?;
            let event = events::NewEvent::user("user.created", &row, &[]);
            (row, Some(event))
        }
    })
}

/// Writes a user (a new one when `existing` is `None`) from its canonical resource, refusing
/// a `userName` another user of the integration has (409). A user created or changed here is
/// auto-assigned (R12).
pub(super) async fn save_user(
    scim: &Scim,
    integration: &integration::Model,
    existing: Option<directory_user::Model>,
    resource: Map<String, Value>,
) -> ScimResult<directory_user::Model> {
    let columns = user_columns(&resource)?;
    let writer = scim.writer(integration.id);
    let _one_at_a_time = writer.lock().await;
    let db = scim.db();
    let txn = crate::db::begin_write(db).await?;
    // Across processes sharing a PostgreSQL database: the same, held until the transaction ends.
    store::users::lock_scim_writes(&txn, integration.id).await?;
    let named =
        store::users::named(&txn, integration.id, &match_key(&columns.user.user_name)).await?;
    let existing = claim_name(existing, named, &columns.user.user_name)?;
    let at = now();
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
    set_user(&mut active, &columns.user, at);
    active.scim_external_id = Set(text(resource.get("externalId")));
    active.scim_resource = Set(Some(Value::Object(resource).to_string()));
    let (row, event) = write_user_row(&txn, existing, active).await?;
    let had_aliases = std::collections::HashSet::from([row.id]);
    store::users::replace_aliases(&txn, vec![(row.id, columns.user.aliases)], &had_aliases).await?;
    events::record(&txn, event.into_iter().collect()).await?;
    txn.commit().await?;
    if integration.auto_assign_devices {
        devices::auto_assign_users(db, &Actor::sync(), &[row.id]).await?;
    }
    Ok(row)
}

pub(super) async fn create_user(
    State(scim): State<Scim>,
    i: Integration,
    body: Bytes,
) -> ScimResult<Response> {
    let resource = canonical_user(&parse_body(&body)?)?;
    let row = save_user(&scim, &i, None, resource).await?;
    user_response(&scim, &i, StatusCode::CREATED, &row, &ListParams::default()).await
}

pub(super) async fn get_user(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> ScimResult<Response> {
    let row = find_user(scim.db(), i.id, &id).await?;
    user_response(&scim, &i, StatusCode::OK, &row, &params).await
}

pub(super) async fn replace_user(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let row = find_user(scim.db(), i.id, &id).await?;
    check_if_match(&headers, &version_of(row.updated_at))?;
    let resource = canonical_user(&parse_body(&body)?)?;
    let row = save_user(&scim, &i, Some(row), resource).await?;
    user_response(&scim, &i, StatusCode::OK, &row, &ListParams::default()).await
}

pub(super) fn known_user_path(path: &filter::PatchPath) -> bool {
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

pub(super) async fn patch_user(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let row = find_user(scim.db(), i.id, &id).await?;
    check_if_match(&headers, &version_of(row.updated_at))?;
    let body = parse_body(&body)?;
    let mut current = render_user(&scim.base(&i), &row, &[]);
    patch::apply(&mut current, &body, &known_user_path)?;
    let resource = canonical_user(&current)?;
    let row = save_user(&scim, &i, Some(row), resource).await?;
    user_response(&scim, &i, StatusCode::OK, &row, &ListParams::default()).await
}

/// Deletes a user: removed without a device, archived (detached from its groups) with one
/// (R14). Either way it is gone for SCIM.
pub(super) async fn delete_user(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let row = find_user(scim.db(), i.id, &id).await?;
    check_if_match(&headers, &version_of(row.updated_at))?;
    let txn = crate::db::begin_write(scim.db()).await?;
    crate::directory::users::remove_or_archive(&txn, &[row.id]).await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn list_users(
    State(scim): State<Scim>,
    i: Integration,
    Query(params): Query<ListParams>,
) -> ScimResult<Response> {
    let paging = params.paging()?;
    let filter = params.filter()?;
    let condition = params.condition(scim.db(), Resource::User)?;
    let base = scim.base(&i);
    match bounded(read::user_window(scim.db(), i.id, condition.as_ref(), paging).await?)? {
        Window::Page { total, rows } => {
            let page = render_users(scim.db(), &base, &rows).await?;
            Ok(page_response(&params, total, page, &paging))
        }
        Window::Candidates(rows) => {
            let matching = render_users(scim.db(), &base, &rows)
                .await?
                .into_iter()
                .filter(|r| filter.as_ref().is_none_or(|f| f.matches(r)))
                .collect();
            Ok(list_response(&params, matching, &paging))
        }
    }
}
