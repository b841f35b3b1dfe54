//! `POST /.search` (RFC 7644 §3.4.3): a list asked for in a body, on `/Users`, `/Groups` or
//! the root (both kinds, users first).

use super::{
    Integration, Scim, ScimResult,
    groups::{list_groups, render_groups},
    list::{Paging, Window, bounded, list_response, page_response, search_params},
    users::{list_users, render_users},
};
use crate::store::scim::{MAX_INEXACT_ROWS, Resource, Translated, read};
use axum::{
    body::Bytes,
    extract::{Query, State},
    response::Response,
};
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
    let user_condition = params.condition(scim.db(), Resource::User);
    let group_condition = params.condition(scim.db(), Resource::Group);
    // `None`: no filter. A type whose attributes the filter does not have matches nothing.
    let (user_condition, group_condition) = match (user_condition, group_condition) {
        (Err(err), Err(_)) => return Err(err),
        (Ok(u), Err(_)) => (u, Some(Translated::nothing())),
        (Err(_), Ok(g)) => (Some(Translated::nothing()), g),
        (Ok(u), Ok(g)) => (u, g),
    };
    let inexact = [&user_condition, &group_condition]
        .iter()
        .any(|c| c.as_ref().is_some_and(|t| !t.exact));
    if inexact {
        // Bounded candidates of both types; the evaluator decides.
        let everything = Paging {
            start: 1,
            count: MAX_INEXACT_ROWS as usize,
        };
        let users = read::user_window(scim.db(), i.id, user_condition.as_ref(), everything);
        let users = match bounded(users.await?)? {
            Window::Page { rows, .. } | Window::Candidates(rows) => rows,
        };
        let groups = read::group_window(scim.db(), i.id, group_condition.as_ref(), everything);
        let groups = match bounded(groups.await?)? {
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
    let user_total = read::count_users(scim.db(), i.id, user_condition.as_ref()).await?;
    let group_total = read::count_groups(scim.db(), i.id, group_condition.as_ref()).await?;
    let offset = (paging.start - 1) as u64;
    let wanted = paging.count as u64;
    let mut page = Vec::new();
    if offset < user_total && wanted > 0 {
        let rows =
            read::user_page(scim.db(), i.id, user_condition.as_ref(), offset, wanted).await?;
        page.extend(render_users(scim.db(), &base, &rows).await?);
    }
    let left = wanted - page.len() as u64;
    if left > 0 {
        let skip = offset.saturating_sub(user_total);
        let rows = read::group_page(scim.db(), i.id, group_condition.as_ref(), skip, left).await?;
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
