//! The audit log: every mutation writes who did what to which object, in the same transaction
//! as the change itself, so a change and its record land together or not at all.

use crate::{auth::Actor, error::DomainResult};
use entity::audit_event;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Set};

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

/// Writes one audit event.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    actor: &Actor,
    action: &str,
    target: Option<Target>,
    details: serde_json::Value,
) -> DomainResult<()> {
    audit_event::ActiveModel {
        actor: Set(actor.label()),
        actor_token_id: Set(actor.token_id()),
        action: Set(action.to_owned()),
        target_type: Set(target.as_ref().map(|t| t.kind.to_owned())),
        target_id: Set(target.as_ref().map(|t| t.id.to_string())),
        details: Set((!details.is_null()).then(|| details.to_string())),
        created_at: Set(super::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
