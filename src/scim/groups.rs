//! SCIM Groups: rendering with members, create, read, replace, patch, delete and list; members
//! are the integration's users.

use super::{
    Integration, Scim, ScimError, ScimResult, check_if_match,
    list::{ListParams, Window, bounded, list_response, page_response},
    new_scim_id, parse_body, patch, plausible_id, schema, scim_json, text,
    users::stored_resource,
    version_of,
};
use crate::directory::now;
use crate::scim_filter as filter;
use crate::store::{
    self,
    scim::{Resource, read},
};
use crate::{directory::events, store::memberships::MembersDiff};
use axum::{
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use entity::{directory_group, integration};
use sea_orm::{DatabaseConnection, IntoActiveModel, Set};
use serde_json::{Map, Value, json};
use std::collections::HashSet;

pub(super) fn render_group(
    base: &str,
    row: &directory_group::Model,
    members: Option<&Vec<read::ResourceMember>>,
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
                    .map(|m| {
                        let (kind, path) = if m.group {
                            ("Group", "Groups")
                        } else {
                            ("User", "Users")
                        };
                        json!({
                            "value": m.id,
                            "type": kind,
                            "$ref": format!("{base}/{path}/{}", m.id),
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

pub(super) async fn find_group(
    db: &DatabaseConnection,
    integration: i64,
    id: &str,
) -> ScimResult<directory_group::Model> {
    if !plausible_id(id) {
        return Err(ScimError::not_found("group"));
    }
    read::group(db, integration, id)
        .await?
        .ok_or_else(|| ScimError::not_found("group"))
}

pub(super) fn canonical_group(body: &Value) -> ScimResult<Map<String, Value>> {
    Ok(schema::canonical_resource(
        body,
        &schema::group_attributes(),
        schema::GROUP,
        None,
    )?)
}

/// Writes a group and makes its members exactly those listed (when `members` is given).
pub(super) async fn save_group(
    scim: &Scim,
    integration: &integration::Model,
    existing: Option<directory_group::Model>,
    mut resource: Map<String, Value>,
) -> ScimResult<directory_group::Model> {
    let display_name = text(resource.get("displayName"))
        .ok_or_else(|| ScimError::bad("invalidValue", "`displayName` is required"))?;
    let members: Option<Vec<ListedMember>> = resource.remove("members").map(|m| {
        let listed = m.as_array().map(|a| a.iter().filter_map(ListedMember::of));
        listed.map(Iterator::collect).unwrap_or_default()
    });
    let txn = crate::db::begin_write(scim.db()).await?;
    let wanted = match &members {
        Some(listed) => Some(member_ids(&txn, integration.id, existing.as_ref(), listed).await?),
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
    let (row, event) = write_group_row(&txn, existing, active).await?;
    let mut changes: Vec<events::NewEvent> = event.into_iter().collect();
    if let Some((users, groups)) = wanted {
        let have = crate::store::memberships::members_of(&txn, &[row.id])
            .await?
            .remove(&row.id)
            .unwrap_or_default();
        let nested = crate::store::memberships::children_of(&txn, &[row.id])
            .await?
            .remove(&row.id)
            .unwrap_or_default();
        let diff = [MembersDiff::between(row.id, &have, &users).nesting(&nested, &groups)];
        crate::store::memberships::write(&txn, &diff, at).await?;
        changes.extend(events::NewEvent::memberships(integration.id, &diff));
    }
    events::record(&txn, changes).await?;
    txn.commit().await?;
    Ok(row)
}

/// A member as a request lists it: its SCIM id, and its `type` when given.
struct ListedMember {
    value: String,
    /// `Some(true)`: `"type": "Group"`; `Some(false)`: `"User"`; `None`: not said.
    group: Option<bool>,
}

impl ListedMember {
    fn of(item: &Value) -> Option<Self> {
        let value = text(item.get("value"))?;
        let kind = item.get("type").and_then(Value::as_str);
        let group = kind.map(|k| k.eq_ignore_ascii_case("Group"));
        Some(Self { value, group })
    }
}

/// The users (not archived) and groups of the integration that the listed members name
/// (a member without a `type` is a user, or else a group), or `invalidValue` for the first that
/// names neither, or for the group itself (a group is not its own member).
async fn member_ids(
    txn: &impl store::Db,
    integration_id: i64,
    this: Option<&directory_group::Model>,
    listed: &[ListedMember],
) -> ScimResult<(HashSet<i64>, HashSet<i64>)> {
    let ids: Vec<String> = listed.iter().map(|m| m.value.clone()).collect();
    let users = crate::store::users::present_ids_of(txn, integration_id, &ids).await?;
    let groups = crate::store::groups::rows_of(txn, integration_id, &ids).await?;
    let (mut user_ids, mut group_ids) = (HashSet::new(), HashSet::new());
    for member in listed {
        let id = member.value.as_str();
        let user = (member.group != Some(true))
            .then(|| users.get(id))
            .flatten();
        let group = (member.group != Some(false))
            .then(|| groups.get(id))
            .flatten();
        match (user, group) {
            (Some(user), _) => {
                user_ids.insert(*user);
            }
            (None, Some(group)) if this.is_some_and(|t| t.id == group.id) => {
                return Err(ScimError::bad(
                    "invalidValue",
                    format!("member `{id}` is the group itself"),
                ));
            }
            (None, Some(group)) => {
                group_ids.insert(group.id);
            }
            (None, None) => {
                return Err(ScimError::bad(
                    "invalidValue",
                    format!("member `{id}` is not a user or group of this integration"),
                ));
            }
        }
    }
    Ok((user_ids, group_ids))
}

/// Inserts or updates a group's row; its event when the API sees a change.
async fn write_group_row(
    txn: &impl store::Db,
    existing: Option<directory_group::Model>,
    active: directory_group::ActiveModel,
) -> ScimResult<(directory_group::Model, Option<events::NewEvent>)> {
    Ok(match existing {
        Some(before) => {
            let row = store::groups::save(txn, active, false).await?;
            let changed = crate::providers::fields::group_row_changes(&before, &row);
            let event = (!changed.is_empty())
                .then(|| events::NewEvent::group("group.updated", &row, &changed));
            (row, event)
        }
        None => {
            let row = store::groups::save(txn, active, true).await?;
            let event = events::NewEvent::group("group.created", &row, &[]);
            (row, Some(event))
        }
    })
}

pub(super) async fn group_response(
    scim: &Scim,
    integration: &integration::Model,
    status: StatusCode,
    row: &directory_group::Model,
    params: &ListParams,
) -> ScimResult<Response> {
    let members = if params.wants_members() {
        read::members_of(scim.db(), &[row.id])
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

pub(super) async fn create_group(
    State(scim): State<Scim>,
    i: Integration,
    body: Bytes,
) -> ScimResult<Response> {
    let resource = canonical_group(&parse_body(&body)?)?;
    let row = save_group(&scim, &i, None, resource).await?;
    group_response(&scim, &i, StatusCode::CREATED, &row, &ListParams::default()).await
}

pub(super) async fn get_group(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> ScimResult<Response> {
    let row = find_group(scim.db(), i.id, &id).await?;
    group_response(&scim, &i, StatusCode::OK, &row, &params).await
}

pub(super) async fn replace_group(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let row = find_group(scim.db(), i.id, &id).await?;
    check_if_match(&headers, &version_of(row.updated_at))?;
    let mut resource = canonical_group(&parse_body(&body)?)?;
    // A PUT without `members` leaves them empty, as a replacement does.
    resource
        .entry("members")
        .or_insert_with(|| Value::Array(Vec::new()));
    let row = save_group(&scim, &i, Some(row), resource).await?;
    group_response(&scim, &i, StatusCode::OK, &row, &ListParams::default()).await
}

pub(super) fn known_group_path(path: &filter::PatchPath) -> bool {
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

pub(super) async fn patch_group(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> ScimResult<Response> {
    let row = find_group(scim.db(), i.id, &id).await?;
    check_if_match(&headers, &version_of(row.updated_at))?;
    let body = parse_body(&body)?;
    let members = read::members_of(scim.db(), &[row.id])
        .await?
        .remove(&row.id);
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
}

pub(super) async fn delete_group(
    State(scim): State<Scim>,
    i: Integration,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> ScimResult<Response> {
    let row = find_group(scim.db(), i.id, &id).await?;
    check_if_match(&headers, &version_of(row.updated_at))?;
    let txn = crate::db::begin_write(scim.db()).await?;
    store::groups::delete(&txn, row.id).await?;
    events::record(
        &txn,
        vec![events::NewEvent::group("group.removed", &row, &[])],
    )
    .await?;
    txn.commit().await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn list_groups(
    State(scim): State<Scim>,
    i: Integration,
    Query(params): Query<ListParams>,
) -> ScimResult<Response> {
    let paging = params.paging()?;
    let filter = params.filter()?;
    let condition = params.condition(scim.db(), Resource::Group)?;
    let base = scim.base(&i);
    match bounded(read::group_window(scim.db(), i.id, condition.as_ref(), paging).await?)? {
        Window::Page { total, rows } => {
            let page = render_groups(scim.db(), &base, &rows, params.wants_members()).await?;
            Ok(page_response(&params, total, page, &paging))
        }
        Window::Candidates(rows) => {
            let matching = render_groups(scim.db(), &base, &rows, true)
                .await?
                .into_iter()
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
            Ok(list_response(&params, matching, &paging))
        }
    }
}

/// Groups rendered, with their members (one query for all of them) when `with_members`.
pub(super) async fn render_groups(
    db: &DatabaseConnection,
    base: &str,
    rows: &[directory_group::Model],
    with_members: bool,
) -> ScimResult<Vec<Value>> {
    let members = if with_members {
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        Some(read::members_of(db, &ids).await?)
    } else {
        None
    };
    let empty = Vec::new();
    Ok(rows
        .iter()
        .map(|r| {
            let m = members.as_ref().map(|m| m.get(&r.id).unwrap_or(&empty));
            render_group(base, r, m)
        })
        .collect())
}
