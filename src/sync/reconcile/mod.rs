//! The reconciler: applies a read of a directory to dirgate's tables in named phases, each a
//! function of its own with its own tests, one transaction per batch of pages or groups, so
//! memory stays bounded by a batch and a failure part-way loses nothing.
//!
//! - [`full_sync`] (`full.rs`): phase 1 users, phase 2 groups, phase 3 memberships, phase 4
//!   removals — for every provider, from its [`DirectoryProvider`](crate::providers::DirectoryProvider).
//! - [`delta_sync`] (`delta.rs`): phase 1 user changes, phase 2 group and membership changes,
//!   phase 3 removals — for a provider with the
//!   [`IncrementalProvider`](crate::providers::IncrementalProvider) capability.
//! - `removal.rs`: the one ending both share. Removals are decided only after the whole read
//!   succeeded (R15); a sync that would remove more than the threshold is held instead (R15);
//!   users gone from the directory go through `directory::users::remove_or_archive` (R14).
//! - `users.rs` and `groups.rs`: the stores the phases write through (fingerprints, multi-row
//!   upserts, aliases, memberships); `store.rs`: statement sizing by the backend's bind limit.

mod delta;
mod full;
mod groups;
mod read_ahead;
mod removal;
#[cfg(test)]
mod testing;
mod users;

pub use delta::{delta_sync, scoped_delta_sync};
pub use full::full_sync;

use crate::{
    error::DomainError,
    providers::{ProviderError, clean::Warnings},
};
use entity::integration;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
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
    /// Provider calls made again, as the session counted them (set by the run, not the
    /// phases).
    pub retries: i32,
    /// Time the integration's reads were paused by throttling, in milliseconds (likewise).
    pub throttled_ms: i64,
    /// Warnings of the run so far: records cleaned, cut, skipped, members ignored (likewise,
    /// from the run's [`Warnings`]).
    pub warnings: i32,
}

impl std::ops::AddAssign<&Counts> for Counts {
    fn add_assign(&mut self, other: &Counts) {
        self.pages_read += other.pages_read;
        self.users_created += other.users_created;
        self.users_updated += other.users_updated;
        self.users_suspended += other.users_suspended;
        self.users_removed += other.users_removed;
        self.users_archived += other.users_archived;
        self.users_restored += other.users_restored;
        self.groups_created += other.groups_created;
        self.groups_updated += other.groups_updated;
        self.groups_removed += other.groups_removed;
        self.retries += other.retries;
        self.throttled_ms += other.throttled_ms;
        self.warnings += other.warnings;
    }
}

/// The removal safety threshold (R15): hold a sync that would remove more than `percent` of
/// the integration's users and more than `min_users` of them.
#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    pub percent: u32,
    pub min_users: u32,
}

impl Default for Threshold {
    fn default() -> Self {
        Self {
            percent: 20,
            min_users: 10,
        }
    }
}

/// How a reconciliation ended.
#[derive(Debug)]
pub enum Outcome {
    /// Everything applied.
    Applied(Counts),
    /// Creates and updates applied; removals held for confirmation (R15).
    Held {
        counts: Counts,
        would_remove: u64,
        of: u64,
    },
}

/// Why a reconciliation stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Stopped at a batch boundary (shutdown): what was committed stays; nothing was removed.
    #[error("stopped at a batch boundary")]
    Stopped,
}

impl From<sea_orm::DbErr> for ReconcileError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Domain(err.into())
    }
}

/// Called after each page with the counts so far, to report progress.
pub type Progress<'a> = &'a (dyn Fn(&Counts) + Send + Sync);

/// What one reconciliation needs.
pub struct Job<'a> {
    pub db: &'a DatabaseConnection,
    pub integration: &'a integration::Model,
    pub threshold: Threshold,
    /// Removals beyond the threshold were confirmed (R15).
    pub confirmed: bool,
    pub progress: Progress<'a>,
    /// Cancelled to stop at the next batch boundary (shutdown): what was committed stays,
    /// nothing is removed.
    pub stop: &'a CancellationToken,
    /// Where the cleaning step and the phases note what they did to records (R18).
    pub warnings: &'a Arc<Warnings>,
}

impl Job<'_> {
    fn check_stop(&self) -> Result<(), ReconcileError> {
        if self.stop.is_cancelled() {
            Err(ReconcileError::Stopped)
        } else {
            Ok(())
        }
    }
}

/// Where the next incremental read of a directory starts (Graph delta links).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeltaLinks {
    pub users: String,
    pub groups: String,
}

/// What a reconciliation did.
#[derive(Debug)]
pub struct Report {
    pub outcome: Outcome,
    /// Users created or changed (for automatic device assignment).
    pub touched: Vec<i64>,
    /// The delta links to store, when the read gave them and everything was applied.
    pub delta: Option<DeltaLinks>,
}
