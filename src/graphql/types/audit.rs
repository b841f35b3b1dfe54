//! `AuditEvent`: one entry of the audit log (who did what to which object, and when).

use super::{Node, node};
use crate::directory::audit::Action;
use crate::error::DomainError;
use crate::graphql::{
    event_types::{ObjectKind, object_kind},
    ids,
};
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::audit_event;

/// One mutation, as the audit log recorded it in the same transaction as its change.
pub struct AuditEvent(pub audit_event::Model);

/// One mutation, as the audit log recorded it in the same transaction as its change: who,
/// what, on which object, when.
#[Object]
impl AuditEvent {
    /// The event's global id.
    pub async fn id(&self) -> ID {
        ids::encode("AuditEvent", self.0.id)
    }

    /// Who: `token:<id>:<name>` (an API token), `cli`, or `scim:<integration id>`.
    async fn actor(&self) -> &str {
        &self.0.actor
    }

    /// What was done.
    async fn action(&self) -> async_graphql::Result<AuditAction> {
        Action::of(&self.0.action)
            .map(AuditAction::from)
            .ok_or_else(|| DomainError::internal(UnknownAction(self.0.action.clone())).into())
    }

    /// The kind of object acted on, if any.
    async fn target_type(&self) -> async_graphql::Result<Option<ObjectKind>> {
        self.0.target_type.as_deref().map(object_kind).transpose()
    }

    /// The global id of the object acted on, if any.
    async fn target_id(&self) -> Option<ID> {
        let kind = self.0.target_type.as_deref()?;
        let id = self.0.target_id.as_deref()?.parse().ok()?;
        Some(ids::encode(kind, id))
    }

    /// The object acted on, while it exists; null when the action names none, once the
    /// object is deleted (`targetId` still names it), or for an API token (not an object of
    /// this API).
    async fn target(&self, ctx: &Context<'_>) -> Result<Option<Node>> {
        let kind = self.0.target_type.as_deref();
        let id = self.0.target_id.as_deref().and_then(|id| id.parse().ok());
        let Some(key) = kind.zip(id).and_then(|(kind, id)| node::key_of(kind, id)) else {
            return Ok(None);
        };
        Ok(node::load(ctx, key).await?)
    }

    /// What changed, as a JSON document (text); null when the action carries no details.
    async fn details(&self) -> Option<&str> {
        self.0.details.as_deref()
    }

    /// When.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// What an audit event records.
#[derive(async_graphql::Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    /// An integration was added.
    AddIntegration,
    /// An admin assigned a user to a device.
    AssignDeviceUser,
    /// A device was assigned automatically by its enrollment identity.
    AutoAssignDevice,
    /// A sign-in to a directory finished (or was refused).
    CompleteAuthorization,
    /// A held sync run was confirmed.
    ConfirmSyncRun,
    /// An API token was made.
    CreateToken,
    /// A webhook endpoint was added.
    CreateWebhookEndpoint,
    /// An integration was deleted.
    DeleteIntegration,
    /// A webhook endpoint was deleted.
    DeleteWebhookEndpoint,
    /// A new sign-in was started for an integration.
    ReauthenticateIntegration,
    /// A device was registered.
    RegisterDevice,
    /// An integration was renamed.
    RenameIntegration,
    /// An API token was revoked.
    RevokeToken,
    /// A SCIM integration's token was replaced.
    RotateScimToken,
    /// A webhook endpoint's secret was replaced.
    RotateWebhookSecret,
    /// A sync was requested.
    SyncIntegration,
    /// A device's user was removed.
    UnassignDeviceUser,
    /// What an integration imports (its scope) changed.
    UpdateIntegrationScope,
    /// An integration's settings changed.
    UpdateIntegrationSettings,
    /// A webhook endpoint changed.
    UpdateWebhookEndpoint,
}

impl From<Action> for AuditAction {
    fn from(action: Action) -> Self {
        match action {
            Action::AddIntegration => Self::AddIntegration,
            Action::AssignDeviceUser => Self::AssignDeviceUser,
            Action::AutoAssignDevice => Self::AutoAssignDevice,
            Action::CompleteAuthorization => Self::CompleteAuthorization,
            Action::ConfirmSyncRun => Self::ConfirmSyncRun,
            Action::CreateToken => Self::CreateToken,
            Action::CreateWebhookEndpoint => Self::CreateWebhookEndpoint,
            Action::DeleteIntegration => Self::DeleteIntegration,
            Action::DeleteWebhookEndpoint => Self::DeleteWebhookEndpoint,
            Action::ReauthenticateIntegration => Self::ReauthenticateIntegration,
            Action::RegisterDevice => Self::RegisterDevice,
            Action::RenameIntegration => Self::RenameIntegration,
            Action::RevokeToken => Self::RevokeToken,
            Action::RotateScimToken => Self::RotateScimToken,
            Action::RotateWebhookSecret => Self::RotateWebhookSecret,
            Action::SyncIntegration => Self::SyncIntegration,
            Action::UnassignDeviceUser => Self::UnassignDeviceUser,
            Action::UpdateIntegrationScope => Self::UpdateIntegrationScope,
            Action::UpdateIntegrationSettings => Self::UpdateIntegrationSettings,
            Action::UpdateWebhookEndpoint => Self::UpdateWebhookEndpoint,
        }
    }
}

impl From<AuditAction> for Action {
    fn from(action: AuditAction) -> Self {
        match action {
            AuditAction::AddIntegration => Self::AddIntegration,
            AuditAction::AssignDeviceUser => Self::AssignDeviceUser,
            AuditAction::AutoAssignDevice => Self::AutoAssignDevice,
            AuditAction::CompleteAuthorization => Self::CompleteAuthorization,
            AuditAction::ConfirmSyncRun => Self::ConfirmSyncRun,
            AuditAction::CreateToken => Self::CreateToken,
            AuditAction::CreateWebhookEndpoint => Self::CreateWebhookEndpoint,
            AuditAction::DeleteIntegration => Self::DeleteIntegration,
            AuditAction::DeleteWebhookEndpoint => Self::DeleteWebhookEndpoint,
            AuditAction::ReauthenticateIntegration => Self::ReauthenticateIntegration,
            AuditAction::RegisterDevice => Self::RegisterDevice,
            AuditAction::RenameIntegration => Self::RenameIntegration,
            AuditAction::RevokeToken => Self::RevokeToken,
            AuditAction::RotateScimToken => Self::RotateScimToken,
            AuditAction::RotateWebhookSecret => Self::RotateWebhookSecret,
            AuditAction::SyncIntegration => Self::SyncIntegration,
            AuditAction::UnassignDeviceUser => Self::UnassignDeviceUser,
            AuditAction::UpdateIntegrationScope => Self::UpdateIntegrationScope,
            AuditAction::UpdateIntegrationSettings => Self::UpdateIntegrationSettings,
            AuditAction::UpdateWebhookEndpoint => Self::UpdateWebhookEndpoint,
        }
    }
}

/// A stored audit event of an action this version does not know (written by a newer one).
#[derive(Debug, thiserror::Error)]
#[error("an audit event of unknown action `{0}`")]
struct UnknownAction(String);
