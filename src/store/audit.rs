//! `audit_events`: written in the transaction of the change they record, read newest first.

use super::{
    Db,
    page::{self, Direction, Page, PageArgs},
};
use crate::error::DomainResult;
use entity::audit_event;
use sea_orm::{ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Select};

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

/// Writes one audit event.
pub async fn insert(db: &impl Db, event: audit_event::ActiveModel) -> Result<(), DbErr> {
    event.insert(db).await.map(drop)
}

fn select(filter: &AuditFilter) -> Select<audit_event::Entity> {
    use audit_event::Column as C;
    let mut query = audit_event::Entity::find();
    if let Some(action) = &filter.action {
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
    query
}

/// A page of audit events, newest first.
pub async fn list(
    db: &impl Db,
    filter: &AuditFilter,
    args: PageArgs,
) -> DomainResult<Page<audit_event::Model>> {
    page::fetch(
        db,
        select(filter),
        audit_event::Column::Id,
        args,
        Direction::Desc,
    )
    .await
}

/// How many audit events match.
pub async fn count(db: &impl Db, filter: &AuditFilter) -> DomainResult<u64> {
    page::count(db, select(filter)).await
}

/// One audit event, if it exists.
pub async fn find(db: &impl Db, id: i64) -> Result<Option<audit_event::Model>, DbErr> {
    audit_event::Entity::find_by_id(id).one(db).await
}
