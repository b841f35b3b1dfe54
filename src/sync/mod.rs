//! Syncing directories: the engine (an actor with a handle), the reconciler that applies a
//! directory read, and the bus on which runs announce their progress (`syncRunUpdated`).

pub mod engine;
mod leases;
pub mod reconcile;
mod run;
pub mod schedule;

pub use engine::SyncHandle;

use crate::services::Services;
use entity::sync_run;
use reconcile::Threshold;
use schedule::Schedule;
use sea_orm::DatabaseConnection;
use std::sync::Arc;
use tokio::sync::broadcast;

/// Progress of sync runs, broadcast to every subscriber.
#[derive(Clone)]
pub struct SyncEvents {
    tx: broadcast::Sender<sync_run::Model>,
}

impl Default for SyncEvents {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl SyncEvents {
    /// Announces a run's new state. Nobody listening is fine.
    pub fn publish(&self, run: sync_run::Model) {
        let _ = self.tx.send(run);
    }

    /// A receiver of every run announced from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<sync_run::Model> {
        self.tx.subscribe()
    }
}

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
