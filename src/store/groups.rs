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
