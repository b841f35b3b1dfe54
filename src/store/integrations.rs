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

/// The ACTIVE Entra and Google integrations whose next sync is due at `at` (or never set).
pub async fn due(
    db: &impl Db,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<integration::Model>, DbErr> {
    integration::Entity::find()
        .filter(integration::Column::Status.eq(IntegrationStatus::Active))
        .filter(
            integration::Column::Kind
                .is_in([DirectoryKind::EntraId, DirectoryKind::GoogleWorkspace]),
        )
        .filter(
            sea_orm::Condition::any()
                .add(integration::Column::NextSyncAt.is_null())
                .add(integration::Column::NextSyncAt.lte(at)),
        )
        .all(db)
        .await
}

/// What a sync's end sets on its integration: when the next is due, and after a success when
/// it last synced and (an incremental read) where the next read starts.
#[derive(Debug, Clone, Default)]
pub struct Synced {
    pub next_sync_at: chrono::DateTime<chrono::Utc>,
    pub last_synced_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `Some(state)`: the delta state to keep (`None` inside: none to keep).
    pub delta_state: Option<Option<String>>,
}

/// Records a sync's end on integration `id`.
pub async fn synced(db: &impl Db, id: i64, synced: Synced) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    let mut update = integration::Entity::update_many()
        .col_expr(
            integration::Column::NextSyncAt,
            Expr::value(synced.next_sync_at),
        )
        .filter(integration::Column::Id.eq(id));
    if let Some(at) = synced.last_synced_at {
        update = update.col_expr(integration::Column::LastSyncedAt, Expr::value(at));
    }
    if let Some(state) = synced.delta_state {
        update = update.col_expr(integration::Column::DeltaState, Expr::value(state));
    }
    update.exec(db).await.map(drop)
}

/// Stores integration `id`'s sealed refresh token (a provider rotated it).
pub async fn set_refresh_token(db: &impl Db, id: i64, sealed: Vec<u8>) -> Result<(), DbErr> {
    use sea_orm::sea_query::Expr;
    integration::Entity::update_many()
        .col_expr(integration::Column::RefreshTokenEnc, Expr::value(sealed))
        .filter(integration::Column::Id.eq(id))
        .exec(db)
        .await
        .map(drop)
}
