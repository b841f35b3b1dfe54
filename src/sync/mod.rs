//! Syncing directories: the engine (an actor with a handle), the reconciler that applies a
//! directory read, and the bus on which runs announce their progress (`syncRunUpdated`).

mod ending;
pub mod engine;
mod leases;
pub mod reconcile;
mod run;
mod run_bus;
pub mod schedule;
pub mod session;

pub use engine::SyncHandle;
pub use run_bus::SyncEvents;

use crate::services::Services;
use reconcile::Threshold;
use schedule::Schedule;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// What the engine and its runs need.
#[derive(Clone)]
pub struct SyncDeps {
    pub db: DatabaseConnection,
    pub services: Arc<Services>,
    pub events: SyncEvents,
    pub threshold: Threshold,
    pub schedule: Schedule,
    /// This process, as the owner of the runs it executes (several processes may share a
    /// database).
    pub owner: String,
}
