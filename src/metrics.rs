//! Metrics, rendered at `/metrics` in Prometheus' text format.
//!
//! Recorded through the `metrics` facade (one global recorder per process, installed by
//! [`install`]; an embedder that installed its own keeps it and `/metrics` then shows
//! nothing). Every name and label is listed here, with the function that records it, so an
//! operator finds them all in one place (and in README "Metrics"):
//!
//! | metric | labels | recorded by |
//! |---|---|---|
//! | `dirgate_graphql_requests_total` | `operation` (query, mutation, subscription; none for a request refused before its operation is known), `code` (ok or the first error's code) | [`graphql_request`], [`graphql_refused`] |
//! | `dirgate_graphql_request_duration_seconds` (histogram) | `operation` | [`graphql_request`] |
//! | `dirgate_scim_requests_total` | `method`, `status`, `integration` (its id; `none` before the token names one) | [`scim_request`] |
//! | `dirgate_scim_request_duration_seconds` (histogram) | `method` | [`scim_request`] |
//! | `dirgate_rate_limited_total` | `edge` (graphql, scim) | [`rate_limited`] |
//! | `dirgate_sync_runs_total` | `provider`, `trigger`, `outcome` (succeeded, held, failed, cancelled) | [`sync_run`] |
//! | `dirgate_sync_run_duration_seconds` (histogram) | `provider`, `outcome` | [`sync_run`] |
//! | `dirgate_sync_users_written_total`, `dirgate_sync_groups_written_total` | `provider`, `change` (created, updated, suspended, archived, restored, removed) | [`sync_run`] |
//! | `dirgate_sync_pages_read_total` | `provider` | [`sync_run`] |
//! | `dirgate_sync_run_throttled_seconds` (histogram: a run's time paused by throttling) | `provider` | [`sync_run`] |
//! | `dirgate_sync_warnings_total` | `provider`, `action` (cleaned, truncated, skipped, ignored_member) | [`sync_run`] |
//! | `dirgate_provider_requests_total` | `provider`, `outcome` (ok, throttled, server_error, client_error, unreachable, unreadable) | [`provider_request`] |
//! | `dirgate_provider_retries_total` | `provider`, `reason` (throttled, server_error, unreachable, unreadable, token_expired) | [`provider_retry`] |
//! | `dirgate_provider_throttle_wait_seconds` (histogram: `_sum` is the time spent waiting) | `provider` | [`provider_retry`] |
//! | `dirgate_http_connections_displaced_total` (an unproven quiet connection closed to let a new one in) | | [`connection_evicted`] |
//! | `dirgate_http_connections_refused_total` (503: every connection busy or proven) | | [`connection_refused`] |
//! | `dirgate_webhook_deliveries_total` | `outcome` (ok, failed; unreadable: a leased endpoint whose row does not decode) | [`webhook_delivery`], [`webhook_endpoint_unreadable`] |
//! | `dirgate_db_pool_connections` (gauge, read at each scrape) | `state` (in_use, idle) | [`render`] |

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sea_orm::DatabaseConnection;
use std::{sync::OnceLock, time::Duration};

/// Histogram buckets for request and run durations, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder as the process's global recorder, once; later calls (a
/// second `App` in the same process, as in tests) share it.
pub fn install() {
    HANDLE.get_or_init(|| {
        #[allow(clippy::expect_used, reason = "BUCKETS is a non-empty constant")]
        let builder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .expect("the bucket list is not empty");
        match builder.install_recorder() {
            Ok(handle) => {
                describe();
                Some(handle)
            }
            Err(err) => {
                tracing::warn!(error = %err, "another metrics recorder is installed; /metrics stays empty");
                None
            }
        }
    });
}

fn describe() {
    describe_counter!(
        "dirgate_graphql_requests_total",
        "GraphQL requests that reached execution, by operation type and outcome code"
    );
    describe_histogram!(
        "dirgate_graphql_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to execute a GraphQL request"
    );
    describe_counter!(
        "dirgate_scim_requests_total",
        "SCIM requests by method, HTTP status and integration"
    );
    describe_histogram!(
        "dirgate_scim_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer a SCIM request"
    );
    describe_counter!(
        "dirgate_rate_limited_total",
        "Requests refused by a rate limit (HTTP 429)"
    );
    describe_counter!(
        "dirgate_sync_runs_total",
        "Finished sync runs by provider, trigger and outcome"
    );
    describe_histogram!(
        "dirgate_sync_run_duration_seconds",
        metrics::Unit::Seconds,
        "Duration of sync runs, from start to end"
    );
    describe_histogram!(
        "dirgate_sync_run_throttled_seconds",
        metrics::Unit::Seconds,
        "Time a sync run's reads were paused because the provider throttled them"
    );
    describe_counter!(
        "dirgate_sync_users_written_total",
        "Users written by sync runs, by change"
    );
    describe_counter!(
        "dirgate_sync_groups_written_total",
        "Groups written by sync runs, by change"
    );
    describe_counter!(
        "dirgate_sync_pages_read_total",
        "Provider pages read by sync runs"
    );
    describe_counter!(
        "dirgate_provider_requests_total",
        "HTTP requests to a provider's directory API, by outcome"
    );
    describe_counter!(
        "dirgate_provider_retries_total",
        "Provider requests sent again, by reason"
    );
    describe_histogram!(
        "dirgate_provider_throttle_wait_seconds",
        metrics::Unit::Seconds,
        "Waits because a provider throttled (its _sum is the time spent waiting)"
    );
    describe_counter!(
        "dirgate_http_connections_displaced_total",
        "Client connections that never sent a valid token, closed to make room at the connection cap"
    );
    describe_counter!(
        "dirgate_http_connections_refused_total",
        "Client connections answered 503 at the connection cap"
    );
    describe_gauge!(
        "dirgate_db_pool_connections",
        "Database pool connections by state, read at each scrape"
    );
}

/// The text exposition of every metric, with the database pool's gauges read now.
pub fn render(db: &DatabaseConnection) -> Option<String> {
    let handle = HANDLE.get()?.as_ref()?;
    if let Some((size, idle)) = pool_state(db) {
        gauge!("dirgate_db_pool_connections", "state" => "in_use")
            .set(f64::from(size) - idle as f64);
        gauge!("dirgate_db_pool_connections", "state" => "idle").set(idle as f64);
    }
    handle.run_upkeep();
    Some(handle.render())
}

/// (connections open, of which idle) of the database pool.
fn pool_state(db: &DatabaseConnection) -> Option<(u32, usize)> {
    match db.get_database_backend() {
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            Some((pool.size(), pool.num_idle()))
        }
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            Some((pool.size(), pool.num_idle()))
        }
        _ => None,
    }
}

/// One GraphQL request that reached execution.
pub fn graphql_request(operation: &'static str, code: &str, elapsed: Duration) {
    counter!("dirgate_graphql_requests_total", "operation" => operation, "code" => code.to_owned())
        .increment(1);
    histogram!("dirgate_graphql_request_duration_seconds", "operation" => operation)
        .record(elapsed.as_secs_f64());
}

/// One GraphQL request refused before execution (no token, rate limit, not a GraphQL
/// request): counted under operation `none`, with no duration.
pub fn graphql_refused(code: &'static str) {
    counter!("dirgate_graphql_requests_total", "operation" => "none", "code" => code).increment(1);
}

/// One SCIM request, answered with `status`.
pub fn scim_request(method: &str, status: u16, integration: Option<i64>, elapsed: Duration) {
    let integration = integration.map_or_else(|| "none".to_owned(), |id| id.to_string());
    counter!(
        "dirgate_scim_requests_total",
        "method" => method.to_owned(),
        "status" => status.to_string(),
        "integration" => integration
    )
    .increment(1);
    histogram!("dirgate_scim_request_duration_seconds", "method" => method.to_owned())
        .record(elapsed.as_secs_f64());
}

/// A request refused by the rate limit of `edge` (`graphql` or `scim`).
pub fn rate_limited(edge: &'static str) {
    counter!("dirgate_rate_limited_total", "edge" => edge).increment(1);
}

/// A connection that took the place of a quiet unproven one (`http::slots`).
pub fn connection_evicted() {
    counter!("dirgate_http_connections_displaced_total").increment(1);
}

/// A connection answered 503 because every connection was busy or proven.
pub fn connection_refused() {
    counter!("dirgate_http_connections_refused_total").increment(1);
}

/// What one finished sync run did, for [`sync_run`].
pub struct RunFigures {
    pub provider: &'static str,
    pub trigger: &'static str,
    pub outcome: &'static str,
    pub elapsed: Duration,
    pub pages_read: u64,
    /// Time the run's reads were paused by the provider's throttling.
    pub throttled: Duration,
    /// (change, count) for users, then for groups.
    pub users: [(&'static str, u64); 6],
    pub groups: [(&'static str, u64); 3],
    /// (action, count) of the run's warnings.
    pub warnings: [(&'static str, u64); 4],
}

/// One finished sync run.
pub fn sync_run(run: &RunFigures) {
    let provider = run.provider;
    counter!(
        "dirgate_sync_runs_total",
        "provider" => provider,
        "trigger" => run.trigger,
        "outcome" => run.outcome
    )
    .increment(1);
    histogram!(
        "dirgate_sync_run_duration_seconds",
        "provider" => provider,
        "outcome" => run.outcome
    )
    .record(run.elapsed.as_secs_f64());
    counter!("dirgate_sync_pages_read_total", "provider" => provider).increment(run.pages_read);
    histogram!("dirgate_sync_run_throttled_seconds", "provider" => provider)
        .record(run.throttled.as_secs_f64());
    for (change, n) in run.users {
        counter!("dirgate_sync_users_written_total", "provider" => provider, "change" => change)
            .increment(n);
    }
    for (change, n) in run.groups {
        counter!("dirgate_sync_groups_written_total", "provider" => provider, "change" => change)
            .increment(n);
    }
    for (action, n) in run.warnings {
        counter!("dirgate_sync_warnings_total", "provider" => provider, "action" => action)
            .increment(n);
    }
}

/// One webhook delivery attempt, by outcome.
pub fn webhook_delivery(ok: bool) {
    counter!("dirgate_webhook_deliveries_total", "outcome" => if ok { "ok" } else { "failed" })
        .increment(1);
}

/// A leased webhook endpoint whose row did not decode (it is not delivered).
pub fn webhook_endpoint_unreadable() {
    counter!("dirgate_webhook_deliveries_total", "outcome" => "unreadable").increment(1);
}

/// One HTTP request to a provider's directory API, by outcome.
pub fn provider_request(provider: &'static str, outcome: &'static str) {
    counter!("dirgate_provider_requests_total", "provider" => provider, "outcome" => outcome)
        .increment(1);
}

/// A provider request about to be sent again after `wait`, for `reason`.
pub fn provider_retry(provider: &'static str, reason: &'static str, wait: Duration) {
    counter!("dirgate_provider_retries_total", "provider" => provider, "reason" => reason)
        .increment(1);
    if reason == "throttled" {
        histogram!("dirgate_provider_throttle_wait_seconds", "provider" => provider)
            .record(wait.as_secs_f64());
    }
}
