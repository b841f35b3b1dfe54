//! Directory users: reading and filtering them, and the one place that decides what happens to
//! a user who leaves (R9, R14): removed without a device, archived with one. Users are never
//! created here: only a directory integration creates them (R10).

use super::{GroupId, IntegrationId, UserId, events::NewEvent};
use crate::error::{DomainError, DomainResult};
use crate::store::{
    columns::Columns,
    order::{KeyValue, Order},
    page::{self, Page, PageArgs},
};
use entity::{device, directory_user, enums::UserStatus, group_membership};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};

/// Which users to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct UserFilter {
    pub integration: Option<IntegrationId>,
    pub group: Option<GroupId>,
    pub status: Option<UserStatus>,
    /// `true`: only users with at least one device; `false`: only users with none.
    pub assigned: Option<bool>,
    /// Case-insensitive substring of the display name, user name or email.
    pub search: Option<String>,
}

/// `LOWER(col) LIKE '%term%'` on any of `cols`, with `%`, `_` and `\` in the term escaped.
pub fn search_condition<C: ColumnTrait>(term: &str, cols: &[C]) -> Condition {
    let mut escaped = String::with_capacity(term.len() + 2);
    escaped.push('%');
    for ch in term.trim().to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(ch);
    }
    escaped.push('%');
    cols.iter().fold(Condition::any(), |cond, col| {
        cond.add(
            Expr::expr(Func::lower(col.into_expr()))
                .like(LikeExpr::new(escaped.clone()).escape('\\')),
        )
    })
}

fn select(filter: &UserFilter) -> Select<directory_user::Entity> {
    let mut select = directory_user::Entity::find();
    if let Some(id) = filter.integration {
        select = select.filter(directory_user::Column::IntegrationId.eq(id.0));
    }
    if let Some(group) = filter.group {
        select = select.filter(
            directory_user::Column::Id.in_subquery(
                group_membership::Entity::find()
                    .select_only()
                    .column(group_membership::Column::UserId)
                    .filter(group_membership::Column::GroupId.eq(group.0))
                    .into_query(),
            ),
        );
    }
    if let Some(status) = filter.status {
        select = select.filter(directory_user::Column::Status.eq(status));
    }
    if let Some(assigned) = filter.assigned {
        let with_devices = device::Entity::find()
            .select_only()
            .column(device::Column::UserId)
            .filter(device::Column::UserId.is_not_null())
            .into_query();
        select = select.filter(if assigned {
            directory_user::Column::Id.in_subquery(with_devices)
        } else {
            directory_user::Column::Id.not_in_subquery(with_devices)
        });
    }
    if let Some(search) = &filter.search {
        select = select.filter(search_condition(
            search,
            &[
                directory_user::Column::DisplayName,
                directory_user::Column::UserName,
                directory_user::Column::Email,
            ],
        ));
    }
    select
}

/// One page of users in `order`, reading `columns` (`super::columns`).
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &UserFilter,
    args: PageArgs,
    order: Order,
    after_key: Option<KeyValue>,
    columns: Columns,
) -> DomainResult<Page<directory_user::Model>> {
    let columns = columns.with_sort::<directory_user::Entity>(order.key);
    crate::store::order::fetch_sorted_with(
        db,
        crate::store::columns::project(select(filter), columns),
        directory_user::Column::Id,
        args,
        order,
        after_key,
        |page| crate::store::rows::models(db, page),
    )
    .await
}

/// How many users match.
pub async fn count<C: ConnectionTrait>(db: &C, filter: &UserFilter) -> DomainResult<u64> {
    page::count(db, select(filter)).await
}

/// One user, or `NOT_FOUND`.
pub async fn get<C: ConnectionTrait>(db: &C, id: UserId) -> DomainResult<directory_user::Model> {
    directory_user::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound { what: "user" })
}

/// Of `users`, those assigned to at least one device.
async fn with_devices<C: ConnectionTrait>(
    db: &C,
    users: &[i64],
) -> DomainResult<std::collections::HashSet<i64>> {
    Ok(device::Entity::find()
        .select_only()
        .column(device::Column::UserId)
        .filter(device::Column::UserId.is_in(users.iter().copied()))
        .into_tuple::<Option<i64>>()
        .all(db)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// What [`remove_or_archive`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Departed {
    pub removed: u64,
    pub archived: u64,
}

/// Users gone from their directory (R14), given by id: each is removed when it has no device,
/// and archived when it has one (status `ARCHIVED`, out of its groups, keeping its devices and
/// its integration's name). Runs in the caller's transaction; at most 1,000 ids at a time.
pub async fn remove_or_archive<C: ConnectionTrait>(
    txn: &C,
    users: &[i64],
) -> DomainResult<Departed> {
    depart(txn, users, None).await
}

/// [`remove_or_archive`], and with `detach_from` (the name of an integration being deleted,
/// R9) the archived users also leave the integration, keeping its name as their origin. Each
/// user's event (`user.removed`, `user.archived`) is written with it.
async fn depart<C: ConnectionTrait>(
    txn: &C,
    users: &[i64],
    detach_from: Option<&str>,
) -> DomainResult<Departed> {
    debug_assert!(users.len() <= 1000, "callers chunk the ids");
    let keep = with_devices(txn, users).await?;
    let (archive, remove): (Vec<i64>, Vec<i64>) = users.iter().partition(|id| keep.contains(id));
    // Their state, for the events: a removed user as it was, an archived one as it becomes.
    let rows = directory_user::Entity::find()
        .filter(directory_user::Column::Id.is_in(users.iter().copied()))
        .all(txn)
        .await?;
    let at = super::now();
    if !archive.is_empty() {
        let mut update = directory_user::Entity::update_many()
            .col_expr(
                directory_user::Column::Status,
                Expr::value(UserStatus::Archived),
            )
            .col_expr(directory_user::Column::ArchivedAt, Expr::value(at))
            .col_expr(directory_user::Column::UpdatedAt, Expr::value(at));
        if let Some(origin) = detach_from {
            update = update
                .col_expr(
                    directory_user::Column::IntegrationId,
                    Expr::value(Option::<i64>::None),
                )
                .col_expr(directory_user::Column::OriginName, Expr::value(origin));
        }
        update
            .filter(directory_user::Column::Id.is_in(archive.iter().copied()))
            .exec(txn)
            .await?;
        group_membership::Entity::delete_many()
            .filter(group_membership::Column::UserId.is_in(archive.iter().copied()))
            .exec(txn)
            .await?;
    }
    if !remove.is_empty() {
        directory_user::Entity::delete_many()
            .filter(directory_user::Column::Id.is_in(remove.iter().copied()))
            .exec(txn)
            .await?;
    }
    let events = rows
        .into_iter()
        .map(|mut row| {
            if keep.contains(&row.id) {
                row.status = UserStatus::Archived;
                row.archived_at = Some(at);
                row.updated_at = at;
                if let Some(origin) = detach_from {
                    row.integration_id = None;
                    row.origin_name = origin.to_owned();
                }
                NewEvent::user("user.archived", &row, &["status"])
            } else {
                NewEvent::user("user.removed", &row, &[])
            }
        })
        .collect();
    super::events::record(txn, events).await?;
    Ok(Departed {
        removed: remove.len() as u64,
        archived: archive.len() as u64,
    })
}

/// Users an integration's deletion handles at once: memory stays bounded by this, whatever
/// the integration's size.
const DEPARTING_AT_ONCE: u64 = 1_000;

/// The users of an integration being deleted (R9): those with a device stay, archived and
/// detached from the integration (they keep `origin_name`, the integration's name); the others
/// are removed. Each writes its event (`user.archived`, `user.removed`, R17). Runs in the
/// caller's transaction, [`DEPARTING_AT_ONCE`] users at a time, in id order.
pub async fn remove_or_detach_all<C: ConnectionTrait>(
    txn: &C,
    integration: IntegrationId,
    origin_name: &str,
) -> DomainResult<Departed> {
    let mut departed = Departed {
        removed: 0,
        archived: 0,
    };
    let mut after = 0;
    loop {
        let ids: Vec<i64> = directory_user::Entity::find()
            .select_only()
            .column(directory_user::Column::Id)
            .filter(directory_user::Column::IntegrationId.eq(integration.0))
            .filter(directory_user::Column::Id.gt(after))
            .order_by_asc(directory_user::Column::Id)
            .limit(DEPARTING_AT_ONCE)
            .into_tuple()
            .all(txn)
            .await?;
        let Some(&last) = ids.last() else {
            return Ok(departed);
        };
        after = last;
        let batch = depart(txn, &ids, Some(origin_name)).await?;
        departed.removed += batch.removed;
        departed.archived += batch.archived;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::{directory_group, enums::DevicePlatform, integration};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, PaginatorTrait};

    /// An in-memory database, migrated, with one integration, three users (the second with a
    /// device) and a group holding all three.
    async fn fixture() -> (sea_orm::DatabaseConnection, i64, Vec<i64>) {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let now = super::super::now();
        let it = integration::ActiveModel {
            name: Set("Okta".into()),
            name_key: Set("okta".into()),
            kind: Set(entity::enums::DirectoryKind::Scim),
            status: Set(entity::enums::IntegrationStatus::Active),
            auto_assign_devices: Set(false),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        let group = directory_group::ActiveModel {
            integration_id: Set(it.id),
            external_id: Set("g".into()),
            display_name: Set("G".into()),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        let mut users = Vec::new();
        for n in 0..3 {
            let user = directory_user::ActiveModel {
                integration_id: Set(Some(it.id)),
                origin_name: Set("Okta".into()),
                external_id: Set(format!("u{n}")),
                user_name: Set(format!("u{n}@example.com")),
                user_name_key: Set(format!("u{n}@example.com")),
                display_name: Set(format!("U{n}")),
                status: Set(UserStatus::Active),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(&db)
            .await
            .unwrap();
            group_membership::ActiveModel {
                group_id: Set(group.id),
                user_id: Set(user.id),
                created_at: Set(now),
            }
            .insert(&db)
            .await
            .unwrap();
            users.push(user.id);
        }
        device::ActiveModel {
            serial_number: Set("C02X".into()),
            name: Set("Mac".into()),
            platform: Set(DevicePlatform::Macos),
            user_id: Set(Some(users[1])),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
        (db, it.id, users)
    }

    #[tokio::test]
    async fn remove_or_archive_keeps_users_with_a_device_archived_out_of_their_groups() {
        let (db, _, users) = fixture().await;
        let departed = remove_or_archive(&db, &users[..2]).await.unwrap();
        assert_eq!(
            departed,
            Departed {
                removed: 1,
                archived: 1
            }
        );
        assert!(
            directory_user::Entity::find_by_id(users[0])
                .one(&db)
                .await
                .unwrap()
                .is_none()
        );
        let kept = directory_user::Entity::find_by_id(users[1])
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.status, UserStatus::Archived);
        assert!(kept.archived_at.is_some());
        assert!(kept.integration_id.is_some(), "R14 keeps the integration");
        let memberships = group_membership::Entity::find().count(&db).await.unwrap();
        assert_eq!(
            memberships, 1,
            "only the untouched user is still in the group"
        );
    }

    #[tokio::test]
    async fn remove_or_detach_all_keeps_users_with_a_device_detached_with_their_origin() {
        let (db, integration, users) = fixture().await;
        let departed = remove_or_detach_all(&db, IntegrationId(integration), "Okta (old)")
            .await
            .unwrap();
        assert_eq!(
            departed,
            Departed {
                removed: 2,
                archived: 1
            }
        );
        let kept = directory_user::Entity::find().all(&db).await.unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].id, users[1]);
        assert_eq!(kept[0].status, UserStatus::Archived);
        assert_eq!(kept[0].integration_id, None);
        assert_eq!(kept[0].origin_name, "Okta (old)");
    }
}
