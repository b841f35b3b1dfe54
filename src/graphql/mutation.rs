//! The `Mutation` root: every change made through the API. Each needs an ADMIN token, and
//! each service call it makes writes an audit event. Every mutation takes one `input` and
//! answers a nullable payload with `userErrors` (`payload.rs` says which errors go there).

use super::types::SyncRun;
use super::{
    context::ContextExt,
    ids::{self, kinds},
    payload::{answer, payload},
    types::{Device, DevicePlatform, DirectoryKind, Integration},
};
use crate::{
    directory::{
        DeviceId, IntegrationId, SyncRunId, UserId, connect, devices, integrations, scim_tokens,
    },
    error::DomainResult,
    sync::SyncHandle,
};
use async_graphql::{Context, ID, InputObject, Object, Result};
use entity::enums::SyncTrigger;

/// An integration to add.
#[derive(InputObject)]
pub struct AddIntegrationInput {
    /// ENTRA_ID, GOOGLE_WORKSPACE or SCIM.
    pub kind: DirectoryKind,
    /// Unique among integrations, case-insensitively; 1–64 characters.
    pub name: String,
    /// Assign devices to this integration's users by enrollment identity. Default false.
    pub auto_assign_devices: Option<bool>,
    /// This integration's own sync interval, 15–43200 minutes. Default: the deployment's.
    pub sync_interval_minutes: Option<i32>,
    /// Entra ID and Google Workspace: what it imports. Default: its whole directory (ALL).
    pub scope: Option<super::scope::ScopeInput>,
    /// Entra ID and Google Workspace: after the sign-in, wait (AWAITING_SCOPE) for an admin
    /// to choose what it imports, reading the directory's groups (`directoryGroups`) and org
    /// units (`directoryOrgUnits`) to choose among; nothing is imported until then. Not with
    /// `scope`. Default false.
    pub choose_scope: Option<bool>,
}

payload!(
    /// The added integration, and where its directory admin signs in (null when refused).
    AddIntegrationPayload {
        /// The new integration: AWAITING_CONSENT (Entra ID, Google Workspace) or ACTIVE (SCIM).
        integration: Integration,
        /// Entra ID and Google Workspace: open this URL in a browser, where the directory
        /// admin signs in and consents. It works once, for ten minutes.
        authorization_url: String,
        /// SCIM: the base URL to give the directory's provisioning app.
        scim_base_url: String,
        /// SCIM: the bearer token for that app. Shown this once: only a hash is kept.
        scim_token: String,
    }
);

/// The SCIM integration whose token to replace.
#[derive(InputObject)]
pub struct RotateScimTokenInput {
    /// The integration's id.
    pub id: ID,
}

payload!(
    /// A SCIM integration's new token (null when refused).
    RotateScimTokenPayload {
        /// The integration, with its new token's hint.
        integration: Integration,
        /// The new bearer token, shown this once; the old one no longer works.
        scim_token: String,
    }
);

/// What the provider sent back to the redirect URI; the same as `GET /oauth/callback`.
#[derive(InputObject)]
pub struct CompleteAuthorizationInput {
    /// The `state` parameter.
    pub state: String,
    /// The authorization code, on success.
    pub code: Option<String>,
    /// The error, on failure (`consent_required`, `access_denied`, ...).
    pub error: Option<String>,
    /// The provider's description of the error, shown in the integration's status reason.
    pub error_description: Option<String>,
    /// Microsoft's `error_subcode` (`cancel` when the user cancelled).
    pub error_subcode: Option<String>,
}

payload!(
    /// The integration a sign-in finished for (null when refused).
    CompleteAuthorizationPayload {
        /// ACTIVE with its grant, or AWAITING_ADMIN_APPROVAL when consent is missing.
        integration: Integration,
    }
);

/// The integration to sign in to again.
#[derive(InputObject)]
pub struct ReauthenticateIntegrationInput {
    /// The integration's id (Entra ID or Google Workspace).
    pub id: ID,
}

payload!(
    /// Where to sign in again (null when refused).
    ReauthenticateIntegrationPayload {
        /// The integration, unchanged until the new sign-in completes.
        integration: Integration,
        /// Open this URL in a browser to sign in again; it works once, for ten minutes.
        authorization_url: String,
    }
);

/// A device to register.
#[derive(InputObject)]
pub struct RegisterDeviceInput {
    /// Letters, digits and dashes, up to 64; stored upper-cased and unique.
    pub serial_number: String,
    /// The device's name, up to 128 characters.
    pub name: String,
    /// The device's operating system family.
    pub platform: DevicePlatform,
    /// The hardware model, up to 128 characters.
    pub model: Option<String>,
    /// The operating system's version, up to 64 characters.
    pub os_version: Option<String>,
    /// The email or UPN the person signed in with at enrollment; used for automatic
    /// assignment.
    pub enrollment_identity: Option<String>,
}

payload!(
    /// The registered device (null when refused).
    RegisterDevicePayload {
        /// The device, with its user when it was assigned automatically.
        device: Device,
    }
);

/// Which user to give a device.
#[derive(InputObject)]
pub struct AssignDeviceUserInput {
    /// The device's id.
    pub device_id: ID,
    /// The user's id; an archived user cannot be assigned.
    pub user_id: ID,
}

payload!(
    /// The device with its new user (null when refused).
    AssignDeviceUserPayload {
        /// The device, assigned MANUAL.
        device: Device,
    }
);

/// Which device to take its user from.
#[derive(InputObject)]
pub struct UnassignDeviceUserInput {
    /// The device's id.
    pub device_id: ID,
}

payload!(
    /// The device without its user (null when refused).
    UnassignDeviceUserPayload {
        /// The device, now without a user.
        device: Device,
    }
);

/// The integration to sync now.
#[derive(InputObject)]
pub struct SyncIntegrationInput {
    /// The integration's id (Entra ID or Google Workspace).
    pub id: ID,
}

payload!(
    /// The sync run started, or the one already queued or running (null when refused).
    SyncIntegrationPayload {
        /// The run: QUEUED or RUNNING.
        sync_run: SyncRun,
    }
);

/// The held sync run to apply.
#[derive(InputObject)]
pub struct ConfirmSyncRunInput {
    /// The run's id; it must be HELD and its integration's newest run.
    pub id: ID,
}

payload!(
    /// The confirmed run, queued again (null when refused).
    ConfirmSyncRunPayload {
        /// The run: QUEUED, to read the directory again and apply its removals.
        sync_run: SyncRun,
    }
);

/// An integration's new name.
#[derive(InputObject)]
pub struct RenameIntegrationInput {
    /// The integration's id.
    pub id: ID,
    /// Unique among integrations, case-insensitively; 1–64 characters.
    pub name: String,
}

payload!(
    /// The renamed integration (null when refused).
    RenameIntegrationPayload {
        /// The integration with its new name; its users show it as their origin.
        integration: Integration,
    }
);

/// Settings to change; a field left out stays as it is.
#[derive(InputObject)]
pub struct UpdateIntegrationSettingsInput {
    /// The integration's id.
    pub id: ID,
    /// Assign devices to this integration's users by enrollment identity.
    pub auto_assign_devices: Option<bool>,
    /// 15–43200 minutes; null goes back to the deployment's interval.
    pub sync_interval_minutes: async_graphql::MaybeUndefined<i32>,
}

payload!(
    /// The integration with its new settings (null when refused).
    UpdateIntegrationSettingsPayload {
        /// The integration; a new interval counts from its last sync.
        integration: Integration,
    }
);

/// Which integration to delete, and its name typed to confirm.
#[derive(InputObject)]
pub struct DeleteIntegrationInput {
    /// The integration's id.
    pub id: ID,
    /// The integration's name, exactly (trimmed, case-sensitive).
    pub confirm_name: String,
}

payload!(
    /// What deleting an integration did (null fields when refused).
    DeleteIntegrationPayload {
        /// The deleted integration's id.
        deleted_integration_id: ID,
        /// Users without a device, deleted.
        users_removed: i64,
        /// Users with a device, kept as archived users.
        users_retained: i64,
    }
);

/// The changes of the directory (the `Mutation` root merges them with the webhooks').
#[derive(Default)]
pub struct DirectoryMutation;

fn integration_id(id: &ID) -> DomainResult<IntegrationId> {
    Ok(IntegrationId(ids::decode(id, kinds::INTEGRATION, "id")?))
}

#[Object]
impl DirectoryMutation {
    /// Registers a device, and assigns it automatically when its enrollment identity matches
    /// exactly one active user of an integration that assigns devices automatically.
    async fn register_device(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: RegisterDeviceInput,
    ) -> Result<Option<RegisterDevicePayload>> {
        let admin = ctx.admin()?;
        let new = devices::NewDevice {
            serial_number: input.serial_number,
            name: input.name,
            platform: input.platform.into(),
            model: input.model,
            os_version: input.os_version,
            enrollment_identity: input.enrollment_identity,
        };
        answer(
            devices::register(ctx.db(), &admin, new)
                .await
                .map(|model| RegisterDevicePayload {
                    device: Some(Device::new(model)),
                    ..Default::default()
                }),
        )
    }

    /// Assigns a user to a device, replacing its current user. An archived user cannot be
    /// assigned.
    async fn assign_device_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: AssignDeviceUserInput,
    ) -> Result<Option<AssignDeviceUserPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let device = DeviceId(ids::decode(&input.device_id, kinds::DEVICE, "deviceId")?);
                let user = UserId(ids::decode(&input.user_id, kinds::USER, "userId")?);
                let model = devices::assign(ctx.db(), &admin, device, user).await?;
                Ok(AssignDeviceUserPayload {
                    device: Some(Device::new(model)),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Removes a device's user.
    async fn unassign_device_user(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: UnassignDeviceUserInput,
    ) -> Result<Option<UnassignDeviceUserPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let device = DeviceId(ids::decode(&input.device_id, kinds::DEVICE, "deviceId")?);
                let model = devices::unassign(ctx.db(), &admin, device).await?;
                Ok(UnassignDeviceUserPayload {
                    device: Some(Device::new(model)),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Adds an integration. Entra ID and Google Workspace: returns the URL where a directory
    /// admin signs in and consents. SCIM: returns its base URL and bearer token.
    async fn add_integration(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: AddIntegrationInput,
    ) -> Result<Option<AddIntegrationPayload>> {
        let admin = ctx.admin()?;
        let scim_scope = input.scope.is_some() || input.choose_scope == Some(true);
        let new = connect::NewIntegration {
            kind: input.kind.into(),
            name: input.name,
            auto_assign_devices: input.auto_assign_devices.unwrap_or(false),
            sync_interval_minutes: input.sync_interval_minutes,
            scope: input.scope.map(|s| s.domain()).unwrap_or_default(),
            choose_scope: input.choose_scope.unwrap_or(false),
        };
        answer(
            async {
                if new.kind == entity::enums::DirectoryKind::Scim {
                    if scim_scope {
                        return Err(crate::error::DomainError::invalid(
                            "scope",
                            "a SCIM integration imports what its provider pushes (assign users and groups there)",
                        ));
                    }
                    let (model, token) =
                        scim_tokens::add(ctx.db(), &admin, &new.name, new.auto_assign_devices)
                            .await?;
                    let base = scim_tokens::base_url(&ctx.config().public_url(), model.id);
                    return Ok(AddIntegrationPayload {
                        scim_base_url: Some(base),
                        scim_token: Some(token),
                        integration: Some(Integration(model)),
                        ..Default::default()
                    });
                }
                let services = ctx.services();
                let (model, url) = connect::add(ctx.db(), &admin, &services.oauth(), new).await?;
                Ok(AddIntegrationPayload {
                    integration: Some(Integration(model)),
                    authorization_url: Some(url),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Replaces a SCIM integration's bearer token; the old token stops working at once.
    async fn rotate_scim_token(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: RotateScimTokenInput,
    ) -> Result<Option<RotateScimTokenPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let (model, token) =
                    scim_tokens::rotate(ctx.db(), &admin, integration_id(&input.id)?).await?;
                Ok(RotateScimTokenPayload {
                    integration: Some(Integration(model)),
                    scim_token: Some(token),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Finishes a sign-in with what the provider sent to the redirect URI (for front ends
    /// that receive the redirect themselves; dirgate's own `/oauth/callback` does the same).
    async fn complete_authorization(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: CompleteAuthorizationInput,
    ) -> Result<Option<CompleteAuthorizationPayload>> {
        let admin = ctx.admin()?;
        let callback = connect::Callback {
            state: input.state,
            code: input.code,
            error: input.error,
            error_description: input.error_description,
            error_subcode: input.error_subcode,
        };
        let services = ctx.services();
        let oauth = services.oauth();
        let completed = connect::complete(ctx.db(), admin.actor(), &oauth, callback).await;
        if let Ok(model) = &completed {
            ctx.data_unchecked::<SyncHandle>().authorized(model).await;
        }
        answer(completed.map(|model| CompleteAuthorizationPayload {
            integration: Some(Integration(model)),
            ..Default::default()
        }))
    }

    /// Starts a new sign-in for an integration, possibly with another admin account or other
    /// permissions; its users, groups and assignments stay, and the new grant replaces the
    /// old one only when the sign-in succeeds.
    async fn reauthenticate_integration(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")]
        input: ReauthenticateIntegrationInput,
    ) -> Result<Option<ReauthenticateIntegrationPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let id = integration_id(&input.id)?;
                let services = ctx.services();
                let (model, url) =
                    connect::reauthenticate(ctx.db(), &admin, &services.oauth(), id).await?;
                Ok(ReauthenticateIntegrationPayload {
                    integration: Some(Integration(model)),
                    authorization_url: Some(url),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Syncs an Entra ID or Google Workspace integration now. Returns the run, or the one
    /// already queued or running. A SCIM integration is refused with PUSH_ONLY_INTEGRATION;
    /// one that needs re-authentication with NEEDS_REAUTH.
    async fn sync_integration(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: SyncIntegrationInput,
    ) -> Result<Option<SyncIntegrationPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let id = integration_id(&input.id)?;
                let sync = ctx.data_unchecked::<SyncHandle>();
                let run = sync.request(id, SyncTrigger::Manual).await?;
                crate::directory::audit::record(
                    ctx.db(),
                    admin.actor(),
                    crate::directory::audit::Action::SyncIntegration,
                    Some(crate::directory::audit::Target::new("SyncRun", run.id)),
                    serde_json::json!({ "integrationId": id.0 }),
                )
                .await?;
                Ok(SyncIntegrationPayload {
                    sync_run: Some(SyncRun(run)),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Applies a HELD sync run: the directory is read again and removals past the safety
    /// threshold are applied.
    async fn confirm_sync_run(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: ConfirmSyncRunInput,
    ) -> Result<Option<ConfirmSyncRunPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let id = SyncRunId(ids::decode(&input.id, kinds::SYNC_RUN, "id")?);
                let run = ctx.data_unchecked::<SyncHandle>().confirm(id).await?;
                crate::directory::audit::record(
                    ctx.db(),
                    admin.actor(),
                    crate::directory::audit::Action::ConfirmSyncRun,
                    Some(crate::directory::audit::Target::new("SyncRun", run.id)),
                    serde_json::Value::Null,
                )
                .await?;
                Ok(ConfirmSyncRunPayload {
                    sync_run: Some(SyncRun(run)),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Renames an integration; its users show the new name as their origin.
    async fn rename_integration(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: RenameIntegrationInput,
    ) -> Result<Option<RenameIntegrationPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let id = integration_id(&input.id)?;
                let model = integrations::rename(ctx.db(), &admin, id, &input.name).await?;
                Ok(RenameIntegrationPayload {
                    integration: Some(Integration(model)),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Changes an integration's settings; a field left out stays as it is.
    async fn update_integration_settings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")]
        input: UpdateIntegrationSettingsInput,
    ) -> Result<Option<UpdateIntegrationSettingsPayload>> {
        let admin = ctx.admin()?;
        let settings = integrations::Settings {
            auto_assign_devices: input.auto_assign_devices,
            sync_interval_minutes: match input.sync_interval_minutes {
                async_graphql::MaybeUndefined::Undefined => None,
                async_graphql::MaybeUndefined::Null => Some(None),
                async_graphql::MaybeUndefined::Value(v) => Some(Some(v)),
            },
        };
        let default_interval = ctx.config().sync_interval_minutes;
        answer(
            async {
                let id = integration_id(&input.id)?;
                let model =
                    integrations::update_settings(ctx.db(), &admin, id, settings, default_interval)
                        .await?;
                Ok(UpdateIntegrationSettingsPayload {
                    integration: Some(Integration(model)),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Deletes an integration once its name is typed exactly: its users without a device and
    /// its groups go; users with a device stay, archived, keeping the integration's name as
    /// their origin. A sync in flight is cancelled first.
    async fn delete_integration(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: DeleteIntegrationInput,
    ) -> Result<Option<DeleteIntegrationPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let id = integration_id(&input.id)?;
                // Check before cancelling a sync: a mistyped name must change nothing.
                let model = integrations::get(ctx.db(), id).await?;
                integrations::check_confirmation(&model, &input.confirm_name)?;
                ctx.data_unchecked::<SyncHandle>().cancel(id).await?;
                let deleted =
                    integrations::delete(ctx.db(), &admin, id, &input.confirm_name).await?;
                Ok(DeleteIntegrationPayload {
                    deleted_integration_id: Some(input.id.clone()),
                    users_removed: Some(deleted.users_removed as i64),
                    users_retained: Some(deleted.users_retained as i64),
                    ..Default::default()
                })
            }
            .await,
        )
    }
}
