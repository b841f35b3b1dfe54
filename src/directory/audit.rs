//! The audit log: every mutation writes who did what to which object, in the same transaction
//! as the change itself, so a change and its record land together or not at all.

use crate::store::page::{self, Direction, Page, PageArgs};
use crate::{
    auth::Actor,
    error::{DomainError, DomainResult},
};
use entity::audit_event;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select, Set,
};

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

/// Which audit events to list; every condition given must hold.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The action (a mutation's name, e.g. `renameIntegration`).
    pub action: Option<String>,
    /// The target: its type name and database id.
    pub target: Option<(String, i64)>,
    /// Only events at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// The longest action name a filter may carry (actions are mutation names).
const MAX_ACTION_CHARS: usize = 64;

fn select(filter: &AuditFilter) -> DomainResult<Select<audit_event::Entity>> {
    use audit_event::Column as C;
    let mut query = audit_event::Entity::find();
    if let Some(action) = &filter.action {
        if action.chars().count() > MAX_ACTION_CHARS {
            return Err(DomainError::invalid(
                "filter.action",
                format!("at most {MAX_ACTION_CHARS} characters"),
            ));
        }
        query = query.filter(C::Action.eq(action.as_str()));
    }
    if let Some((kind, id)) = &filter.target {
        query = query
            .filter(C::TargetType.eq(kind.as_str()))
            .filter(C::TargetId.eq(id.to_string()));
    }
    if let Some(since) = filter.since {
        query = query.filter(C::CreatedAt.gte(since));
    }
    Ok(query)
}

/// A page of audit events, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: &AuditFilter,
    args: PageArgs,
) -> DomainResult<Page<audit_event::Model>> {
    page::fetch(
        db,
        select(filter)?,
        audit_event::Column::Id,
        args,
        Direction::Desc,
    )
    .await
}

/// How many audit events match.
pub async fn count<C: ConnectionTrait>(db: &C, filter: &AuditFilter) -> DomainResult<u64> {
    page::count(db, select(filter)?).await
}
