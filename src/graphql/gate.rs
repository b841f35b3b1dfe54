//! The gate the request's `DataLoader` batches wait at, so a nested query runs the same
//! statements at any page size (see [`Gate`]).

use futures_util::future::{BoxFuture, join_all};
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, AtomicUsize, Ordering},
};
use tokio::sync::Notify;

/// Holds a request's batches until the request stops asking for keys, then runs them
/// together as one wave, and hands out a wave's results only once all of them are in.
///
/// A time window (the `DataLoader` default) splits a batch whenever resolving a page takes
/// longer than the window, and batches running side by side miss each other's results, so a
/// page of 200 would run more statements than a page of 10. Here a wave starts only once the
/// request is quiet (no key asked for across a few scheduler rounds, no root query running),
/// and its results land together, so keys asked for next find them in the cache: the
/// statements a request runs depend on the shape of the query only.
#[derive(Default)]
pub(super) struct Gate {
    activity: AtomicU64,
    busy: AtomicUsize,
    idle: Notify,
    /// Batches of the running wave that have not finished their query yet.
    remaining: AtomicUsize,
    released: Notify,
    state: Mutex<GateState>,
}

/// Database work outside the loader in progress (`Loaders::busy`): no wave starts until it
/// is dropped.
pub struct Busy(Arc<Gate>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        if self.0.busy.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[derive(Default)]
struct GateState {
    queue: Vec<BoxFuture<'static, ()>>,
    running: bool,
}

/// Scheduler rounds without a new key that count as quiescence.
const QUIET_ROUNDS: usize = 4;

impl Gate {
    /// Database work outside the loader starts; see [`Busy`].
    pub(super) fn enter(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    pub(super) fn touch(&self) {
        self.activity.fetch_add(1, Ordering::SeqCst);
    }

    pub(super) fn submit(self: &Arc<Self>, batch: BoxFuture<'static, ()>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.queue.push(batch);
        if !state.running {
            state.running = true;
            tokio::spawn(self.clone().run());
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            self.settle().await;
            let wave = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if state.queue.is_empty() {
                    state.running = false;
                    return;
                }
                std::mem::take(&mut state.queue)
            };
            self.remaining.store(wave.len(), Ordering::SeqCst);
            join_all(wave).await;
        }
    }

    /// Called by every batch once its query is done: waits for the rest of the wave.
    pub(super) async fn arrive(&self) {
        let released = self.released.notified();
        if self.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.released.notify_waiters();
        } else {
            released.await;
        }
    }

    async fn settle(&self) {
        loop {
            let idle = self.idle.notified();
            if self.busy.load(Ordering::SeqCst) > 0 {
                idle.await;
                continue;
            }
            let seen = self.activity.load(Ordering::SeqCst);
            for _ in 0..QUIET_ROUNDS {
                tokio::task::yield_now().await;
            }
            if self.activity.load(Ordering::SeqCst) == seen && self.busy.load(Ordering::SeqCst) == 0
            {
                return;
            }
        }
    }
}
