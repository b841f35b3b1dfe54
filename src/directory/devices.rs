//! Devices and their users: registration, manual assignment (R11) and automatic assignment
//! by enrollment identity (R12).

use super::{DeviceId, UserId, audit, events::NewEvent, match_key, now, users};
use crate::store::{self, Db};
use crate::{
    auth::Admin,
    error::{DomainError, DomainResult},
};
use entity::{
    device,
    enums::{AssignmentSource, DevicePlatform, UserStatus},
};
use sea_orm::{DbErr, IntoActiveModel, Set, SqlErr, TransactionSession, TransactionTrait};

pub use crate::store::devices::{DeviceFilter, count, list, list_with_users};

/// One device, or `NOT_FOUND`.
pub async fn get(db: &impl Db, id: DeviceId) -> DomainResult<device::Model> {
    store::devices::find(db, id.0)
        .await?
        .ok_or(DomainError::NotFound { what: "device" })
}

/// What an admin gives to register a device.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub serial_number: String,
    pub name: String,
    pub platform: DevicePlatform,
    pub model: Option<String>,
    pub os_version: Option<String>,
    /// The email or UPN the person signed in with at enrollment (R12).
    pub enrollment_identity: Option<String>,
}

/// A checked [`NewDevice`].
struct ValidDevice {
    serial_number: String,
    name: String,
    model: Option<String>,
    os_version: Option<String>,
    enrollment_identity: Option<String>,
}

fn optional_text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> DomainResult<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    crate::text::require(field, value, crate::text::Lines::Single, max)?;
    Ok(Some(value.to_owned()))
}

fn validate(new: NewDevice) -> DomainResult<ValidDevice> {
    let serial = new.serial_number.trim().to_uppercase();
    if serial.is_empty()
        || serial.len() > 64
        || !serial
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(DomainError::invalid(
            "serialNumber",
            "a serial number is 1 to 64 letters, digits or dashes",
        ));
    }
    let name = optional_text("name", Some(new.name), 128)?
        .ok_or_else(|| DomainError::invalid("name", "the device name must not be empty"))?;
    let enrollment_identity = optional_text("enrollmentIdentity", new.enrollment_identity, 254)?;
    if let Some(identity) = &enrollment_identity {
        let valid = identity
            .split_once('@')
            .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
            && !identity.chars().any(char::is_whitespace);
        if !valid {
            return Err(DomainError::invalid(
                "enrollmentIdentity",
                "an enrollment identity is an email address or user principal name",
            ));
        }
    }
    Ok(ValidDevice {
        serial_number: serial,
        name,
        model: optional_text("model", new.model, 128)?,
        os_version: optional_text("osVersion", new.os_version, 64)?,
        enrollment_identity,
    })
}

/// A unique-constraint violation on insert means another request registered the same serial
/// number first.
fn serial_taken(err: DbErr) -> DomainError {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => serial_taken_error(),
        _ => err.into(),
    }
}

/// Registers a device. With an enrollment identity, assigns it at once to the one active user
/// of an auto-assigning integration whose email, UPN or alias matches (R12).
pub async fn register<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    new: NewDevice,
) -> DomainResult<device::Model> {
    let platform = new.platform;
    let valid = validate(new)?;
    let txn = crate::db::begin_write(db).await?;
    if store::devices::serial_taken(&txn, &valid.serial_number).await? {
        return Err(serial_taken_error());
    }
    let identity_key = valid.enrollment_identity.as_deref().map(match_key);
    let match_user = match &identity_key {
        Some(key) => store::devices::unique_auto_assign_match(&txn, key)
            .await?
            .map(UserId),
        None => None,
    };
    let at = now();
    let row = device::ActiveModel {
        serial_number: Set(valid.serial_number),
        name: Set(valid.name),
        platform: Set(platform),
        model: Set(valid.model),
        os_version: Set(valid.os_version),
        enrollment_identity: Set(valid.enrollment_identity),
        enrollment_identity_key: Set(identity_key),
        user_id: Set(match_user.map(|u| u.0)),
        assignment_source: Set(match_user.map(|_| AssignmentSource::Automatic)),
        assigned_at: Set(match_user.map(|_| at)),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    };
    let model = store::devices::insert(&txn, row)
        .await
        .map_err(serial_taken)?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::RegisterDevice,
        Some(audit::Target::new("Device", model.id)),
        serde_json::json!({
            "serialNumber": model.serial_number,
            "autoAssignedUserId": model.user_id,
        }),
    )
    .await?;
    let mut events = vec![NewEvent::device("device.registered", &model)];
    if model.user_id.is_some() {
        events.push(NewEvent::device("device.assigned", &model));
    }
    super::events::record(&txn, events).await?;
    txn.commit().await?;
    Ok(model)
}

fn serial_taken_error() -> DomainError {
    DomainError::AlreadyExists {
        field: "serialNumber",
        what: "a device with this serial number".into(),
    }
}

/// Assigns `user` to `device`, replacing any earlier assignment (R11). An archived user
/// cannot be assigned.
pub async fn assign<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    device: DeviceId,
    user: UserId,
) -> DomainResult<device::Model> {
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, device).await?;
    let user = users::get(&txn, user).await?;
    if user.status == UserStatus::Archived {
        return Err(DomainError::invalid(
            "userId",
            "an archived user cannot be assigned to a device",
        ));
    }
    let previous = model.user_id;
    let mut active = model.into_active_model();
    let at = now();
    active.user_id = Set(Some(user.id));
    active.assignment_source = Set(Some(AssignmentSource::Manual));
    active.assigned_at = Set(Some(at));
    active.updated_at = Set(at);
    let model = store::devices::update(&txn, active).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::AssignDeviceUser,
        Some(audit::Target::new("Device", model.id)),
        serde_json::json!({ "userId": user.id, "previousUserId": previous }),
    )
    .await?;
    super::events::record(&txn, vec![NewEvent::device("device.assigned", &model)]).await?;
    txn.commit().await?;
    Ok(model)
}

/// Removes the device's user, if it has one (R11).
pub async fn unassign<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    device: DeviceId,
) -> DomainResult<device::Model> {
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, device).await?;
    let previous = model.user_id;
    let mut active = model.into_active_model();
    active.user_id = Set(None);
    active.assignment_source = Set(None);
    active.assigned_at = Set(None);
    active.updated_at = Set(now());
    let model = store::devices::update(&txn, active).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::UnassignDeviceUser,
        Some(audit::Target::new("Device", model.id)),
        serde_json::json!({ "previousUserId": previous }),
    )
    .await?;
    super::events::record(&txn, vec![NewEvent::device("device.unassigned", &model)]).await?;
    txn.commit().await?;
    Ok(model)
}

/// Automatic assignment after a sync created or changed `users` (R12): every unassigned
/// device whose enrollment identity matches one of their addresses goes to the one active
/// user of an auto-assigning integration with that address. Never replaces an assignment,
/// and assigns nothing when the address matches several users. Returns how many devices it
/// assigned.
pub async fn auto_assign_users<C: TransactionTrait + Db>(
    db: &C,
    actor: &crate::auth::Actor,
    users: &[i64],
) -> DomainResult<u64> {
    let mut assigned = 0;
    for chunk in users.chunks(1000) {
        let keys = store::devices::address_keys_of_active(db, chunk).await?;
        if keys.is_empty() {
            continue;
        }
        for found in store::devices::unassigned_with_keys(db, keys).await? {
            let Some(key) = found.enrollment_identity_key.as_deref() else {
                continue;
            };
            let Some(user) = store::devices::unique_auto_assign_match(db, key).await? else {
                continue;
            };
            assigned += u64::from(assign_automatically(db, actor, found, UserId(user)).await?);
        }
    }
    Ok(assigned)
}

/// Assigns `found` to `user` automatically, unless it was assigned meanwhile, with its audit
/// record and event, in one transaction; whether it did.
async fn assign_automatically<C: TransactionTrait + Db>(
    db: &C,
    actor: &crate::auth::Actor,
    mut found: device::Model,
    user: UserId,
) -> DomainResult<bool> {
    let txn = crate::db::begin_write(db).await?;
    let at = now();
    let assigned = store::devices::assign_if_unassigned(
        &txn,
        found.id,
        user.0,
        AssignmentSource::Automatic,
        at,
    )
    .await?;
    if assigned {
        audit::record(
            &txn,
            actor,
            crate::directory::audit::Action::AutoAssignDevice,
            Some(audit::Target::new("Device", found.id)),
            serde_json::json!({ "userId": user.0, "enrollmentIdentity": found.enrollment_identity }),
        )
        .await?;
        found.user_id = Some(user.0);
        found.assignment_source = Some(AssignmentSource::Automatic);
        found.assigned_at = Some(at);
        found.updated_at = at;
        super::events::record(&txn, vec![NewEvent::device("device.assigned", &found)]).await?;
    }
    txn.commit().await?;
    Ok(assigned)
}
