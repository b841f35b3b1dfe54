//! A fake directory server speaking the wire formats of the Microsoft identity platform and
//! Graph, and of Google OAuth and the Admin SDK Directory API, so dirgate's real clients run
//! against it in tests, benchmarks and the demo. A control API under `/_control` changes the
//! directory and injects faults.

// Handlers return ready `Response`s as their errors; boxing them buys nothing here.
#![allow(clippy::result_large_err)]

pub mod control;
pub mod google;
pub mod graph;
pub mod model;
pub mod oauth;

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
pub use model::{Directory, Group, Hr, Kind, Tenant, User};
use serde::{Deserialize, Serialize};
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

/// An authorization code not yet exchanged.
#[derive(Debug, Clone)]
pub(crate) struct Code {
    pub tenant: String,
    pub account: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub challenge: String,
    pub scopes: String,
    pub offline: bool,
    pub expires: Instant,
}

/// A grant: what a refresh token stands for.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub tenant: String,
    pub account: String,
    pub client_id: String,
    pub scopes: String,
}

/// What a fault does to a request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status (and `Retry-After`, when given) in the provider's error format.
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<u64>,
        /// Google's `reason`, e.g. `rateLimitExceeded`, `userRateLimitExceeded`.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Wait this long before answering normally.
    Slow { millis: u64 },
    /// Answer normally, but cut the body in half.
    Truncated,
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Answer normally, but reset the connection halfway through the body (the length
    /// announced, half of it sent).
    Reset,
}

/// A fault for the next `count` requests whose path starts with `route`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    pub route: String,
    pub count: u32,
    #[serde(flatten)]
    pub action: FaultAction,
}

#[derive(Default)]
pub(crate) struct State_ {
    pub dir: Directory,
    pub codes: HashMap<String, Code>,
    pub refresh: HashMap<String, Grant>,
    /// Access token → (tenant key, account).
    pub access: HashMap<String, (String, String)>,
    pub faults: Vec<Fault>,
    /// Requests served, by path.
    pub requests: HashMap<String, u64>,
    /// Added to every Directory API call (Graph `/v1.0/`, Google `/admin/`), as a real
    /// provider's round trip.
    pub latency: Duration,
    /// Directory API calls answered at once with 429 (`Retry-After: 1`) while this many are
    /// in flight already; `None`: no quota.
    pub quota: Option<usize>,
    /// Directory API calls in flight now, and the most seen at once.
    pub in_flight: usize,
    pub max_in_flight: usize,
    /// Calls refused by the quota.
    pub throttled: u64,
    /// Directory API calls received, refused ones included.
    pub calls: u64,
}

/// The fake server's shared state. Cheap to clone.
#[derive(Clone, Default)]
pub struct Fake {
    state: Arc<Mutex<State_>>,
}

impl Fake {
    /// A fake holding `dir`.
    pub fn new(dir: Directory) -> Self {
        Self {
            state: Arc::new(Mutex::new(State_ {
                dir,
                ..Default::default()
            })),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State_> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the directory as it is now.
    pub fn directory(&self) -> Directory {
        self.lock().dir.clone()
    }

    /// Changes the directory in place.
    pub fn edit<T>(&self, f: impl FnOnce(&mut Directory) -> T) -> T {
        f(&mut self.lock().dir)
    }

    /// Adds a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Every Directory API call waits `latency` before it is answered (the benchmarks' and
    /// tests' stand-in for a provider 50–300 ms away).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Refuses Directory API calls with 429 while `max` are in flight (`None`: no quota).
    pub fn set_quota(&self, max: Option<usize>) {
        self.lock().quota = max;
    }

    /// (the most Directory API calls in flight at once, calls refused by the quota).
    pub fn concurrency(&self) -> (usize, u64) {
        let state = self.lock();
        (state.max_in_flight, state.throttled)
    }

    /// Directory API calls received so far, and in flight now.
    pub fn calls(&self) -> (u64, usize) {
        let state = self.lock();
        (state.calls, state.in_flight)
    }

    /// How many requests were served on `path` (`PATH?latest`: those asking Graph's
    /// `$deltatoken=latest`).
    pub fn requests(&self, path: &str) -> u64 {
        self.lock().requests.get(path).copied().unwrap_or(0)
    }

    /// Revokes every grant of a tenant (by key): refresh tokens stop working at once.
    pub fn revoke(&self, tenant: &str) {
        let mut state = self.lock();
        state.refresh.retain(|_, g| g.tenant != tenant);
        state.access.retain(|_, (t, _)| t != tenant);
    }

    /// The router serving every route of the fake.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(oauth::routes())
            .merge(graph::routes())
            .merge(google::routes())
            .merge(control::routes())
            .layer(middleware::from_fn_with_state(self.clone(), faults))
            .with_state(self.clone())
    }

    /// Serves on `addr` until the process ends; returns the bound address once listening.
    pub async fn spawn(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(bound)
    }
}

/// A Directory API call under the fake's latency and quota.
async fn paced(fake: &Fake, request: Request, next: Next) -> Response {
    let latency = {
        let mut state = fake.lock();
        state.calls += 1;
        if state.quota.is_some_and(|max| state.in_flight >= max) {
            state.throttled += 1;
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, "1")],
                "{\"error\":{\"code\":\"TooManyRequests\",\"message\":\"quota exceeded\"}}",
            )
                .into_response();
        }
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        state.latency
    };
    /// Leaves the in-flight count when the call ends, however it ends.
    struct Leave(Fake);
    impl Drop for Leave {
        fn drop(&mut self) {
            self.0.lock().in_flight -= 1;
        }
    }
    let _leave = Leave(fake.clone());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    next.run(request).await
}

/// Counts requests and applies injected faults.
async fn faults(State(fake): State<Fake>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let action = {
        let mut state = fake.lock();
        *state.requests.entry(path.clone()).or_default() += 1;
        // Graph's `$deltatoken=latest` (a link from now on, no enumeration) counts apart too,
        // as `PATH?latest`.
        if request
            .uri()
            .query()
            .is_some_and(|q| q.contains("deltatoken=latest"))
        {
            *state.requests.entry(format!("{path}?latest")).or_default() += 1;
        }
        let found = state
            .faults
            .iter_mut()
            .find(|f| f.count > 0 && path.starts_with(&f.route));
        found.map(|f| {
            f.count -= 1;
            f.action.clone()
        })
    };
    let google = path.starts_with("/admin/");
    if action.is_none() && (google || path.starts_with("/v1.0/")) {
        return paced(&fake, request, next).await;
    }
    match action {
        None => next.run(request).await,
        Some(FaultAction::Slow { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            next.run(request).await
        }
        Some(FaultAction::Malformed) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"value\": [ this is not json",
        )
            .into_response(),
        Some(FaultAction::Truncated) => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            let mut parts = parts;
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(cut))
        }
        Some(FaultAction::Reset) => {
            let response = next.run(request).await;
            let (mut parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            parts
                .headers
                .insert(header::CONTENT_LENGTH, bytes.len().into());
            let half = bytes.slice(..bytes.len() / 2);
            let chunks: Vec<Result<axum::body::Bytes, std::io::Error>> = vec![
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                )),
            ];
            Response::from_parts(parts, Body::from_stream(futures_util::stream::iter(chunks)))
        }
        Some(FaultAction::Status {
            status,
            retry_after,
            reason,
        }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut headers = HeaderMap::new();
            if let Some(secs) = retry_after {
                headers.insert(header::RETRY_AFTER, secs.into());
            }
            let body = if google {
                google::error_body(
                    status,
                    reason.as_deref().unwrap_or("backendError"),
                    "Injected fault",
                )
            } else {
                graph::error_body(graph_code(status), "Injected fault")
            };
            (status, headers, axum::Json(body)).into_response()
        }
    }
}

fn graph_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        429 => "TooManyRequests",
        503 => "serviceNotAvailable",
        401 => "InvalidAuthenticationToken",
        403 => "Authorization_RequestDenied",
        _ => "generalException",
    }
}

/// `http://HOST` of a request, for the links a page carries.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// A random token of `bytes` random bytes, base64url.
pub(crate) fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// The bearer token of a request, and the tenant and account it was issued for.
pub(crate) fn bearer(fake: &Fake, headers: &HeaderMap) -> Option<(String, String)> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    fake.lock().access.get(token).cloned()
}

/// An offset-based page token that also names the tenant's delta epoch.
pub(crate) fn page_token(offset: usize) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("o:{offset}"))
}

/// Reads a [`page_token`]; `None` when malformed.
pub(crate) fn read_page_token(token: &str) -> Option<usize> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("o:")?
        .parse()
        .ok()
}
