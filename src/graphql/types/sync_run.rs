//! `SyncRun`: one import of an integration's directory.

use super::{Integration, SyncRunStatus, SyncTrigger};
use crate::graphql::{
    context::ContextExt,
    ids::{self, kinds},
    loaders::IntegrationKey,
};
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::sync_run;

/// One import of an integration's directory, and what it changed.
pub struct SyncRun(pub sync_run::Model);

#[Object]
impl SyncRun {
    /// The run's global id.
    pub async fn id(&self) -> ID {
        ids::encode(kinds::SYNC_RUN, self.0.id)
    }

    /// The integration synced.
    async fn integration(&self, ctx: &Context<'_>) -> Result<Option<Integration>> {
        Ok(ctx
            .loaders()
            .load_one(IntegrationKey(self.0.integration_id))
            .await?
            .map(Integration))
    }

    /// What started the run.
    async fn trigger(&self) -> SyncTrigger {
        self.0.trigger.into()
    }

    /// Where the run stands.
    async fn status(&self) -> SyncRunStatus {
        self.0.status.into()
    }

    /// When the run was asked for.
    async fn queued_at(&self) -> DateTime<Utc> {
        self.0.queued_at
    }

    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }

    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }

    /// Pages read from the provider.
    async fn pages_read(&self) -> i32 {
        self.0.pages_read
    }

    /// Provider calls made again: throttled, failed with a 5xx, or cut mid-body.
    async fn retries(&self) -> i32 {
        self.0.retries
    }

    /// Seconds every read of the integration was paused because the provider throttled it
    /// (429, Google's quota errors); pauses that overlap count once. The run slows down
    /// instead of failing (R16).
    async fn throttled_for(&self) -> f64 {
        self.0.throttled_ms as f64 / 1000.0
    }

    async fn users_created(&self) -> i32 {
        self.0.users_created
    }

    async fn users_updated(&self) -> i32 {
        self.0.users_updated
    }

    /// Users disabled or suspended in the directory (R14).
    async fn users_suspended(&self) -> i32 {
        self.0.users_suspended
    }

    /// Users gone from the directory and deleted, having no device (R14).
    async fn users_removed(&self) -> i32 {
        self.0.users_removed
    }

    /// Users gone from the directory and archived, having a device (R14).
    async fn users_archived(&self) -> i32 {
        self.0.users_archived
    }

    /// Users back in the directory and restored (R14).
    async fn users_restored(&self) -> i32 {
        self.0.users_restored
    }

    async fn groups_created(&self) -> i32 {
        self.0.groups_created
    }

    async fn groups_updated(&self) -> i32 {
        self.0.groups_updated
    }

    async fn groups_removed(&self) -> i32 {
        self.0.groups_removed
    }

    /// Why the run failed or is held.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
}
