//! Per-token rate limits for the two edges: GraphQL keyed by API token, SCIM keyed by
//! integration (each SCIM integration has one token). `governor`'s GCRA: a steady rate with a
//! burst of one second's worth, no window edges to double up at, and the wait until the next
//! request would pass, which becomes `Retry-After`. Beside them, the subscription connections
//! each API token holds open ([`MAX_SOCKETS_PER_TOKEN`]).

use governor::{Quota, RateLimiter, clock::Clock, clock::DefaultClock};
use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::Duration,
};

type Keyed = RateLimiter<i64, governor::state::keyed::DefaultKeyedStateStore<i64>, DefaultClock>;

/// One limiter per edge.
pub struct RateLimits {
    graphql: Keyed,
    scim: Keyed,
    clock: DefaultClock,
    /// Subscription connections open per API token.
    sockets: Arc<Mutex<HashMap<i64, usize>>>,
}

/// Subscription (WebSocket) connections one API token holds open at once, at most.
pub const MAX_SOCKETS_PER_TOKEN: usize = 32;

/// One open subscription connection of a token; dropped with the connection.
pub struct SocketPermit {
    token: i64,
    sockets: Arc<Mutex<HashMap<i64, usize>>>,
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        let mut open = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

impl RateLimits {
    /// Limits of `graphql` and `scim` requests per second per token (0 is taken as 1).
    pub fn new(graphql: u32, scim: u32) -> Self {
        let quota = |n: u32| Quota::per_second(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            graphql: RateLimiter::keyed(quota(graphql)),
            scim: RateLimiter::keyed(quota(scim)),
            clock: DefaultClock::default(),
            sockets: Arc::default(),
        }
    }

    /// A place for one more subscription connection of `token`; `None` when it holds
    /// [`MAX_SOCKETS_PER_TOKEN`] already.
    pub fn socket(&self, token: i64) -> Option<SocketPermit> {
        let mut open = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(token).or_default();
        if *n >= MAX_SOCKETS_PER_TOKEN {
            return None;
        }
        *n += 1;
        Some(SocketPermit {
            token,
            sockets: self.sockets.clone(),
        })
    }

    /// Counts a GraphQL request of API token `token`; `Err(wait)` when over the limit.
    pub fn graphql(&self, token: i64) -> Result<(), Duration> {
        self.check(&self.graphql, token)
    }

    /// Counts a SCIM request of `integration`'s token; `Err(wait)` when over the limit.
    pub fn scim(&self, integration: i64) -> Result<(), Duration> {
        self.check(&self.scim, integration)
    }

    fn check(&self, limiter: &Keyed, key: i64) -> Result<(), Duration> {
        limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// Whole seconds to put in `Retry-After` for `wait` (at least 1: the header has no fractions).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0).max(u64::from(wait.is_zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_allow_a_burst_of_the_rate_then_refuse_with_a_wait() {
        let limits = RateLimits::new(5, 1);
        for _ in 0..5 {
            assert!(limits.graphql(1).is_ok());
        }
        let wait = limits.graphql(1).unwrap_err();
        assert!(wait <= Duration::from_millis(200), "{wait:?}");
        assert!(
            limits.graphql(2).is_ok(),
            "another token has its own budget"
        );
        assert!(limits.scim(1).is_ok());
        let wait = limits.scim(1).unwrap_err();
        assert!(wait > Duration::from_millis(500), "{wait:?}");
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 3);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
    }
}
