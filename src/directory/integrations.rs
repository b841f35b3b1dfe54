//! Integrations: reading them, and the rules about their names (R3).

use super::IntegrationId;
use crate::error::{DomainError, DomainResult};
use crate::store::{self, Db};
use entity::{
    enums::{DirectoryKind, IntegrationStatus},
    integration,
};
use sea_orm::TransactionSession;

pub use crate::store::integrations::{IntegrationFilter, count, list};

/// Longest integration name, in characters (R3).
pub const MAX_NAME_CHARS: usize = 64;

/// A valid integration name: the trimmed name to show and the key that must be unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationName {
    pub display: String,
    pub key: String,
}

/// Inserts a new integration named `name` (`model` has every other column set), refusing a
/// name another integration has, case-insensitively (R3): checked first for a clear error, and
/// by the unique index for a race.
pub async fn insert_new(
    db: &impl Db,
    name: IntegrationName,
    mut model: integration::ActiveModel,
) -> DomainResult<integration::Model> {
    if store::integrations::name_taken(db, &name.key, None).await? {
        return Err(DomainError::NameTaken(name.display));
    }
    model.name = sea_orm::Set(name.display.clone());
    model.name_key = sea_orm::Set(name.key);
    let model = store::integrations::insert(db, model)
        .await
        .map_err(|e| name_taken(e, &name.display))?;
    super::events::record(
        db,
        vec![super::events::NewEvent::integration(
            "integration.created",
            &model,
        )],
    )
    .await?;
    Ok(model)
}

/// Shortest and longest per-integration sync interval (R5).
pub const SYNC_INTERVAL_MINUTES: std::ops::RangeInclusive<i32> = 15..=43_200;

/// Checks a per-integration sync interval against [`SYNC_INTERVAL_MINUTES`].
pub fn check_sync_interval(minutes: i32) -> DomainResult<()> {
    if SYNC_INTERVAL_MINUTES.contains(&minutes) {
        return Ok(());
    }
    Err(DomainError::invalid(
        "syncIntervalMinutes",
        format!(
            "the sync interval must be between {} and {} minutes",
            SYNC_INTERVAL_MINUTES.start(),
            SYNC_INTERVAL_MINUTES.end()
        ),
    ))
}

/// Checks a proposed integration name: trimmed, 1–64 characters, no control characters (R3).
pub fn validate_name(raw: &str) -> DomainResult<IntegrationName> {
    let display = raw.trim();
    let chars = display.chars().count();
    if chars == 0 {
        return Err(DomainError::invalid("name", "the name must not be empty"));
    }
    if chars > MAX_NAME_CHARS {
        return Err(DomainError::invalid(
            "name",
            format!("the name must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    crate::text::require("name", display, crate::text::Lines::Single, MAX_NAME_CHARS)?;
    Ok(IntegrationName {
        display: display.to_owned(),
        key: super::match_key(display),
    })
}

/// One integration, or `NOT_FOUND`.
pub async fn get(db: &impl Db, id: IntegrationId) -> DomainResult<integration::Model> {
    find(db, id).await?.ok_or(DomainError::NotFound {
        what: "integration",
    })
}

/// One integration, if it exists.
pub async fn find(db: &impl Db, id: IntegrationId) -> DomainResult<Option<integration::Model>> {
    Ok(store::integrations::find(db, id.0).await?)
}

/// When the integration's next scheduled sync is due: none for SCIM (push only) and none
/// unless it is ACTIVE (R5, R16).
pub fn next_sync_at(model: &integration::Model) -> Option<chrono::DateTime<chrono::Utc>> {
    let scheduled = model.kind != DirectoryKind::Scim && model.status == IntegrationStatus::Active;
    model.next_sync_at.filter(|_| scheduled)
}

/// A unique-name violation is the name being taken (R3); anything else is the database's.
fn name_taken(err: sea_orm::DbErr, name: &str) -> DomainError {
    match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            DomainError::NameTaken(name.to_owned())
        }
        _ => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_name_trims_and_keys_case_insensitively() {
        let name = validate_name("  Contoso Entra ").unwrap();
        assert_eq!(name.display, "Contoso Entra");
        assert_eq!(name.key, "contoso entra");
    }

    #[test]
    fn validate_name_refuses_empty_long_and_control() {
        assert_eq!(validate_name("   ").unwrap_err().code(), "INVALID_INPUT");
        assert!(validate_name(&"x".repeat(64)).is_ok());
        assert_eq!(
            validate_name(&"x".repeat(65)).unwrap_err().code(),
            "INVALID_INPUT"
        );
        assert_eq!(
            validate_name("a\u{7}b").unwrap_err().code(),
            "INVALID_INPUT"
        );
        // 64 characters, more than 64 bytes: characters count, not bytes.
        assert!(validate_name(&"é".repeat(64)).is_ok());
    }
}

/// Renames an integration (R3); its users show the new name as their origin.
pub async fn rename<C: sea_orm::TransactionTrait>(
    db: &C,
    admin: &crate::auth::Admin,
    id: IntegrationId,
    raw: &str,
) -> DomainResult<integration::Model> {
    use sea_orm::{IntoActiveModel, Set};
    let name = validate_name(raw)?;
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, id).await?;
    if store::integrations::name_taken(&txn, &name.key, Some(model.id)).await? {
        return Err(DomainError::NameTaken(name.display));
    }
    let old = model.name.clone();
    let mut active = model.into_active_model();
    active.name = Set(name.display.clone());
    active.name_key = Set(name.key);
    active.updated_at = Set(super::now());
    let model = store::integrations::update(&txn, active)
        .await
        .map_err(|e| name_taken(e, &name.display))?;
    store::users::set_origin_name(&txn, model.id, &model.name).await?;
    super::audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::RenameIntegration,
        Some(super::audit::Target::new("Integration", model.id)),
        serde_json::json!({ "from": old, "to": model.name }),
    )
    .await?;
    super::events::record(
        &txn,
        vec![super::events::NewEvent::integration(
            "integration.renamed",
            &model,
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Settings an admin may change; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub auto_assign_devices: Option<bool>,
    /// `Some(None)` goes back to the deployment's interval.
    pub sync_interval_minutes: Option<Option<i32>>,
}

/// Changes an integration's settings.
/// A new interval counts from the last sync: `default_interval_minutes` is the deployment's,
/// for an integration that goes back to it.
pub async fn update_settings<C: sea_orm::TransactionTrait>(
    db: &C,
    admin: &crate::auth::Admin,
    id: IntegrationId,
    settings: Settings,
    default_interval_minutes: i32,
) -> DomainResult<integration::Model> {
    use sea_orm::{IntoActiveModel, Set};
    if let Some(Some(minutes)) = settings.sync_interval_minutes {
        check_sync_interval(minutes)?;
    }
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, id).await?;
    let last_synced_at = model.last_synced_at;
    let mut active = model.into_active_model();
    if let Some(auto) = settings.auto_assign_devices {
        active.auto_assign_devices = Set(auto);
    }
    if let Some(interval) = settings.sync_interval_minutes {
        active.sync_interval_minutes = Set(interval);
        if let Some(last) = last_synced_at {
            let minutes = interval.unwrap_or(default_interval_minutes) as i64;
            active.next_sync_at = Set(Some(last + chrono::Duration::minutes(minutes)));
        }
    }
    active.updated_at = Set(super::now());
    let model = store::integrations::update(&txn, active).await?;
    super::audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::UpdateIntegrationSettings,
        Some(super::audit::Target::new("Integration", model.id)),
        serde_json::json!({ "autoAssignDevices": model.auto_assign_devices, "syncIntervalMinutes": model.sync_interval_minutes }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Typing the name confirms a deletion: trimmed, then exactly the name, case included (R9).
pub fn check_confirmation(model: &integration::Model, typed: &str) -> DomainResult<()> {
    if typed.trim() == model.name {
        Ok(())
    } else {
        Err(DomainError::ConfirmationMismatch)
    }
}

/// What deleting an integration did (R9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub users_removed: u64,
    pub users_retained: u64,
}

/// Deletes an integration once its name is typed exactly (trimmed, case-sensitive; R9), in
/// one transaction: its users without a device and its groups go; users with a device stay,
/// archived, detached, still showing the integration's name. The caller cancels a running
/// sync first.
pub async fn delete<C: sea_orm::TransactionTrait>(
    db: &C,
    admin: &crate::auth::Admin,
    id: IntegrationId,
    confirm_name: &str,
) -> DomainResult<Deleted> {
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, id).await?;
    check_confirmation(&model, confirm_name)?;
    let super::users::Departed {
        removed,
        archived: retained,
    } = super::users::remove_or_detach_all(&txn, id, &model.name).await?;
    remove_groups(&txn, id).await?;
    // Memberships, runs and pending sign-ins go with the row (foreign keys).
    store::integrations::delete(&txn, model.id).await?;
    super::audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::DeleteIntegration,
        Some(super::audit::Target::new("Integration", model.id)),
        serde_json::json!({ "name": model.name, "usersRemoved": removed, "usersRetained": retained }),
    )
    .await?;
    super::events::record(
        &txn,
        vec![super::events::NewEvent::integration(
            "integration.deleted",
            &model,
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(Deleted {
        users_removed: removed,
        users_retained: retained,
    })
}

/// Groups an integration's deletion removes at once.
const GROUPS_AT_ONCE: u64 = 1_000;

/// Removes the groups of an integration being deleted, each with its `group.removed` event
/// (R17), [`GROUPS_AT_ONCE`] at a time (their memberships go with them).
async fn remove_groups(txn: &impl Db, id: IntegrationId) -> DomainResult<()> {
    loop {
        let groups = store::groups::remove_of_integration(txn, id.0, GROUPS_AT_ONCE).await?;
        if groups.is_empty() {
            return Ok(());
        }
        let events = groups
            .iter()
            .map(|g| super::events::NewEvent::group("group.removed", g, &[]))
            .collect();
        super::events::record(txn, events).await?;
    }
}
