//! `directory_groups`: an integration's groups by external id, a batch upserted, groups
//! removed (their memberships go with them). The columns come from
//! `providers::fields::GROUP_FIELDS`.

use super::batch::{in_statements, keys_per_lookup, rows_per_statement};
use crate::{error::DomainResult, providers::fields::GROUP_FIELDS};
use entity::directory_group;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, sea_query::OnConflict};
use std::collections::HashMap;

/// The integration's groups with these external ids.
pub async fn rows_of<C: ConnectionTrait>(
    db: &C,
    integration_id: i64,
    external_ids: &[String],
) -> DomainResult<HashMap<String, directory_group::Model>> {
    let mut found = HashMap::new();
    for chunk in external_ids.chunks(keys_per_lookup(db)) {
        found.extend(
            directory_group::Entity::find()
                .filter(directory_group::Column::IntegrationId.eq(integration_id))
                .filter(directory_group::Column::ExternalId.is_in(chunk.iter().cloned()))
                .all(db)
                .await?
                .into_iter()
                .map(|g| (g.external_id.clone(), g)),
        );
    }
    Ok(found)
}

/// Every group of the integration: external id → id.
pub async fn ids_of_integration<C: ConnectionTrait>(
    db: &C,
    integration_id: i64,
) -> DomainResult<HashMap<String, i64>> {
    use sea_orm::QuerySelect;
    Ok(directory_group::Entity::find()
        .select_only()
        .column(directory_group::Column::ExternalId)
        .column(directory_group::Column::Id)
        .filter(directory_group::Column::IntegrationId.eq(integration_id))
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// The groups with these ids.
pub async fn by_ids<C: ConnectionTrait>(
    db: &C,
    ids: &[i64],
) -> DomainResult<Vec<directory_group::Model>> {
    let mut found = Vec::new();
    for chunk in ids.chunks(rows_per_statement(db, 1)) {
        found.extend(
            directory_group::Entity::find()
                .filter(directory_group::Column::Id.is_in(chunk.iter().copied()))
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// Inserts new groups and updates changed ones (their synced fields and `updated_at`), keyed
/// on `(integration_id, external_id)`, in the caller's transaction; returns the rows written.
pub async fn upsert<C: ConnectionTrait>(
    txn: &C,
    rows: Vec<directory_group::ActiveModel>,
) -> DomainResult<Vec<directory_group::Model>> {
    use directory_group::Column as C;
    // The synced fields, and integration_id, external_id, created_at, updated_at.
    let columns = GROUP_FIELDS.len() + 4;
    let updated = GROUP_FIELDS.iter().map(|f| f.column).chain([C::UpdatedAt]);
    let mut written = Vec::new();
    for chunk in in_statements(txn, columns, rows) {
        written.extend(
            directory_group::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([C::IntegrationId, C::ExternalId])
                        .update_columns(updated.clone())
                        .to_owned(),
                )
                .exec_with_returning(txn)
                .await?,
        );
    }
    Ok(written)
}

/// Deletes the groups with these ids (at most one statement's worth) in the caller's
/// transaction; returns the rows as they were.
pub async fn remove<C: ConnectionTrait>(
    txn: &C,
    ids: &[i64],
) -> DomainResult<Vec<directory_group::Model>> {
    let rows = by_ids(txn, ids).await?;
    directory_group::Entity::delete_many()
        .filter(directory_group::Column::Id.is_in(ids.iter().copied()))
        .exec(txn)
        .await?;
    Ok(rows)
}

/// Deletes up to `most` groups of the integration (the oldest first) in the caller's
/// transaction; returns them as they were (none left: an empty list).
pub async fn remove_of_integration(
    txn: &impl super::Db,
    integration_id: i64,
    most: u64,
) -> DomainResult<Vec<directory_group::Model>> {
    use sea_orm::{QueryOrder, QuerySelect};
    let groups = directory_group::Entity::find()
        .filter(directory_group::Column::IntegrationId.eq(integration_id))
        .order_by_asc(directory_group::Column::Id)
        .limit(most)
        .all(txn)
        .await?;
    if !groups.is_empty() {
        directory_group::Entity::delete_many()
            .filter(directory_group::Column::Id.is_in(groups.iter().map(|g| g.id)))
            .exec(txn)
            .await?;
    }
    Ok(groups)
}

/// Which groups to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GroupFilter {
    pub integration: Option<crate::ids::IntegrationId>,
    /// Case-insensitive substring of the name or email.
    pub search: Option<String>,
}

fn select(filter: &GroupFilter) -> sea_orm::Select<directory_group::Entity> {
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

/// One page of groups in `order`, reading `columns` (`store::columns`).
pub async fn list(
    db: &impl super::Db,
    filter: &GroupFilter,
    args: super::page::PageArgs,
    order: super::order::Order,
    after_key: Option<super::order::KeyValue>,
    columns: super::columns::Columns,
) -> DomainResult<super::page::Page<directory_group::Model>> {
    let columns = columns.with_sort::<directory_group::Entity>(order.key);
    super::order::fetch_sorted_with(
        db,
        super::columns::project(select(filter), columns),
        directory_group::Column::Id,
        args,
        order,
        after_key,
        |page| super::rows::models(db, page),
    )
    .await
}

/// How many groups match.
pub async fn count(db: &impl super::Db, filter: &GroupFilter) -> DomainResult<u64> {
    super::page::count(db, select(filter)).await
}

/// One group, if it exists.
pub async fn find(
    db: &impl super::Db,
    id: i64,
) -> Result<Option<directory_group::Model>, sea_orm::DbErr> {
    directory_group::Entity::find_by_id(id).one(db).await
}

/// Writes a group's row as a SCIM push gives it: inserted when `new`, else its set columns
/// updated.
pub async fn save(
    txn: &impl super::Db,
    row: directory_group::ActiveModel,
    new: bool,
) -> Result<directory_group::Model, sea_orm::DbErr> {
    use sea_orm::ActiveModelTrait;
    if new {
        row.insert(txn).await
    } else {
        row.update(txn).await
    }
}

/// Deletes one group (its memberships go with it).
pub async fn delete(txn: &impl super::Db, id: i64) -> Result<(), sea_orm::DbErr> {
    directory_group::Entity::delete_by_id(id)
        .exec(txn)
        .await
        .map(drop)
}
