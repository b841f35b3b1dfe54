//! `api_tokens` (the GraphQL API's bearer tokens) and an integration's SCIM token columns.

use super::Db;
use entity::{api_token, enums::TokenRole, integration};
use sea_orm::{ActiveModelTrait, DbErr, EntityTrait, IntoActiveModel, QueryOrder, Set};

/// Inserts a token row, then sets its hint from its id: `hint(id)` is what a list shows of it.
pub async fn insert(
    txn: &impl Db,
    name: &str,
    role: TokenRole,
    secret_hash: String,
    at: chrono::DateTime<chrono::Utc>,
    hint: impl FnOnce(i64) -> String,
) -> Result<api_token::Model, DbErr> {
    let model = api_token::ActiveModel {
        name: Set(name.to_owned()),
        role: Set(role),
        secret_hash: Set(secret_hash),
        hint: Set(String::new()),
        created_at: Set(at),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let hint = hint(model.id);
    let mut active = model.into_active_model();
    active.hint = Set(hint);
    active.update(txn).await
}

/// Every token, oldest first, revoked ones included.
pub async fn list(db: &impl Db) -> Result<Vec<api_token::Model>, DbErr> {
    api_token::Entity::find()
        .order_by_asc(api_token::Column::Id)
        .all(db)
        .await
}

/// One token row.
pub async fn get(db: &impl Db, id: i64) -> Result<Option<api_token::Model>, DbErr> {
    api_token::Entity::find_by_id(id).one(db).await
}

/// Marks `model` revoked at `at`.
pub async fn revoke(
    txn: &impl Db,
    model: api_token::Model,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<api_token::Model, DbErr> {
    let mut active = model.into_active_model();
    active.revoked_at = Set(Some(at));
    active.update(txn).await
}

/// Records that `model` was used at `at`.
pub async fn used(
    db: &impl Db,
    model: api_token::Model,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), DbErr> {
    let mut active = model.into_active_model();
    active.last_used_at = Set(Some(at));
    active.update(db).await.map(drop)
}

/// Gives a SCIM integration a new token (its hash and its hint).
pub async fn set_scim_token(
    txn: &impl Db,
    model: integration::Model,
    hash: String,
    hint: String,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<integration::Model, DbErr> {
    let mut active = model.into_active_model();
    active.scim_token_hash = Set(Some(hash));
    active.scim_token_hint = Set(Some(hint));
    active.updated_at = Set(at);
    active.update(txn).await
}
