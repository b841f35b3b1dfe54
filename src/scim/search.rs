//! `POST /.search` (RFC 7644 §3.4.3): a list asked for in a body, on `/Users`, `/Groups` or
//! the root (both kinds, users first).

use super::{
    Integration, Scim, ScimResult,
    groups::{list_groups, render_groups},
    list::{Paging, Window, apply, count, list_response, page_response, search_params, window},
    query,
    users::{list_users, render_users},
};
use axum::{
    body::Bytes,
    extract::{Query, State},
    response::Response,
};
use entity::{directory_group, directory_user, enums::UserStatus};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

pub(super) async fn search_users(
    scim: State<Scim>,
    i: Integration,
    body: Bytes,
) -> ScimResult<Response> {
    list_users(scim, i, Query(search_params(&body)?)).await
}

/// `POST /.search` at the root: users and groups together, users first. A filter on an
/// attribute one type lacks matches nothing of that type.
pub(super) async fn search_all(
    State(scim): State<Scim>,
    i: Integration,
    body: Bytes,
) -> ScimResult<Response> {
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

pub(super) async fn search_groups(
    scim: State<Scim>,
    i: Integration,
    body: Bytes,
) -> ScimResult<Response> {
    list_groups(scim, i, Query(search_params(&body)?)).await
}
