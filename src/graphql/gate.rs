//! The gate the request's `DataLoader` batches wait at, so a nested query runs the same
//! statements at any page size (see [`Gate`]).
//!
//! A request executed by `App::execute` drives its gate in its own task ([`Gate::drive`],
//! polled after the request's fields whenever they wait): quiet then means that the
//! request's futures, polled again and again, asked for no new key. A gate nobody drives (a
//! subscription's) runs its waves in a task of their own, where quiet is only a heuristic on
//! the multi-thread runtime.

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
    /// The request's own task runs the waves ([`Gate::drive`]).
    driven: std::sync::atomic::AtomicBool,
    /// A batch was queued (for the driver).
    queued: Notify,
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

/// The longest a wave waits for quiescence before it runs anyway (a bound that release builds
/// never come near: quiet comes within microseconds).
const MAX_SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

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
        if self.driven.load(Ordering::SeqCst) {
            self.queued.notify_one();
        } else if !state.running {
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

    /// Marks the gate as driven by the request's task and returns the driver: a future that
    /// runs the waves (never ends; drop it with the request). Poll it after the request's
    /// own future, in the same task.
    pub(super) fn driver(self: &Arc<Self>) -> impl Future<Output = ()> + Send + 'static {
        self.driven.store(true, Ordering::SeqCst);
        let gate = self.clone();
        async move {
            loop {
                let queued = gate.queued.notified();
                let waiting = !gate
                    .state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .queue
                    .is_empty();
                if !waiting {
                    queued.await;
                    continue;
                }
                gate.settle().await;
                let wave =
                    std::mem::take(&mut gate.state.lock().unwrap_or_else(|e| e.into_inner()).queue);
                if wave.is_empty() {
                    continue;
                }
                gate.remaining.store(wave.len(), Ordering::SeqCst);
                join_all(wave).await;
            }
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

    /// Waits until the request is quiet, or [`MAX_SETTLE`] at most: a wave never waits
    /// forever for a request that keeps asking (or a root query that never ends); running it
    /// early only makes the batches smaller.
    async fn settle(&self) {
        let _ = tokio::time::timeout(MAX_SETTLE, self.quiet()).await;
    }

    async fn quiet(&self) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wave_runs_within_the_bound_while_a_root_query_never_ends() {
        let gate = Arc::new(Gate::default());
        let _forever = gate.enter();
        let (done, ran) = tokio::sync::oneshot::channel();
        let wave_gate = gate.clone();
        gate.submit(Box::pin(async move {
            wave_gate.arrive().await;
            let _ = done.send(());
        }));
        let started = std::time::Instant::now();
        tokio::time::timeout(std::time::Duration::from_secs(5), ran)
            .await
            .expect("the wave ran")
            .unwrap();
        assert!(
            started.elapsed() >= MAX_SETTLE / 2,
            "it waited for quiet first"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wave_waits_for_the_busy_work_to_end_then_runs() {
        let gate = Arc::new(Gate::default());
        let busy = gate.enter();
        let (done, mut ran) = tokio::sync::oneshot::channel();
        let wave_gate = gate.clone();
        gate.submit(Box::pin(async move {
            wave_gate.arrive().await;
            let _ = done.send(());
        }));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(ran.try_recv().is_err(), "no wave while a root query runs");
        drop(busy);
        tokio::time::timeout(std::time::Duration::from_secs(5), ran)
            .await
            .expect("the wave ran")
            .unwrap();
    }
}
