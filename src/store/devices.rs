//! `devices` as automatic assignment (R12) reads and writes them: the addresses of active
//! users, the unassigned devices enrolled with one of them, an assignment that only lands on
//! a device still unassigned.

use crate::error::DomainResult;
use chrono::{DateTime, Utc};
use entity::{
    device, directory_user,
    enums::{AssignmentSource, UserStatus},
    user_alias,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr,
};

/// The match keys of the addresses of those of `users` that are active: user names, emails,
/// aliases.
pub async fn address_keys_of_active<C: ConnectionTrait>(
    db: &C,
    users: &[i64],
) -> DomainResult<Vec<String>> {
    let rows = directory_user::Entity::find()
        .filter(directory_user::Column::Id.is_in(users.iter().copied()))
        .filter(directory_user::Column::Status.eq(UserStatus::Active))
        .all(db)
        .await?;
    let mut keys: Vec<String> = rows
        .iter()
        .flat_map(|u| std::iter::once(u.user_name_key.clone()).chain(u.email_key.clone()))
        .collect();
    let aliases: Vec<String> = user_alias::Entity::find()
        .select_only()
        .column(user_alias::Column::AliasKey)
        .filter(user_alias::Column::UserId.is_in(users.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    keys.extend(aliases);
    Ok(keys)
}

/// The unassigned devices whose enrollment identity has one of these match keys.
pub async fn unassigned_with_keys<C: ConnectionTrait>(
    db: &C,
    keys: Vec<String>,
) -> DomainResult<Vec<device::Model>> {
    Ok(device::Entity::find()
        .filter(device::Column::UserId.is_null())
        .filter(device::Column::EnrollmentIdentityKey.is_in(keys))
        .all(db)
        .await?)
}

/// Assigns the device to the user, only if it is still unassigned; whether it was.
pub async fn assign_if_unassigned<C: ConnectionTrait>(
    txn: &C,
    device_id: i64,
    user_id: i64,
    source: AssignmentSource,
    at: DateTime<Utc>,
) -> DomainResult<bool> {
    let updated = device::Entity::update_many()
        .col_expr(device::Column::UserId, Expr::value(user_id))
        .col_expr(device::Column::AssignmentSource, Expr::value(source))
        .col_expr(device::Column::AssignedAt, Expr::value(at))
        .col_expr(device::Column::UpdatedAt, Expr::value(at))
        .filter(device::Column::Id.eq(device_id))
        .filter(device::Column::UserId.is_null())
        .exec(txn)
        .await?;
    Ok(updated.rows_affected == 1)
}
