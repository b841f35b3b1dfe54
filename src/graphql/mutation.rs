//! The `Mutation` root: every change made through the API. Each needs an ADMIN token, and
//! each service call it makes writes an audit event.

use super::{
    context::ContextExt,
    ids::{self, kinds},
    types::{Device, DevicePlatform},
};
use crate::directory::{DeviceId, UserId, devices};
use async_graphql::{Context, ID, InputObject, Object, Result};

/// A device to register.
#[derive(InputObject)]
pub struct RegisterDeviceInput {
    /// Letters, digits and dashes, up to 64; stored upper-cased and unique.
    pub serial_number: String,
    /// The device's name, up to 128 characters.
    pub name: String,
    pub platform: DevicePlatform,
    /// The hardware model.
    pub model: Option<String>,
    pub os_version: Option<String>,
    /// The email or UPN the person signed in with at enrollment; used for automatic
    /// assignment (R12).
    pub enrollment_identity: Option<String>,
}

/// Every change made through the API. Needs an ADMIN token.
pub struct Mutation;

#[Object]
impl Mutation {
    /// Registers a device, and assigns it automatically when its enrollment identity matches
    /// exactly one active user of an integration that assigns devices automatically (R12).
    async fn register_device(
        &self,
        ctx: &Context<'_>,
        input: RegisterDeviceInput,
    ) -> Result<Device> {
        let admin = ctx.admin()?;
        let new = devices::NewDevice {
            serial_number: input.serial_number,
            name: input.name,
            platform: input.platform.into(),
            model: input.model,
            os_version: input.os_version,
            enrollment_identity: input.enrollment_identity,
        };
        Ok(Device(devices::register(ctx.db(), &admin, new).await?))
    }

    /// Assigns a user to a device, replacing its current user (R11). An archived user cannot
    /// be assigned.
    async fn assign_device_user(
        &self,
        ctx: &Context<'_>,
        device_id: ID,
        user_id: ID,
    ) -> Result<Device> {
        let admin = ctx.admin()?;
        let device = DeviceId(ids::decode(&device_id, kinds::DEVICE, "deviceId")?);
        let user = UserId(ids::decode(&user_id, kinds::USER, "userId")?);
        Ok(Device(
            devices::assign(ctx.db(), &admin, device, user).await?,
        ))
    }

    /// Removes a device's user (R11).
    async fn unassign_device_user(&self, ctx: &Context<'_>, device_id: ID) -> Result<Device> {
        let admin = ctx.admin()?;
        let device = DeviceId(ids::decode(&device_id, kinds::DEVICE, "deviceId")?);
        Ok(Device(devices::unassign(ctx.db(), &admin, device).await?))
    }
}
