//! What the SCIM endpoint reads: an integration's users (archived ones are gone, for SCIM) and
//! groups as a list's window, a count and a page, one resource by its SCIM id, and the
//! memberships a resource shows.

use super::{MAX_INEXACT_ROWS, Translated};
use crate::store::Db;
use entity::{directory_group, directory_user, enums::UserStatus, group_membership, group_nesting};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, Iterable, ModelTrait, PaginatorTrait, PrimaryKeyToColumn,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, Select,
};
use std::collections::HashMap;

/// A list's place: the first resource, 1-based, and how many at most.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub start: usize,
    pub count: usize,
}

/// What a list reads from the database.
pub enum Window<M> {
    /// The filter was decided in SQL: the number of matches and the requested page.
    Page { total: u64, rows: Vec<M> },
    /// The filter's condition is a superset: every candidate, for the evaluator to decide and
    /// page; more than [`MAX_INEXACT_ROWS`] means the filter leaves too many.
    Candidates(Vec<M>),
}

fn users(integration: i64) -> Select<directory_user::Entity> {
    directory_user::Entity::find()
        .filter(directory_user::Column::IntegrationId.eq(integration))
        .filter(directory_user::Column::Status.ne(UserStatus::Archived))
}

fn groups(integration: i64) -> Select<directory_group::Entity> {
    directory_group::Entity::find().filter(directory_group::Column::IntegrationId.eq(integration))
}

fn apply<E: EntityTrait>(select: Select<E>, condition: Option<&Translated>) -> Select<E> {
    match condition {
        Some(t) => select.filter(t.condition.clone()),
        None => select,
    }
}

/// The integration's users a list shows, in id order (see [`window`]).
pub async fn user_window(
    db: &impl Db,
    integration: i64,
    condition: Option<&Translated>,
    paging: Paging,
) -> Result<Window<directory_user::Model>, DbErr> {
    window(db, users(integration), condition, paging).await
}

/// The integration's groups a list shows, in id order (see [`window`]).
pub async fn group_window(
    db: &impl Db,
    integration: i64,
    condition: Option<&Translated>,
    paging: Paging,
) -> Result<Window<directory_group::Model>, DbErr> {
    window(db, groups(integration), condition, paging).await
}

/// How many of the integration's users match.
pub async fn count_users(
    db: &impl Db,
    integration: i64,
    condition: Option<&Translated>,
) -> Result<u64, DbErr> {
    apply(users(integration), condition).count(db).await
}

/// How many of the integration's groups match.
pub async fn count_groups(
    db: &impl Db,
    integration: i64,
    condition: Option<&Translated>,
) -> Result<u64, DbErr> {
    apply(groups(integration), condition).count(db).await
}

/// The matching users from the `offset`th, at most `limit`, in id order.
pub async fn user_page(
    db: &impl Db,
    integration: i64,
    condition: Option<&Translated>,
    offset: u64,
    limit: u64,
) -> Result<Vec<directory_user::Model>, DbErr> {
    apply(users(integration), condition)
        .order_by_asc(directory_user::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await
}

/// The matching groups from the `offset`th, at most `limit`, in id order.
pub async fn group_page(
    db: &impl Db,
    integration: i64,
    condition: Option<&Translated>,
    offset: u64,
    limit: u64,
) -> Result<Vec<directory_group::Model>, DbErr> {
    apply(groups(integration), condition)
        .order_by_asc(directory_group::Column::Id)
        .offset(offset)
        .limit(limit)
        .all(db)
        .await
}

/// Reads what a list needs: a count and one page, or the candidates of an inexact filter (at
/// most [`MAX_INEXACT_ROWS`] + 1, so the caller can tell there are too many). Rows come in id
/// order.
///
/// The page is found by id first (an index-only read on `(integration_id, id, status)`), then
/// read whole. When the count is small, the matching ids are read without `ORDER BY … LIMIT`
/// and sorted here: with a selective filter a planner would otherwise walk the id index and
/// test every row.
async fn window<E>(
    db: &impl Db,
    select: Select<E>,
    condition: Option<&Translated>,
    paging: Paging,
) -> Result<Window<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    const SMALL: u64 = 1_000;
    #[allow(
        clippy::expect_used,
        reason = "sea-orm entities are generated with a primary key"
    )]
    let id = E::PrimaryKey::iter()
        .next()
        .expect("every entity has a primary key")
        .into_column();
    let id_of = |model: &E::Model| match model.get(id) {
        sea_orm::Value::BigInt(Some(v)) => v,
        _ => 0,
    };
    if let Some(t) = condition.filter(|t| !t.exact) {
        let mut rows = select
            .filter(t.condition.clone())
            .limit(MAX_INEXACT_ROWS + 1)
            .all(db)
            .await?;
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

/// The integration's user with SCIM id `id`, unless archived.
pub async fn user(
    db: &impl Db,
    integration: i64,
    id: &str,
) -> Result<Option<directory_user::Model>, DbErr> {
    users(integration)
        .filter(directory_user::Column::ExternalId.eq(id))
        .one(db)
        .await
}

/// The integration's group with SCIM id `id`.
pub async fn group(
    db: &impl Db,
    integration: i64,
    id: &str,
) -> Result<Option<directory_group::Model>, DbErr> {
    groups(integration)
        .filter(directory_group::Column::ExternalId.eq(id))
        .one(db)
        .await
}

/// The groups users are direct members of: `user row id → [(group SCIM id, name)]`, in group
/// id order.
pub async fn groups_of(
    db: &impl Db,
    users: &[i64],
) -> Result<HashMap<i64, Vec<(String, String)>>, DbErr> {
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

/// A member a group resource shows: a user or a nested group, by SCIM id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceMember {
    pub id: String,
    pub display: String,
    /// A group nested in the group (else a user).
    pub group: bool,
}

/// The members of groups: `group row id → members`, the users in user id order, then the
/// nested groups in group id order.
pub async fn members_of(
    db: &impl Db,
    groups: &[i64],
) -> Result<HashMap<i64, Vec<ResourceMember>>, DbErr> {
    let mut out: HashMap<i64, Vec<ResourceMember>> = HashMap::new();
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
        for (group, id, display) in rows {
            out.entry(group).or_default().push(ResourceMember {
                id,
                display,
                group: false,
            });
        }
        let children: Vec<(i64, String, String)> = group_nesting::Entity::find()
            .select_only()
            .column(group_nesting::Column::ParentId)
            .column_as(directory_group::Column::ExternalId, "external_id")
            .column_as(directory_group::Column::DisplayName, "display_name")
            .join(
                sea_orm::JoinType::InnerJoin,
                group_nesting::Relation::Child.def(),
            )
            .filter(group_nesting::Column::ParentId.is_in(chunk.iter().copied()))
            .order_by_asc(directory_group::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
        for (group, id, display) in children {
            out.entry(group).or_default().push(ResourceMember {
                id,
                display,
                group: true,
            });
        }
    }
    Ok(out)
}
