//! Sync runs: reading them. Creating and running them is the sync engine's (`crate::sync`).

use super::SyncRunId;
use crate::error::{DomainError, DomainResult};
use entity::sync_run;
use sea_orm::{ConnectionTrait, EntityTrait};

/// One sync run, or `NOT_FOUND`.
pub async fn get<C: ConnectionTrait>(db: &C, id: SyncRunId) -> DomainResult<sync_run::Model> {
    sync_run::Entity::find_by_id(id.0)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound { what: "sync run" })
}
