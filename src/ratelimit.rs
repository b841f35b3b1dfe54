//! Per-token rate limits for the two edges: GraphQL keyed by API token, SCIM keyed by
//! integration (each SCIM integration has one token). `governor`'s GCRA: a steady rate with a
//! burst of one second's worth, no window edges to double up at, and the wait until the next
//! request would pass, which becomes `Retry-After`.

use governor::{Quota, RateLimiter, clock::Clock, clock::DefaultClock};
use std::{num::NonZeroU32, time::Duration};

type Keyed = RateLimiter<i64, governor::state::keyed::DefaultKeyedStateStore<i64>, DefaultClock>;

/// One limiter per edge.
pub struct RateLimits {
    graphql: Keyed,
    scim: Keyed,
    clock: DefaultClock,
}

impl RateLimits {
    /// Limits of `graphql` and `scim` requests per second per token (0 is taken as 1).
    pub fn new(graphql: u32, scim: u32) -> Self {
        let quota = |n: u32| Quota::per_second(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            graphql: RateLimiter::keyed(quota(graphql)),
            scim: RateLimiter::keyed(quota(scim)),
            clock: DefaultClock::default(),
        }
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
