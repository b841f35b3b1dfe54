//! `AuditEvent`: one entry of the audit log (who did what to which object, and when).

use crate::graphql::ids;
use async_graphql::{ID, Object};
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

    /// What: the mutation's name, e.g. `renameIntegration`.
    async fn action(&self) -> &str {
        &self.0.action
    }

    /// The type of the object acted on (`Integration`, `Device`, ...), if any.
    async fn target_type(&self) -> Option<&str> {
        self.0.target_type.as_deref()
    }

    /// The global id of the object acted on, if any.
    async fn target_id(&self) -> Option<ID> {
        let kind = self.0.target_type.as_deref()?;
        let id = self.0.target_id.as_deref()?.parse().ok()?;
        Some(ids::encode(kind, id))
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
