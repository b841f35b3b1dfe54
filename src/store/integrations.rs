//! `integrations`: their rows, read and listed, and written by the rules of
//! `directory::integrations` (names, settings, deletion).

use super::{
    Db,
    order::{self, KeyValue, Order},
    page::{self, Page, PageArgs},
};
use crate::error::DomainResult;
use entity::{
    enums::{DirectoryKind, IntegrationStatus},
    integration,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Select};

/// Which integrations to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct IntegrationFilter {
    pub kind: Option<DirectoryKind>,
    pub status: Option<IntegrationStatus>,
}

fn select(filter: IntegrationFilter) -> Select<integration::Entity> {
    let mut select = integration::Entity::find();
    if let Some(kind) = filter.kind {
        select = select.filter(integration::Column::Kind.eq(kind));
    }
    if let Some(status) = filter.status {
        select = select.filter(integration::Column::Status.eq(status));
    }
    select
}

/// One page of integrations in `order`.
pub async fn list(
    db: &impl Db,
    filter: IntegrationFilter,
    args: PageArgs,
    order: Order,
    after_key: Option<KeyValue>,
) -> DomainResult<Page<integration::Model>> {
    order::fetch_sorted(
        db,
        select(filter),
        integration::Column::Id,
        args,
        order,
        after_key,
    )
    .await
}

/// How many integrations match.
pub async fn count(db: &impl Db, filter: IntegrationFilter) -> DomainResult<u64> {
    page::count(db, select(filter)).await
}

/// One integration, if it exists.
pub async fn find(db: &impl Db, id: i64) -> Result<Option<integration::Model>, DbErr> {
    integration::Entity::find_by_id(id).one(db).await
}

/// Whether an integration other than `except` has the name key `key` (R3).
pub async fn name_taken(db: &impl Db, key: &str, except: Option<i64>) -> Result<bool, DbErr> {
    let mut select = integration::Entity::find().filter(integration::Column::NameKey.eq(key));
    if let Some(id) = except {
        select = select.filter(integration::Column::Id.ne(id));
    }
    Ok(select.one(db).await?.is_some())
}

/// Inserts an integration.
pub async fn insert(
    db: &impl Db,
    model: integration::ActiveModel,
) -> Result<integration::Model, DbErr> {
    model.insert(db).await
}

/// Writes the changed columns of an integration.
pub async fn update(
    db: &impl Db,
    model: integration::ActiveModel,
) -> Result<integration::Model, DbErr> {
    model.update(db).await
}

/// Deletes an integration's row; its memberships, runs and pending sign-ins go with it
/// (foreign keys).
pub async fn delete(db: &impl Db, id: i64) -> Result<(), DbErr> {
    integration::Entity::delete_by_id(id)
        .exec(db)
        .await
        .map(drop)
}
