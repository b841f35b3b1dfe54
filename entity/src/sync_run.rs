//! `sync_runs`: one import of an integration's directory and what it changed.

use crate::enums::{SyncRunStatus, SyncTrigger};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, serde::Serialize, serde::Deserialize)]
#[sea_orm(table_name = "sync_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub integration_id: i64,
    pub trigger: SyncTrigger,
    pub status: SyncRunStatus,
    pub queued_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    pub pages_read: i32,
    pub users_created: i32,
    pub users_updated: i32,
    pub users_suspended: i32,
    pub users_removed: i32,
    pub users_archived: i32,
    pub users_restored: i32,
    pub groups_created: i32,
    pub groups_updated: i32,
    pub groups_removed: i32,
    pub error: Option<String>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    /// Provider calls made again (throttled, failed, cut mid-body).
    #[serde(default)]
    pub retries: i32,
    /// Milliseconds every read of the integration was paused by the provider's throttling.
    #[serde(default)]
    pub throttled_ms: i64,
    /// Every warning of the run (records cleaned, cut, skipped, members ignored), exact.
    #[serde(default)]
    pub warning_count: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
