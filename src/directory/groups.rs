//! Directory groups and their memberships: reading them.

use super::{GroupId, IntegrationId};
use crate::error::{DomainError, DomainResult};
use crate::store::{
    order::{KeyValue, Order},
    page::{self, Page, PageArgs},
};
use entity::directory_group;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select};

/// Which groups to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GroupFilter {
    pub integration: Option<IntegrationId>,
    /// Case-insensitive substring of the name or email.
    pub search: Option<String>,
}

fn select(filter: &GroupFilter) -> Select<directory_group::Entity> {
    let mut select = directory_group::Entity::find();
    if let Some(id) = filter.integration {
        select = select.filter(directory_group::Column::IntegrationId.eq(id.0));
    }
    if let Some(search) = &filter.search {
        select = select.filter(super::users::search_condition(
            search,
            &[
                directory_group::Column::DisplayName,
                directory_group::Column::Email,
            ],
        ));
    }
    select
}

/// One page of groups in `order`, reading `columns` (`super::columns`).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &GroupFilter,
    args: PageArgs,
    order: Order,
    after_key: Option<KeyValue>,
    columns: crate::store::columns::Columns,
) -> DomainResult<Page<directory_group::Model>> {
    let columns = columns.with_sort::<directory_group::Entity>(order.key);
    crate::store::order::fetch_sorted_with(
        db,
        crate::store::columns::project(select(filter), columns),
        directory_group::Column::Id,
        args,
        order,
        after_key,
        |page| crate::store::rows::models(db, page),
    )
    .await
}

/// How many groups match.
pub async fn count<C: ConnectionTrait>(db: &C, filter: &GroupFilter) -> DomainResult<u64> {
    page::count(db, select(filter)).await
}

/// One group, or `NOT_FOUND`.
pub async fn get<C: ConnectionTrait>(db: &C, id: GroupId) -> DomainResult<directory_group::Model> {
    directory_group::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound { what: "group" })
}
