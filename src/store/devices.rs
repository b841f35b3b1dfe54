//! `devices`: as the API lists them (a filter, a page, with each device's user in the same
//! statement when asked), registered and assigned; and as automatic assignment (R12) reads
//! and writes them: the addresses of active users, the one user an address names, the
//! unassigned devices enrolled with one of them, an assignment that only lands on a device
//! still unassigned.

use super::{
    columns::{self, Columns},
    order::{KeyValue, Order},
    page::{self, Page, PageArgs},
    rows,
};
use crate::error::DomainResult;
use chrono::{DateTime, Utc};
use entity::{
    device, directory_user,
    enums::{AssignmentSource, DevicePlatform, UserStatus},
    integration, user_alias,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, JoinType,
    QueryFilter, QuerySelect, QueryTrait, RelationDef, Select, sea_query::Expr,
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

/// Which devices to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DeviceFilter {
    pub platform: Option<DevicePlatform>,
    /// `true`: only devices with a user; `false`: only devices without.
    pub assigned: Option<bool>,
    pub user: Option<crate::ids::UserId>,
    /// Case-insensitive substring of the serial number, name or enrollment identity.
    pub search: Option<String>,
}

fn select(filter: &DeviceFilter) -> Select<device::Entity> {
    let mut select = device::Entity::find();
    if let Some(platform) = filter.platform {
        select = select.filter(device::Column::Platform.eq(platform));
    }
    match filter.assigned {
        Some(true) => select = select.filter(device::Column::UserId.is_not_null()),
        Some(false) => select = select.filter(device::Column::UserId.is_null()),
        None => {}
    }
    if let Some(user) = filter.user {
        select = select.filter(device::Column::UserId.eq(user.0));
    }
    if let Some(search) = &filter.search {
        select = select.filter(super::users::search_condition(
            search,
            &[
                device::Column::SerialNumber,
                device::Column::Name,
                device::Column::EnrollmentIdentity,
            ],
        ));
    }
    select
}

/// One page of devices in `order`, reading `columns` (`store::columns`).
pub async fn list(
    db: &impl super::Db,
    filter: &DeviceFilter,
    args: PageArgs,
    order: Order,
    after_key: Option<KeyValue>,
    columns: Columns,
) -> DomainResult<Page<device::Model>> {
    let columns = columns.with_sort::<device::Entity>(order.key);
    super::order::fetch_sorted_with(
        db,
        columns::project(select(filter), columns),
        device::Column::Id,
        args,
        order,
        after_key,
        |page| rows::models(db, page),
    )
    .await
}

/// [`list`], with the user of each device read in the same statement (a left join): for a
/// page whose users are asked for too, reading `user_columns` of them.
pub async fn list_with_users(
    db: &impl super::Db,
    filter: &DeviceFilter,
    args: PageArgs,
    order: Order,
    after_key: Option<KeyValue>,
    (columns, user_columns): (Columns, Columns),
) -> DomainResult<(Page<device::Model>, Vec<directory_user::Model>)> {
    let columns = columns.with_sort::<device::Entity>(order.key);
    use sea_orm::{JoinType, QuerySelect};
    let users = std::sync::Mutex::new(Vec::new());
    let user_of_device: sea_orm::RelationDef = device::Entity::belongs_to(directory_user::Entity)
        .from(device::Column::UserId)
        .to(directory_user::Column::Id)
        .into();
    let page = super::order::fetch_sorted_with(
        db,
        columns::project(select(filter), columns),
        device::Column::Id,
        args,
        order,
        after_key,
        |page| {
            // Decoded by position (`super::rows`): the device's columns, then the user's.
            let mut joined = page
                .join(JoinType::LeftJoin, user_of_device.clone())
                .select_also(directory_user::Entity)
                .into_query();
            let user_at = rows::columns_of::<device::Entity>();
            columns::project_at::<directory_user::Entity>(&mut joined, user_at, user_columns);
            let joined = super::prepared::inline_limit(db.get_database_backend().build(&joined));
            let users = &users;
            async move {
                let rows = db.query_all_raw(joined).await?;
                let mut users = users.lock().unwrap_or_else(|e| e.into_inner());
                rows.iter()
                    .map(|row| {
                        users.extend(rows::user_at(row, user_at)?);
                        rows::device_at(row, 0)
                    })
                    .collect()
            }
        },
    )
    .await?;
    let users = users.into_inner().unwrap_or_else(|e| e.into_inner());
    Ok((page, users))
}

/// How many devices match.
pub async fn count(db: &impl super::Db, filter: &DeviceFilter) -> DomainResult<u64> {
    page::count(db, select(filter)).await
}

fn user_integration() -> RelationDef {
    directory_user::Entity::belongs_to(integration::Entity)
        .from(directory_user::Column::IntegrationId)
        .to(integration::Column::Id)
        .into()
}

/// The one active user of an auto-assigning integration whose UPN, email or alias is `key`;
/// `None` when there is none or more than one (R12).
pub async fn unique_auto_assign_match(db: &impl super::Db, key: &str) -> DomainResult<Option<i64>> {
    let aliases = user_alias::Entity::find()
        .select_only()
        .column(user_alias::Column::UserId)
        .filter(user_alias::Column::AliasKey.eq(key))
        .into_query();
    let ids: Vec<i64> = directory_user::Entity::find()
        .select_only()
        .column(directory_user::Column::Id)
        .join(JoinType::InnerJoin, user_integration())
        .filter(integration::Column::AutoAssignDevices.eq(true))
        .filter(directory_user::Column::Status.eq(UserStatus::Active))
        .filter(
            Condition::any()
                .add(directory_user::Column::UserNameKey.eq(key))
                .add(directory_user::Column::EmailKey.eq(key))
                .add(directory_user::Column::Id.in_subquery(aliases)),
        )
        .distinct()
        .limit(2)
        .into_tuple()
        .all(db)
        .await?;
    Ok(match ids.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// One device, if it exists.
pub async fn find(db: &impl super::Db, id: i64) -> Result<Option<device::Model>, DbErr> {
    device::Entity::find_by_id(id).one(db).await
}

/// Whether a device has serial number `serial`.
pub async fn serial_taken(db: &impl super::Db, serial: &str) -> Result<bool, DbErr> {
    Ok(device::Entity::find()
        .filter(device::Column::SerialNumber.eq(serial))
        .one(db)
        .await?
        .is_some())
}

/// Inserts a device.
pub async fn insert(db: &impl super::Db, row: device::ActiveModel) -> Result<device::Model, DbErr> {
    row.insert(db).await
}

/// Writes the changed columns of a device.
pub async fn update(db: &impl super::Db, row: device::ActiveModel) -> Result<device::Model, DbErr> {
    row.update(db).await
}
