//! The audit log: every mutation writes who did what to which object, in the same transaction
//! as the change itself, so a change and its record land together or not at all.

use crate::store::{
    self, Db,
    page::{Page, PageArgs},
};
use crate::{
    auth::Actor,
    error::{DomainError, DomainResult},
};
use entity::audit_event;
use sea_orm::Set;

pub use crate::store::audit::AuditFilter;

/// What an audit event is about: the object's type name and database id.
#[derive(Debug, Clone)]
pub struct Target {
    pub kind: &'static str,
    pub id: i64,
}

impl Target {
    pub fn new(kind: &'static str, id: i64) -> Self {
        Self { kind, id }
    }
}

/// What an audit event records: the change's name (a mutation's, or `autoAssignDevice`).
macro_rules! actions {
    ($($variant:ident => $wire:literal),* $(,)?) => {
        /// The changes the audit log records, each stored by its name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action { $($variant),* }

        impl Action {
            /// Every action.
            pub const ALL: &[Action] = &[$(Self::$variant),*];

            /// The stored name (`renameIntegration`).
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $wire),* }
            }

            /// The action stored as `name`, if it is one.
            pub fn of(name: &str) -> Option<Self> {
                match name { $($wire => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

actions!(
    AddIntegration => "addIntegration",
    AssignDeviceUser => "assignDeviceUser",
    AutoAssignDevice => "autoAssignDevice",
    CompleteAuthorization => "completeAuthorization",
    ConfirmSyncRun => "confirmSyncRun",
    CreateToken => "createToken",
    CreateWebhookEndpoint => "createWebhookEndpoint",
    DeleteIntegration => "deleteIntegration",
    DeleteWebhookEndpoint => "deleteWebhookEndpoint",
    ReauthenticateIntegration => "reauthenticateIntegration",
    RegisterDevice => "registerDevice",
    RenameIntegration => "renameIntegration",
    RevokeToken => "revokeToken",
    RotateScimToken => "rotateScimToken",
    RotateWebhookSecret => "rotateWebhookSecret",
    SyncIntegration => "syncIntegration",
    UnassignDeviceUser => "unassignDeviceUser",
    UpdateIntegrationScope => "updateIntegrationScope",
    UpdateIntegrationSettings => "updateIntegrationSettings",
    UpdateWebhookEndpoint => "updateWebhookEndpoint",
);

/// Writes one audit event.
pub async fn record(
    db: &impl Db,
    actor: &Actor,
    action: Action,
    target: Option<Target>,
    details: serde_json::Value,
) -> DomainResult<()> {
    let event = audit_event::ActiveModel {
        actor: Set(actor.label()),
        actor_token_id: Set(actor.token_id()),
        action: Set(action.as_str().to_owned()),
        target_type: Set(target.as_ref().map(|t| t.kind.to_owned())),
        target_id: Set(target.as_ref().map(|t| t.id.to_string())),
        details: Set((!details.is_null()).then(|| details.to_string())),
        created_at: Set(super::now()),
        ..Default::default()
    };
    Ok(store::audit::insert(db, event).await?)
}

/// The longest action name a filter may carry (actions are mutation names).
const MAX_ACTION_CHARS: usize = 64;

fn check(filter: &AuditFilter) -> DomainResult<()> {
    match &filter.action {
        Some(action) if action.chars().count() > MAX_ACTION_CHARS => Err(DomainError::invalid(
            "filter.action",
            format!("at most {MAX_ACTION_CHARS} characters"),
        )),
        _ => Ok(()),
    }
}

/// A page of audit events, newest first.
pub async fn list(
    db: &impl Db,
    filter: &AuditFilter,
    args: PageArgs,
) -> DomainResult<Page<audit_event::Model>> {
    check(filter)?;
    store::audit::list(db, filter, args).await
}

/// How many audit events match.
pub async fn count(db: &impl Db, filter: &AuditFilter) -> DomainResult<u64> {
    check(filter)?;
    store::audit::count(db, filter).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_stored_and_read_back_by_its_name() {
        assert_eq!(Action::ALL.len(), 20);
        for action in Action::ALL {
            assert_eq!(Action::of(action.as_str()), Some(*action));
        }
        assert_eq!(
            Action::of("renameIntegration"),
            Some(Action::RenameIntegration)
        );
        assert_eq!(Action::of("dropTables"), None);
    }
}
