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

/// Writes one audit event.
pub async fn record(
    db: &impl Db,
    actor: &Actor,
    action: &str,
    target: Option<Target>,
    details: serde_json::Value,
) -> DomainResult<()> {
    let event = audit_event::ActiveModel {
        actor: Set(actor.label()),
        actor_token_id: Set(actor.token_id()),
        action: Set(action.to_owned()),
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
