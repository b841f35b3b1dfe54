//! The bus on which sync runs announce every change of state and counters
//! (`syncRunUpdated`).
//!
//! On SQLite (one process) it is an in-process broadcast. On PostgreSQL several processes
//! share the database, and a subscriber on one must see the runs another executes: every
//! announcement goes out as a `NOTIFY` on a channel of this database and schema (one relay
//! task, so a process's announcements keep their order), and each process's listener task
//! `LISTEN`s and hands what arrives to its local subscribers — its own announcements included,
//! so every process sees one ordered stream. The payload is the run's row as JSON (a few hundred
//! bytes); a row too big for a notification goes as its id alone and is read again. A
//! listener whose connection drops reconnects, then announces the runs in flight and those
//! that ended meanwhile, so no subscription misses where a run ended.

use crate::directory::now;
use crate::store;
use entity::sync_run;
use sea_orm::{DatabaseBackend, DatabaseConnection};
use std::time::Duration;
use tokio::{
    sync::{broadcast, mpsc, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

/// PostgreSQL refuses a notification payload of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

/// How long a new subscription waits for the listener to be listening.
const READY_WAIT: Duration = Duration::from_secs(5);

/// Progress of sync runs, announced to every subscriber of every process. Cheap to clone.
#[derive(Clone)]
pub struct SyncEvents {
    local: broadcast::Sender<sync_run::Model>,
    /// PostgreSQL: announcements go to the relay task, which `NOTIFY`s them.
    relay: Option<mpsc::UnboundedSender<sync_run::Model>>,
    /// Whether the listener is listening (always on SQLite).
    ready: watch::Receiver<bool>,
}

/// What a notification carries: the run, or (past [`MAX_PAYLOAD`]) its id only.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
enum Notice {
    Run(sync_run::Model),
    Id { id: i64 },
}

impl SyncEvents {
    /// An in-process bus (SQLite, and tests that need no database).
    pub fn local() -> Self {
        Self {
            local: broadcast::channel(1024).0,
            relay: None,
            ready: watch::channel(true).1,
        }
    }

    /// The bus for `db`: in-process on SQLite; through `NOTIFY`/`LISTEN` on PostgreSQL, with
    /// the relay and listener tasks returned for their owner to stop (with `shutdown`).
    pub fn start(
        db: &DatabaseConnection,
        shutdown: CancellationToken,
    ) -> (Self, Vec<JoinHandle<()>>) {
        if store::backend(db) != DatabaseBackend::Postgres {
            return (Self::local(), Vec::new());
        }
        let local = broadcast::channel(1024).0;
        let (relay, queue) = mpsc::unbounded_channel();
        let (set_ready, ready) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(relay_notices(db.clone(), queue, shutdown.clone())),
            tokio::spawn(listen(db.clone(), local.clone(), set_ready, shutdown)),
        ];
        let events = Self {
            local,
            relay: Some(relay),
            ready,
        };
        (events, tasks)
    }

    /// Announces a run's new state. Nobody listening is fine.
    pub fn publish(&self, run: sync_run::Model) {
        match &self.relay {
            Some(relay) => {
                if let Err(unsent) = relay.send(run) {
                    // The relay stopped (shutdown): local subscribers still hear it.
                    let _ = self.local.send(unsent.0);
                }
            }
            None => {
                let _ = self.local.send(run);
            }
        }
    }

    /// A receiver of every run announced from now on, once the bus is listening (a few
    /// seconds at most after start).
    pub async fn subscribe(&self) -> broadcast::Receiver<sync_run::Model> {
        let mut ready = self.ready.clone();
        let _ = tokio::time::timeout(READY_WAIT, ready.wait_for(|r| *r)).await;
        self.local.subscribe()
    }
}

/// The channel of this database and schema (see [`store::notices::channel`]).
async fn channel(db: &DatabaseConnection) -> Result<String, sea_orm::DbErr> {
    store::notices::channel(db, "dirgate_sync_runs").await
}

/// Sends announcements as `NOTIFY`s, one at a time, in order.
async fn relay_notices(
    db: DatabaseConnection,
    mut queue: mpsc::UnboundedReceiver<sync_run::Model>,
    shutdown: CancellationToken,
) {
    let channel = loop {
        match channel(&db).await {
            Ok(channel) => break channel,
            Err(err) => {
                tracing::warn!(error = %err, "cannot name the sync-run channel; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    loop {
        let run = tokio::select! {
            () = shutdown.cancelled() => return,
            run = queue.recv() => match run {
                Some(run) => run,
                None => return,
            },
        };
        let id = run.id;
        let mut payload = serde_json::to_string(&Notice::Run(run)).unwrap_or_default();
        if payload.len() > MAX_PAYLOAD {
            payload = serde_json::to_string(&Notice::Id { id }).unwrap_or_default();
        }
        let sent = store::notices::notify(&db, &channel, payload).await;
        if let Err(err) = sent {
            tracing::warn!(run = id, error = %err, "cannot announce a sync run");
        }
    }
}

/// A listener on the channel, connected and listening; retried every second until it is (or
/// until shutdown: `None`).
async fn connect_listener(
    db: &DatabaseConnection,
    shutdown: &CancellationToken,
) -> Option<sea_orm::sqlx::postgres::PgListener> {
    use sea_orm::sqlx::postgres::PgListener;
    loop {
        let connected = async {
            let channel = channel(db).await.map_err(|e| e.to_string())?;
            let mut listener = PgListener::connect_with(db.get_postgres_connection_pool())
                .await
                .map_err(|e| e.to_string())?;
            listener.listen(&channel).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(listener)
        };
        match connected.await {
            Ok(listener) => return Some(listener),
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for sync runs; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Listens on the channel and hands every run to the local subscribers; when the connection
/// drops it listens again, then catches up on what it may have missed.
async fn listen(
    db: DatabaseConnection,
    local: broadcast::Sender<sync_run::Model>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let Some(mut listener) = connect_listener(&db, &shutdown).await else {
        return;
    };
    let _ = ready.send(true);
    let mut since = now();
    loop {
        let received = tokio::select! {
            () = shutdown.cancelled() => return,
            received = listener.try_recv() => received,
        };
        match received {
            Ok(Some(notification)) => {
                let run = match serde_json::from_str::<Notice>(notification.payload()) {
                    Ok(Notice::Run(run)) => Some(run),
                    Ok(Notice::Id { id }) => store::runs::find(&db, id).await.ok().flatten(),
                    Err(err) => {
                        tracing::warn!(error = %err, "an unreadable sync-run notification");
                        None
                    }
                };
                if let Some(run) = run {
                    let _ = local.send(run);
                }
                continue;
            }
            // The connection dropped and the listener listens again on a new one.
            Ok(None) => tracing::warn!("the sync-run listener lost its connection; reconnected"),
            Err(err) => {
                tracing::warn!(error = %err, "the sync-run listener failed; listening again");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let Some(fresh) = connect_listener(&db, &shutdown).await else {
                    return;
                };
                listener = fresh;
            }
        }
        // What was announced while no connection listened is lost: announce the runs that
        // may have changed since the last look.
        let looked = now();
        match store::runs::changed_since(&db, since).await {
            Ok(runs) => {
                for run in runs {
                    let _ = local.send(run);
                }
                since = looked;
            }
            Err(err) => tracing::warn!(error = %err, "cannot catch up on sync runs"),
        }
    }
}
