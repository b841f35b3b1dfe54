//! `oauth_authorizations`: the OAuth flows in progress (a state's hash, its sealed PKCE
//! verifier, what it is for), each spent once.

use super::Db;
use chrono::{DateTime, Utc};
use entity::oauth_authorization;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, sea_query::Expr};

/// Erases the verifier of every authorization that expired before `at` and still holds one;
/// returns how many.
pub async fn forget_expired_verifiers(db: &impl Db, at: DateTime<Utc>) -> Result<u64, DbErr> {
    Ok(oauth_authorization::Entity::update_many()
        .col_expr(oauth_authorization::Column::CodeVerifier, Expr::value(""))
        .filter(oauth_authorization::Column::ExpiresAt.lt(at))
        .filter(oauth_authorization::Column::CodeVerifier.ne(""))
        .exec(db)
        .await?
        .rows_affected)
}

/// Stores a new authorization.
pub async fn insert(db: &impl Db, row: oauth_authorization::ActiveModel) -> Result<(), DbErr> {
    row.insert(db).await.map(drop)
}

/// The authorization whose state hashes to `state_hash`.
pub async fn by_state(
    db: &impl Db,
    state_hash: &str,
) -> Result<Option<oauth_authorization::Model>, DbErr> {
    oauth_authorization::Entity::find()
        .filter(oauth_authorization::Column::StateHash.eq(state_hash))
        .one(db)
        .await
}

/// Spends authorization `id` at `at`, erasing its verifier, unless it was already spent:
/// of two requests with one state, exactly one gets `true`.
pub async fn spend(db: &impl Db, id: i64, at: DateTime<Utc>) -> Result<bool, DbErr> {
    let spent = oauth_authorization::Entity::update_many()
        .col_expr(oauth_authorization::Column::ConsumedAt, Expr::value(at))
        .col_expr(oauth_authorization::Column::CodeVerifier, Expr::value(""))
        .filter(oauth_authorization::Column::Id.eq(id))
        .filter(oauth_authorization::Column::ConsumedAt.is_null())
        .exec(db)
        .await?;
    Ok(spent.rows_affected == 1)
}
