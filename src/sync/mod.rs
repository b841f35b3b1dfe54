//! Syncing directories. For now: the bus on which sync runs announce their progress, read by
//! the `syncRunUpdated` subscription.

use entity::sync_run;
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
