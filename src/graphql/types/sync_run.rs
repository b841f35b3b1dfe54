//! `SyncRun`: one import of an integration's directory.

use super::{Integration, SyncRunStatus, SyncTrigger};
use crate::{
    directory::{SyncRunId, sync_runs},
    graphql::{
        connection::{self, Conn, Totals},
        context::ContextExt,
        ids::{self, kinds},
        loaders::IntegrationKey,
    },
    providers::clean::MAX_WARNINGS_KEPT,
    store::page::PageArgs,
};
use async_graphql::{Context, Enum, ID, Object, Result};
use chrono::{DateTime, Utc};
use entity::{sync_run, sync_run_warning};

/// One import of an integration's directory, and what it changed.
pub struct SyncRun(pub sync_run::Model);

/// One import of an integration's directory: its trigger, status and progress, what it
/// changed, the records it skipped or cleaned (warnings), and why it failed or was held.
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

    /// When the run started reading; null while it is QUEUED.
    async fn started_at(&self) -> Option<DateTime<Utc>> {
        self.0.started_at
    }

    /// When the run ended; null while it is QUEUED or RUNNING.
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
    /// instead of failing.
    async fn throttled_for(&self) -> f64 {
        self.0.throttled_ms as f64 / 1000.0
    }

    /// Users new in the directory, created.
    async fn users_created(&self) -> i32 {
        self.0.users_created
    }

    /// Users whose synced fields changed, updated.
    async fn users_updated(&self) -> i32 {
        self.0.users_updated
    }

    /// Users disabled or suspended in the directory.
    async fn users_suspended(&self) -> i32 {
        self.0.users_suspended
    }

    /// Users gone from the directory and deleted, having no device.
    async fn users_removed(&self) -> i32 {
        self.0.users_removed
    }

    /// Users gone from the directory and archived, having a device.
    async fn users_archived(&self) -> i32 {
        self.0.users_archived
    }

    /// Users back in the directory and restored.
    async fn users_restored(&self) -> i32 {
        self.0.users_restored
    }

    /// Groups new in the directory, created.
    async fn groups_created(&self) -> i32 {
        self.0.groups_created
    }

    /// Groups whose name, email, description or members changed.
    async fn groups_updated(&self) -> i32 {
        self.0.groups_updated
    }

    /// Groups gone from the directory, deleted.
    async fn groups_removed(&self) -> i32 {
        self.0.groups_removed
    }

    /// Why the run failed or is held.
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }

    /// How many warnings the run has: values the directory sent that were cleaned or cut,
    /// records skipped, members ignored. Exact, however many; a run with warnings still
    /// succeeds.
    async fn warning_count(&self) -> i32 {
        self.0.warning_count
    }

    /// The run's warnings in the order they came; the first 1,000 are kept.
    async fn warnings(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size: 50 when left out, at most `--max-page-size` (500).")]
        first: Option<i32>,
        #[graphql(desc = "A cursor of this list and order: the page starts after it.")]
        after: Option<String>,
    ) -> Result<Conn<SyncWarning>> {
        let after = ids::decode_after(after.as_deref())?;
        let args = PageArgs::new(first, after, ctx.config().max_page_size)?;
        let page = sync_runs::warnings(ctx.db(), SyncRunId(self.0.id), args).await?;
        let kept = u64::try_from(self.0.warning_count)
            .unwrap_or(0)
            .min(MAX_WARNINGS_KEPT as u64);
        let totals = Totals::lazy(move || async move { Ok(kept) });
        Ok(connection::build(
            page,
            after,
            |w| w.id,
            SyncWarning,
            totals,
        ))
    }
}

/// What a run did to a directory record beyond what the directory said.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncWarningAction {
    /// Control or bidirectional-text characters were removed from a value, or an empty
    /// required value was replaced.
    Cleaned,
    /// A value or a list was cut to its maximum length.
    Truncated,
    /// The record was not stored this run; an object already stored keeps what it had and
    /// is not removed.
    Skipped,
    /// A member that is not a user of this directory (an external account, a user skipped)
    /// was left out of its group.
    IgnoredMember,
}

/// The kind of directory object a warning is about.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncWarningObject {
    /// A user record.
    User,
    /// A group record (or one of its member lists).
    Group,
}

/// One warning of a sync run.
pub struct SyncWarning(pub sync_run_warning::Model);

/// A record a sync run skipped, cleaned, truncated or ignored, and why.
#[Object]
impl SyncWarning {
    /// The kind of object.
    async fn object_kind(&self) -> SyncWarningObject {
        match self.0.object_kind.as_str() {
            "GROUP" => SyncWarningObject::Group,
            _ => SyncWarningObject::User,
        }
    }

    /// The object's id in the directory (control characters written as `U+XXXX`).
    async fn external_id(&self) -> &str {
        &self.0.external_id
    }

    /// The field concerned, as the API names it; null when the whole record is.
    async fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// What was done.
    async fn action(&self) -> SyncWarningAction {
        match self.0.action.as_str() {
            "CLEANED" => SyncWarningAction::Cleaned,
            "TRUNCATED" => SyncWarningAction::Truncated,
            "SKIPPED" => SyncWarningAction::Skipped,
            _ => SyncWarningAction::IgnoredMember,
        }
    }

    /// What happened, for an admin.
    async fn message(&self) -> &str {
        &self.0.message
    }
}
