//! The `Mutation` root: every change made through the API. Each needs an ADMIN token, and
//! each service call it makes writes an audit event.

use super::types::SyncRun;
use super::{
    context::ContextExt,
    ids::{self, kinds},
    types::{Device, DevicePlatform, DirectoryKind, Integration},
};
use crate::{
    directory::{
        DeviceId, IntegrationId, SyncRunId, UserId, connect, devices, integrations, scim_tokens,
    },
    sync::SyncHandle,
};
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use entity::enums::SyncTrigger;

/// An integration to add.
#[derive(InputObject)]
pub struct AddIntegrationInput {
    /// ENTRA_ID, GOOGLE_WORKSPACE or SCIM.
    pub kind: DirectoryKind,
    /// Unique among integrations, case-insensitively; 1–64 characters (R3).
    pub name: String,
    /// Assign devices to this integration's users by enrollment identity (R12). Default false.
    pub auto_assign_devices: Option<bool>,
    /// This integration's own sync interval, 15–43200 minutes. Default: the deployment's.
    pub sync_interval_minutes: Option<i32>,
}

/// The added integration, and where its directory admin signs in.
#[derive(SimpleObject)]
pub struct AddIntegrationPayload {
    /// The new integration, AWAITING_CONSENT.
    pub integration: Integration,
    /// Entra ID and Google Workspace: open this URL in a browser, where the directory admin
    /// signs in and consents (R4). It works once, for ten minutes.
    pub authorization_url: Option<String>,
    /// SCIM: the base URL to give the directory's provisioning app.
    pub scim_base_url: Option<String>,
    /// SCIM: the bearer token for that app. Shown this once: only a hash is kept (R13).
    pub scim_token: Option<String>,
}

/// A SCIM integration's new token.
#[derive(SimpleObject)]
pub struct RotateScimTokenPayload {
    pub integration: Integration,
    /// The new bearer token, shown this once; the old one no longer works.
    pub scim_token: String,
}

/// What the provider sent back to the redirect URI; the same as `GET /oauth/callback`.
#[derive(InputObject)]
pub struct CompleteAuthorizationInput {
    /// The `state` parameter.
    pub state: String,
    /// The authorization code, on success.
    pub code: Option<String>,
    /// The error, on failure (`consent_required`, `access_denied`, ...).
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// Microsoft's `error_subcode` (`cancel` when the user cancelled).
    pub error_subcode: Option<String>,
}

/// Where to sign in again.
#[derive(SimpleObject)]
pub struct ReauthenticatePayload {
    /// The integration, unchanged until the new sign-in completes (R8).
    pub integration: Integration,
    /// Open this URL in a browser to sign in again; it works once, for ten minutes.
    pub authorization_url: String,
}

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

/// Settings to change; a field left out stays as it is.
#[derive(InputObject)]
pub struct IntegrationSettingsInput {
    pub id: ID,
    /// Assign devices to this integration's users by enrollment identity (R12).
    pub auto_assign_devices: Option<bool>,
    /// 15–43200 minutes; null goes back to the deployment's interval.
    pub sync_interval_minutes: async_graphql::MaybeUndefined<i32>,
}

/// Which integration to delete, and its name typed to confirm (R9).
#[derive(InputObject)]
pub struct DeleteIntegrationInput {
    pub id: ID,
    /// The integration's name, exactly (trimmed, case-sensitive).
    pub confirm_name: String,
}

/// What deleting an integration did.
#[derive(SimpleObject)]
pub struct DeleteIntegrationPayload {
    pub deleted_integration_id: ID,
    /// Users without a device, deleted.
    pub users_removed: i64,
    /// Users with a device, kept as archived users.
    pub users_retained: i64,
}

/// The changes of the directory (the `Mutation` root merges them with the webhooks').
#[derive(Default)]
pub struct DirectoryMutation;

#[Object]
impl DirectoryMutation {
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
        Ok(Device::new(devices::register(ctx.db(), &admin, new).await?))
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
        Ok(Device::new(
            devices::assign(ctx.db(), &admin, device, user).await?,
        ))
    }

    /// Adds an Entra ID or Google Workspace integration and returns the URL where a directory
    /// admin signs in and consents (R4).
    async fn add_integration(
        &self,
        ctx: &Context<'_>,
        input: AddIntegrationInput,
    ) -> Result<AddIntegrationPayload> {
        let admin = ctx.admin()?;
        let new = connect::NewIntegration {
            kind: input.kind.into(),
            name: input.name,
            auto_assign_devices: input.auto_assign_devices.unwrap_or(false),
            sync_interval_minutes: input.sync_interval_minutes,
        };
        if new.kind == entity::enums::DirectoryKind::Scim {
            let (model, token) =
                scim_tokens::add(ctx.db(), &admin, &new.name, new.auto_assign_devices).await?;
            return Ok(AddIntegrationPayload {
                scim_base_url: Some(scim_tokens::base_url(&ctx.config().public_url(), model.id)),
                scim_token: Some(token),
                integration: Integration(model),
                authorization_url: None,
            });
        }
        let services = ctx.services();
        let (model, url) = connect::add(ctx.db(), &admin, &services.oauth(), new).await?;
        Ok(AddIntegrationPayload {
            integration: Integration(model),
            authorization_url: Some(url),
            scim_base_url: None,
            scim_token: None,
        })
    }

    /// Replaces a SCIM integration's bearer token; the old token stops working at once (R13).
    async fn rotate_scim_token(&self, ctx: &Context<'_>, id: ID) -> Result<RotateScimTokenPayload> {
        let admin = ctx.admin()?;
        let id = IntegrationId(ids::decode(&id, kinds::INTEGRATION, "id")?);
        let (model, token) = scim_tokens::rotate(ctx.db(), &admin, id).await?;
        Ok(RotateScimTokenPayload {
            integration: Integration(model),
            scim_token: token,
        })
    }

    /// Finishes a sign-in with what the provider sent to the redirect URI (for front ends
    /// that receive the redirect themselves; dirgate's own `/oauth/callback` does the same).
    async fn complete_authorization(
        &self,
        ctx: &Context<'_>,
        input: CompleteAuthorizationInput,
    ) -> Result<Integration> {
        let admin = ctx.admin()?;
        let callback = connect::Callback {
            state: input.state,
            code: input.code,
            error: input.error,
            error_description: input.error_description,
            error_subcode: input.error_subcode,
        };
        let services = ctx.services();
        let model = connect::complete(ctx.db(), admin.actor(), &services.oauth(), callback).await?;
        ctx.data_unchecked::<SyncHandle>().authorized(&model).await;
        Ok(Integration(model))
    }

    /// Starts a new sign-in for an integration, possibly with another admin account or other
    /// permissions; its users, groups and assignments stay, and the new grant replaces the
    /// old one only when the sign-in succeeds (R8).
    async fn reauthenticate_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<ReauthenticatePayload> {
        let admin = ctx.admin()?;
        let id = IntegrationId(ids::decode(&id, kinds::INTEGRATION, "id")?);
        let services = ctx.services();
        let (model, url) = connect::reauthenticate(ctx.db(), &admin, &services.oauth(), id).await?;
        Ok(ReauthenticatePayload {
            integration: Integration(model),
            authorization_url: url,
        })
    }

    /// Syncs an Entra ID or Google Workspace integration now (R6). Returns the run, or the one
    /// already queued or running. A SCIM integration is refused with PUSH_ONLY_INTEGRATION; one
    /// that needs re-authentication with NEEDS_REAUTH.
    async fn sync_integration(&self, ctx: &Context<'_>, id: ID) -> Result<SyncRun> {
        let admin = ctx.admin()?;
        let id = IntegrationId(ids::decode(&id, kinds::INTEGRATION, "id")?);
        let run = ctx
            .data_unchecked::<SyncHandle>()
            .request(id, SyncTrigger::Manual)
            .await?;
        crate::directory::audit::record(
            ctx.db(),
            admin.actor(),
            "syncIntegration",
            Some(crate::directory::audit::Target::new("SyncRun", run.id)),
            serde_json::json!({ "integrationId": id.0 }),
        )
        .await?;
        Ok(SyncRun(run))
    }

    /// Applies a HELD sync run: the directory is read again and removals past the safety
    /// threshold are applied (R15).
    async fn confirm_sync_run(&self, ctx: &Context<'_>, id: ID) -> Result<SyncRun> {
        let admin = ctx.admin()?;
        let id = SyncRunId(ids::decode(&id, kinds::SYNC_RUN, "id")?);
        let run = ctx.data_unchecked::<SyncHandle>().confirm(id).await?;
        crate::directory::audit::record(
            ctx.db(),
            admin.actor(),
            "confirmSyncRun",
            Some(crate::directory::audit::Target::new("SyncRun", run.id)),
            serde_json::Value::Null,
        )
        .await?;
        Ok(SyncRun(run))
    }

    /// Renames an integration; its users show the new name as their origin (R3).
    async fn rename_integration(
        &self,
        ctx: &Context<'_>,
        id: ID,
        name: String,
    ) -> Result<Integration> {
        let admin = ctx.admin()?;
        let id = IntegrationId(ids::decode(&id, kinds::INTEGRATION, "id")?);
        Ok(Integration(
            integrations::rename(ctx.db(), &admin, id, &name).await?,
        ))
    }

    /// Changes an integration's settings; a field left out stays as it is.
    async fn update_integration_settings(
        &self,
        ctx: &Context<'_>,
        input: IntegrationSettingsInput,
    ) -> Result<Integration> {
        let admin = ctx.admin()?;
        let id = IntegrationId(ids::decode(&input.id, kinds::INTEGRATION, "id")?);
        let settings = integrations::Settings {
            auto_assign_devices: input.auto_assign_devices,
            sync_interval_minutes: match input.sync_interval_minutes {
                async_graphql::MaybeUndefined::Undefined => None,
                async_graphql::MaybeUndefined::Null => Some(None),
                async_graphql::MaybeUndefined::Value(v) => Some(Some(v)),
            },
        };
        Ok(Integration(
            integrations::update_settings(
                ctx.db(),
                &admin,
                id,
                settings,
                ctx.config().sync_interval_minutes,
            )
            .await?,
        ))
    }

    /// Deletes an integration once its name is typed exactly (R9): its users without a device
    /// and its groups go; users with a device stay, archived, keeping the integration's name
    /// as their origin. A sync in flight is cancelled first.
    async fn delete_integration(
        &self,
        ctx: &Context<'_>,
        input: DeleteIntegrationInput,
    ) -> Result<DeleteIntegrationPayload> {
        let admin = ctx.admin()?;
        let id = IntegrationId(ids::decode(&input.id, kinds::INTEGRATION, "id")?);
        // Check before cancelling a sync: a mistyped name must change nothing.
        integrations::check_confirmation(
            &integrations::get(ctx.db(), id).await?,
            &input.confirm_name,
        )?;
        ctx.data_unchecked::<SyncHandle>().cancel(id).await?;
        let deleted = integrations::delete(ctx.db(), &admin, id, &input.confirm_name).await?;
        Ok(DeleteIntegrationPayload {
            deleted_integration_id: input.id,
            users_removed: deleted.users_removed as i64,
            users_retained: deleted.users_retained as i64,
        })
    }

    /// Removes a device's user (R11).
    async fn unassign_device_user(&self, ctx: &Context<'_>, device_id: ID) -> Result<Device> {
        let admin = ctx.admin()?;
        let device = DeviceId(ids::decode(&device_id, kinds::DEVICE, "deviceId")?);
        Ok(Device::new(
            devices::unassign(ctx.db(), &admin, device).await?,
        ))
    }
}
