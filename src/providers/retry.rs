//! The retry policy of one provider call, as one decision ([`Retries::next`]): after a
//! failure, try again after a wait (and how to wait) or give up with the error the failure
//! ends in. Transient failures (unreachable, a body cut or unreadable, a 5xx) share one budget;
//! throttling has its own and pauses the whole session; a refused access token is refreshed
//! once.

use super::{ProviderError, RetryPolicy};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// The error a retried failure ends in, given how many times it happened.
pub type GiveUpWith = Box<dyn FnOnce(usize) -> ProviderError + Send>;

/// A failure the retry policy decides on ([`Retries::next`]).
pub enum Failure {
    /// Unreachable, a body cut or unreadable, a 5xx: one budget for all of them
    /// (`max_retries`), waiting `Retry-After` or the backoff.
    Transient {
        reason: &'static str,
        retry_after: Option<Duration>,
        error: GiveUpWith,
    },
    /// The provider throttles: its own budget (`max_throttle_retries`); every call of the
    /// session waits.
    Throttled {
        retry_after: Option<Duration>,
        error: GiveUpWith,
    },
    /// The access token was refused: refreshed once, then the grant is gone.
    TokenRefused(ProviderError),
}

/// What to do after a failure.
pub enum Next {
    /// Try again after `wait` (`reason`: the retry's metric label).
    Again {
        reason: &'static str,
        wait: Duration,
        how: How,
    },
    GiveUp(ProviderError),
}

/// How a call waits before it tries again.
pub enum How {
    /// At once, with a new access token.
    Refresh,
    /// The session's throttle pauses every call of the integration for the wait.
    Pause,
    /// This call alone sleeps, its place at the throttle given up.
    Sleep,
}

/// The retry policy of one call: its budgets, what was spent of them, and its backoff.
pub struct Retries<'a> {
    policy: &'a RetryPolicy,
    backoff: backon::ExponentialBackoff,
    failures: usize,
    throttled: usize,
    refreshed: bool,
}

impl<'a> Retries<'a> {
    pub fn new(policy: &'a RetryPolicy) -> Self {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_jitter()
            .without_max_times()
            .build();
        Self {
            policy,
            backoff,
            failures: 0,
            throttled: 0,
            refreshed: false,
        }
    }

    fn delay(&mut self) -> Duration {
        self.backoff.next().unwrap_or(self.policy.max_delay)
    }

    /// The one decision after a failure: again after a wait, or give up.
    pub fn next(&mut self, failure: Failure) -> Next {
        match failure {
            Failure::TokenRefused(error) => {
                if std::mem::replace(&mut self.refreshed, true) {
                    return Next::GiveUp(error);
                }
                Next::Again {
                    reason: "token_expired",
                    wait: Duration::ZERO,
                    how: How::Refresh,
                }
            }
            Failure::Throttled { retry_after, error } => {
                self.throttled += 1;
                if self.throttled > self.policy.max_throttle_retries {
                    return Next::GiveUp(error(self.throttled));
                }
                Next::Again {
                    reason: "throttled",
                    wait: retry_after.unwrap_or_else(|| self.delay()),
                    how: How::Pause,
                }
            }
            Failure::Transient {
                reason,
                retry_after,
                error,
            } => {
                self.failures += 1;
                if self.failures > self.policy.max_retries {
                    return Next::GiveUp(error(self.failures));
                }
                Next::Again {
                    reason,
                    wait: retry_after.unwrap_or_else(|| self.delay()),
                    how: How::Sleep,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            max_throttle_retries: 3,
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            max_retry_after: Duration::from_secs(300),
        }
    }

    fn give_up(times: usize) -> ProviderError {
        ProviderError::Malformed {
            provider: "test",
            url: "u".into(),
            detail: format!("{times} times"),
        }
    }

    fn transient(retry_after: Option<Duration>) -> Failure {
        Failure::Transient {
            reason: "server_error",
            retry_after,
            error: Box::new(give_up),
        }
    }

    fn throttled(retry_after: Option<Duration>) -> Failure {
        Failure::Throttled {
            retry_after,
            error: Box::new(give_up),
        }
    }

    #[test]
    fn retries_spend_one_budget_on_transient_failures_then_give_up_saying_how_often() {
        let policy = policy();
        let mut retries = Retries::new(&policy);
        for _ in 0..2 {
            let Next::Again { wait, how, .. } = retries.next(transient(None)) else {
                panic!("within the budget");
            };
            assert!(matches!(how, How::Sleep));
            assert!(wait <= policy.max_delay, "{wait:?}");
        }
        match retries.next(transient(None)) {
            Next::GiveUp(ProviderError::Malformed { detail, .. }) => assert_eq!(detail, "3 times"),
            _ => panic!("past the budget"),
        }
    }

    #[test]
    fn retries_wait_what_the_provider_asks() {
        let policy = policy();
        let mut retries = Retries::new(&policy);
        let asked = Duration::from_secs(7);
        let Next::Again { wait, .. } = retries.next(transient(Some(asked))) else {
            panic!("again");
        };
        assert_eq!(wait, asked);
        let Next::Again { wait, how, reason } = retries.next(throttled(Some(asked))) else {
            panic!("again");
        };
        assert_eq!((wait, reason), (asked, "throttled"));
        assert!(matches!(how, How::Pause));
    }

    #[test]
    fn retries_count_throttling_apart_from_failures() {
        let policy = policy();
        let mut retries = Retries::new(&policy);
        for _ in 0..3 {
            assert!(matches!(retries.next(throttled(None)), Next::Again { .. }));
        }
        // Throttling spent none of the transient budget.
        assert!(matches!(retries.next(transient(None)), Next::Again { .. }));
        assert!(matches!(retries.next(throttled(None)), Next::GiveUp(_)));
    }

    #[test]
    fn retries_refresh_a_refused_token_once() {
        let policy = policy();
        let mut retries = Retries::new(&policy);
        let refused = || {
            Failure::TokenRefused(ProviderError::NeedsReauth {
                provider: "test",
                detail: "refused".into(),
            })
        };
        let Next::Again { wait, how, .. } = retries.next(refused()) else {
            panic!("refreshed once");
        };
        assert_eq!(wait, Duration::ZERO);
        assert!(matches!(how, How::Refresh));
        assert!(matches!(
            retries.next(refused()),
            Next::GiveUp(ProviderError::NeedsReauth { .. })
        ));
    }
}
