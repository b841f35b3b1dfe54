//! `Device`: an enrolled device and its user.

use super::{AssignmentSource, DevicePlatform, User};
use crate::graphql::{
    context::ContextExt,
    ids::{self, kinds},
    loaders::{PrefetchedUser, UserKey},
};
use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::device;
use std::sync::Arc;

/// An enrolled device, and its user when it was read with it (a page of devices asked for
/// with their users).
pub struct Device(pub device::Model, Option<Arc<PrefetchedUser>>);

impl Device {
    /// The device, with nothing read beside it.
    pub fn new(model: device::Model) -> Self {
        Device(model, None)
    }

    /// The device with its user, read with it.
    pub fn with_user(model: device::Model, user: Option<Arc<PrefetchedUser>>) -> Self {
        Device(model, user)
    }
}

/// How and when a device got its user.
#[derive(SimpleObject)]
pub struct DeviceAssignment {
    /// Assigned by an admin, or automatically by enrollment identity.
    pub source: AssignmentSource,
    /// When the current user was assigned.
    pub assigned_at: DateTime<Utc>,
}

/// An enrolled device: serial number, name, platform, model and OS version, its enrollment
/// identity, and its assigned user with how and when it was assigned.
#[Object]
impl Device {
    /// The device's global id.
    pub async fn id(&self) -> ID {
        ids::encode(kinds::DEVICE, self.0.id)
    }

    /// The serial number, upper-cased; unique.
    async fn serial_number(&self) -> &str {
        &self.0.serial_number
    }

    /// The device's name.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The operating system family.
    async fn platform(&self) -> DevicePlatform {
        self.0.platform.into()
    }

    /// The hardware model.
    async fn model(&self) -> Option<&str> {
        self.0.model.as_deref()
    }

    /// The operating system's version, as registered; null when not given.
    async fn os_version(&self) -> Option<&str> {
        self.0.os_version.as_deref()
    }

    /// The email or UPN the person signed in with at enrollment.
    async fn enrollment_identity(&self) -> Option<&str> {
        self.0.enrollment_identity.as_deref()
    }

    /// The assigned user, if any.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.user_id else {
            return Ok(None);
        };
        if let Some(user) = &self.1 {
            return Ok(Some(User::from(PrefetchedUser::clone(user))));
        }
        Ok(ctx.loaders().load_one(UserKey(id)).await?.map(User::new))
    }

    /// How and when the user was assigned; null when the device has no user.
    async fn assignment(&self) -> Option<DeviceAssignment> {
        match (self.0.user_id, self.0.assignment_source, self.0.assigned_at) {
            (Some(_), Some(source), Some(assigned_at)) => Some(DeviceAssignment {
                source: source.into(),
                assigned_at,
            }),
            _ => None,
        }
    }

    /// When the device was registered.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// When the device last changed.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}
