//! When integrations sync by themselves (R5): every four hours by default, or the deployment's
//! interval, or the integration's own, in that order of precedence reversed (the integration's
//! wins). Time is injected, so tests run "every four hours" in milliseconds.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

/// The time the scheduler goes by.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock tests move by hand.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: ChronoDuration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The default interval between scheduled syncs.
pub const DEFAULT_INTERVAL_MINUTES: i32 = 240;

/// The scheduler's settings.
#[derive(Clone)]
pub struct Schedule {
    pub clock: Arc<dyn Clock>,
    /// How often the scheduler looks for integrations that are due.
    pub tick: Duration,
    /// The deployment's interval, in minutes.
    pub interval_minutes: i32,
    /// Entra integrations read changes only (Graph delta) between full reconciliations, which
    /// run at least this often.
    pub full_every: ChronoDuration,
    /// How long a process holds a run it stopped renewing: after this, another process marks
    /// the run failed and the integration syncs again (several processes on one database).
    pub lease: Duration,
}

impl Schedule {
    /// The wall clock, checking every 30 seconds, with the deployment's interval.
    pub fn system(interval_minutes: i32) -> Self {
        Self {
            clock: Arc::new(SystemClock),
            tick: Duration::from_secs(30),
            interval_minutes,
            full_every: ChronoDuration::hours(24),
            lease: Duration::from_secs(60),
        }
    }

    /// The interval in force for an integration: its own, else the deployment's.
    pub fn interval(&self, own: Option<i32>) -> ChronoDuration {
        ChronoDuration::minutes(own.unwrap_or(self.interval_minutes) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_integrations_interval_wins_over_the_deployments() {
        let schedule = Schedule::system(120);
        assert_eq!(schedule.interval(None), ChronoDuration::minutes(120));
        assert_eq!(schedule.interval(Some(30)), ChronoDuration::minutes(30));
        assert_eq!(
            Schedule::system(DEFAULT_INTERVAL_MINUTES).interval(None),
            ChronoDuration::hours(4)
        );
    }
}
