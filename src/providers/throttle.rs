//! One integration's reads in flight, shaped by what its provider answers (AIMD, as TCP's
//! congestion window): every Directory API call holds a [`Permit`]; at most `limit` are held
//! at once. A call that succeeds grows the limit by one per window of calls (additive
//! increase, up to the configured maximum); a throttling answer (429, Google's quota 403s)
//! halves it (multiplicative decrease, at most once per window: the calls already in flight
//! were sent under the old limit) and pauses every call of the integration until its
//! `Retry-After` (or the backoff) has passed, so all workers back off together instead of each
//! hammering the quota on its own. The level the provider refused is remembered: the limit
//! grows back quickly to just under it, and probes past it eight times more slowly (and half
//! as often again after each probe refused), so a fixed quota costs a few refusals per run
//! rather than one per window; a probe that goes through lifts the ceiling.
//!
//! Written here rather than taken from a crate: the crates on offer (`rate_limiter_aimd`, a
//! fork of Vector's tower layer) adjust on latency alone and cannot pause every caller for a
//! provider's `Retry-After`, which is the signal both Graph and the Admin SDK give.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};
use tokio::sync::Notify;

/// The gate of one integration's provider calls.
#[derive(Debug)]
pub struct Throttle {
    max: usize,
    state: Mutex<State>,
    changed: Notify,
}

#[derive(Debug)]
struct State {
    /// Calls allowed in flight now (fractional while it grows back).
    limit: f64,
    in_flight: usize,
    /// Counts decreases: a throttled call sent before the last decrease does not cut again.
    window: u64,
    /// The fewest calls in flight the provider refused at, since the last decrease.
    ceiling: Option<f64>,
    /// How much more slowly the limit grows near the ceiling: doubled by each refusal that
    /// finds the ceiling in place (a probe that failed), reset when a probe goes through.
    probe_slower: f64,
    paused_until: Option<Instant>,
    /// Time every call was held back by throttling, pauses overlapping counted once.
    throttled_for: Duration,
    throttled: u64,
    retries: u64,
}

/// What a throttle saw, for the run and the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThrottleStats {
    /// Time the integration's reads were paused by the provider's throttling.
    pub throttled_for: Duration,
    /// Throttling answers received.
    pub throttled: u64,
    /// Calls made again (throttled, failed or cut).
    pub retries: u64,
    /// Calls allowed in flight now.
    pub limit: usize,
}

impl Throttle {
    /// A throttle that lets at most `max` calls (at least one) in flight.
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            max,
            state: Mutex::new(State {
                limit: max as f64,
                in_flight: 0,
                window: 0,
                ceiling: None,
                probe_slower: PROBE_SLOWER,
                paused_until: None,
                throttled_for: Duration::ZERO,
                throttled: 0,
                retries: 0,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until a call may be sent: no pause in force and fewer than `limit` in flight.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            // Registered before the state is read, so a release in between is not missed.
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let paused_until = {
                let mut state = self.lock();
                match state.paused_until {
                    Some(until) if until > Instant::now() => Some(until),
                    _ => {
                        if (state.in_flight as f64) < state.limit.floor().max(1.0) {
                            state.in_flight += 1;
                            return Permit {
                                throttle: self,
                                window: state.window,
                                level: state.in_flight,
                            };
                        }
                        None
                    }
                }
            };
            match paused_until {
                Some(until) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until.into()) => {}
                        () = &mut changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }

    /// A call is being made again (after a throttle, a 5xx, a cut or unreadable body).
    pub fn retried(&self) {
        self.lock().retries += 1;
    }

    /// What the throttle saw so far.
    pub fn stats(&self) -> ThrottleStats {
        let state = self.lock();
        ThrottleStats {
            throttled_for: state.throttled_for,
            throttled: state.throttled,
            retries: state.retries,
            limit: state.limit.floor() as usize,
        }
    }
}

/// Leave to make one call; released when dropped.
#[derive(Debug)]
pub struct Permit<'a> {
    throttle: &'a Throttle,
    window: u64,
    /// Calls in flight when this one was let through, itself included.
    level: usize,
}

/// How much more slowly the limit grows at and past the level last refused, at first.
const PROBE_SLOWER: f64 = 8.0;

/// The most it grows more slowly after probes that kept failing.
const PROBE_SLOWEST: f64 = 1024.0;

impl Permit<'_> {
    /// The call succeeded: the limit grows by one per window of successful calls.
    pub fn succeeded(self) {
        let mut state = self.throttle.lock();
        let near_ceiling = state.ceiling.is_some_and(|c| state.limit + 1.0 >= c);
        let step = if near_ceiling {
            1.0 / (state.limit * state.probe_slower)
        } else {
            1.0 / state.limit
        };
        state.limit = (state.limit + step).min(self.throttle.max as f64);
        if state.ceiling.is_some_and(|c| self.level as f64 > c) {
            // A call past the old refusal went through: the provider allows more now.
            state.ceiling = None;
            state.probe_slower = PROBE_SLOWER;
        }
        // Dropping the permit wakes the waiters, who may now fit under a grown limit.
    }

    /// The provider throttled the call: every call of the integration waits `wait`, and the
    /// limit halves unless it already did since this call was sent.
    pub fn throttled(self, wait: Duration) {
        {
            let mut state = self.throttle.lock();
            state.throttled += 1;
            let level = self.level as f64;
            if self.window == state.window {
                state.limit = (state.limit / 2.0).max(1.0);
                state.window += 1;
                if state.ceiling.is_some() {
                    // Refused again near the known limit: probe half as often from now on.
                    state.probe_slower = (state.probe_slower * 2.0).min(PROBE_SLOWEST);
                }
                state.ceiling = Some(level);
            } else if self.window + 1 == state.window {
                // Refused in the burst that caused the decrease: the lowest level counts.
                state.ceiling = Some(state.ceiling.map_or(level, |c| c.min(level)));
            }
            let now = Instant::now();
            let until = now + wait;
            let from = state.paused_until.filter(|t| *t > now).unwrap_or(now);
            if until > from {
                state.throttled_for += until - from;
                state.paused_until = Some(until);
            }
        }
        // Dropping the permit wakes the waiters, who now see the pause.
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.throttle.lock().in_flight -= 1;
        self.throttle.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    #[tokio::test]
    async fn no_more_than_the_limit_are_in_flight() {
        let throttle = Arc::new(Throttle::new(3));
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let calls = (0..20).map(|_| {
            let (throttle, now, most) = (throttle.clone(), now.clone(), most.clone());
            async move {
                let permit = throttle.acquire().await;
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(n, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                permit.succeeded();
            }
        });
        futures_util::future::join_all(calls).await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_fixed_quota_costs_a_refusal_now_and_then_not_one_per_window() {
        // A provider that refuses a fifth call in flight, and callers that want ten at once.
        let throttle = Arc::new(Throttle::new(10));
        let refused = Arc::new(AtomicUsize::new(0));
        let now = Arc::new(AtomicUsize::new(0));
        let calls = (0..400).map(|_| {
            let (throttle, refused, now) = (throttle.clone(), refused.clone(), now.clone());
            async move {
                loop {
                    let permit = throttle.acquire().await;
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                    if n > 4 {
                        refused.fetch_add(1, Ordering::SeqCst);
                        permit.throttled(Duration::from_millis(2));
                    } else {
                        permit.succeeded();
                        return;
                    }
                }
            }
        });
        futures_util::future::join_all(calls).await;
        let refused = refused.load(Ordering::SeqCst);
        assert!(refused < 40, "{refused} refusals for 400 calls");
        assert!(throttle.stats().limit <= 5);
    }

    #[tokio::test]
    async fn a_throttle_halves_once_per_window_pauses_everyone_then_grows_back() {
        let throttle = Throttle::new(8);
        // Four calls in flight are throttled together: one cut, not four.
        let permits: Vec<_> =
            futures_util::future::join_all((0..4).map(|_| throttle.acquire())).await;
        for permit in permits {
            permit.throttled(Duration::from_millis(60));
        }
        let stats = throttle.stats();
        assert_eq!((stats.limit, stats.throttled), (4, 4));
        assert!(stats.throttled_for >= Duration::from_millis(60));
        assert!(
            stats.throttled_for < Duration::from_millis(200),
            "overlapping pauses count once: {:?}",
            stats.throttled_for
        );
        // Nobody gets through during the pause.
        let started = Instant::now();
        let permit = throttle.acquire().await;
        assert!(started.elapsed() >= Duration::from_millis(40));
        // A call sent after the cut and throttled cuts again.
        permit.throttled(Duration::ZERO);
        assert_eq!(throttle.stats().limit, 2);
        // Successes grow the limit back, slowly at and past the level refused (one call in
        // flight, here), and up to the maximum once calls past it go through.
        for _ in 0..8 {
            throttle.acquire().await.succeeded();
        }
        assert_eq!(
            throttle.stats().limit,
            2,
            "probing past the refusal is slow"
        );
        // (Its second refusal near the ceiling made probing twice as slow: 16 calls a step.)
        for _ in 0..600 {
            throttle.acquire().await.succeeded();
        }
        assert_eq!(throttle.stats().limit, 8);
    }
}
