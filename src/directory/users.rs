//! Directory users: reading and filtering them, and the one place that decides what happens to
//! a user who leaves (R9, R14): removed without a device, archived with one. Users are never
//! created here: only a directory integration creates them (R10).

use super::{IntegrationId, UserId, events::NewEvent};
use crate::error::{DomainError, DomainResult};
use crate::store::{self, Db};
use entity::{directory_user, enums::UserStatus};

pub use crate::store::users::{
    UserFilter,
    list::{count, list},
    search_condition,
};

/// One user, or `NOT_FOUND`.
pub async fn get(db: &impl Db, id: UserId) -> DomainResult<directory_user::Model> {
    store::users::list::find(db, id.0)
        .await?
        .ok_or(DomainError::NotFound { what: "user" })
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
pub async fn remove_or_archive(txn: &impl Db, users: &[i64]) -> DomainResult<Departed> {
    depart(txn, users, None).await
}

/// [`remove_or_archive`], and with `detach_from` (the name of an integration being deleted,
/// R9) the archived users also leave the integration, keeping its name as their origin. Each
/// user's event (`user.removed`, `user.archived`) is written with it.
async fn depart(txn: &impl Db, users: &[i64], detach_from: Option<&str>) -> DomainResult<Departed> {
    debug_assert!(users.len() <= 1000, "callers chunk the ids");
    let keep = store::users::with_devices(txn, users).await?;
    let (archive, remove): (Vec<i64>, Vec<i64>) = users.iter().partition(|id| keep.contains(id));
    // Their state, for the events: a removed user as it was, an archived one as it becomes.
    let rows = store::users::by_ids(txn, users).await?;
    let at = super::now();
    if !archive.is_empty() {
        store::users::archive(txn, &archive, at, detach_from).await?;
    }
    if !remove.is_empty() {
        store::users::delete(txn, &remove).await?;
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
pub async fn remove_or_detach_all(
    txn: &impl Db,
    integration: IntegrationId,
    origin_name: &str,
) -> DomainResult<Departed> {
    let mut departed = Departed {
        removed: 0,
        archived: 0,
    };
    let mut after = 0;
    loop {
        let ids = store::users::ids_after(txn, integration.0, after, DEPARTING_AT_ONCE).await?;
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
    use entity::{device, directory_group, enums::DevicePlatform, group_membership, integration};
    use sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait, PaginatorTrait};

    /// An in-memory database, migrated, with one integration, three users (the second with a
    /// device) and a group holding all three.
    async fn fixture() -> (sea_orm::DatabaseConnection, i64, Vec<i64>) {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let now = super::super::now();
        let it = integration::ActiveModel {
            awaiting_scope: sea_orm::Set(false),
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
