//! A provider API session: an access token kept fresh from the refresh token, and GETs of JSON
//! with retries: every call waits its turn at the session's [`Throttle`] (AIMD); throttling
//! (429, Google quota 403s) pauses all of the session's calls for `Retry-After` (or a
//! backoff), halves the calls allowed in flight and does not fail; 5xx, connection failures, a connection cut mid-body and a body that is not
//! the promised JSON are retried a bounded number of times (one budget for all of them), after
//! which an unreadable body is `Malformed`, naming the URL; a body past `max_page_bytes` is
//! `Malformed` at once, never read whole; a 401 is retried once after a refresh; a refused
//! refresh is `NeedsReauth`.

use super::retry::{Failure, How, Next, Retries};
use super::{
    ProviderError, Settings, oauth,
    throttle::{Throttle, ThrottleStats},
};
use entity::enums::DirectoryKind;
use reqwest::{StatusCode, header};
use serde::de::DeserializeOwned;
use std::{sync::Arc, time::Duration};
use tokio::sync::Mutex;

/// One integration's authenticated session with its provider.
pub struct Session {
    http: reqwest::Client,
    settings: Settings,
    kind: DirectoryKind,
    tenant: Option<String>,
    refresh_token: Mutex<String>,
    access_token: Mutex<Option<String>>,
    rotated: std::sync::Mutex<Option<String>>,
    on_rotate: Option<OnRotate>,
    /// Every Directory API call of this session waits its turn here.
    throttle: Throttle,
}

/// Stores a rotated refresh token; called before the new grant is used, since the provider may
/// have spent the old one already.
pub type OnRotate =
    Arc<dyn Fn(String) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

impl Session {
    /// A session that will get its access tokens from `refresh_token`.
    pub fn new(
        http: reqwest::Client,
        settings: Settings,
        kind: DirectoryKind,
        tenant: Option<String>,
        refresh_token: String,
    ) -> Self {
        let concurrency = match kind {
            DirectoryKind::GoogleWorkspace => settings.google_concurrency,
            _ => settings.entra_concurrency,
        };
        Self {
            throttle: Throttle::new(concurrency),
            http,
            settings,
            kind,
            tenant,
            refresh_token: Mutex::new(refresh_token),
            access_token: Mutex::new(None),
            rotated: std::sync::Mutex::new(None),
            on_rotate: None,
        }
    }

    /// Calls `store` with every rotated refresh token as soon as the provider issues it, so a
    /// process that dies mid-sync leaves the live token behind, not the spent one.
    pub fn on_rotate(mut self, store: OnRotate) -> Self {
        self.on_rotate = Some(store);
        self
    }

    /// The provider's name, for errors.
    /// The `provider` label of this session's metrics.
    fn metric_label(&self) -> &'static str {
        match self.kind {
            DirectoryKind::GoogleWorkspace => "google",
            _ => "entra",
        }
    }

    pub fn provider(&self) -> &'static str {
        match self.kind {
            DirectoryKind::GoogleWorkspace => "Google",
            _ => "Microsoft",
        }
    }

    /// What this session's throttle saw: time paused by the provider's throttling, retries.
    pub fn throttle_stats(&self) -> ThrottleStats {
        self.throttle.stats()
    }

    /// The refresh token the provider rotated to, if it did since the last call: the caller
    /// must store it, the old one is spent.
    pub fn take_rotated_refresh_token(&self) -> Option<String> {
        self.rotated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    async fn access_token(&self) -> Result<String, ProviderError> {
        let mut access = self.access_token.lock().await;
        if let Some(token) = access.as_ref() {
            return Ok(token.clone());
        }
        let token = self.refresh().await?;
        *access = Some(token.clone());
        Ok(token)
    }

    async fn refresh(&self) -> Result<String, ProviderError> {
        let mut refresh_token = self.refresh_token.lock().await;
        let grant = oauth::refresh(
            &self.http,
            &self.settings,
            self.kind,
            self.tenant.as_deref(),
            &refresh_token,
        )
        .await?;
        if let Some(new) = grant.refresh_token.filter(|new| *new != *refresh_token) {
            *refresh_token = new.clone();
            if let Some(store) = &self.on_rotate {
                store(new.clone()).await;
            }
            *self.rotated.lock().unwrap_or_else(|e| e.into_inner()) = Some(new);
        }
        Ok(grant.access_token)
    }

    /// GETs `url` and parses its JSON body as `T`, retrying as the module says.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, ProviderError> {
        self.get_json_with(url, &[]).await
    }

    /// [`Session::get_json`] with extra request headers (Graph's `Prefer: odata.maxpagesize`).
    pub async fn get_json_with<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
    ) -> Result<T, ProviderError> {
        let mut retries = Retries::new(&self.settings.retry);
        loop {
            let token = self.access_token().await?;
            let permit = self.throttle.acquire().await;
            let failure = match self.attempt(url, headers, &token).await {
                Attempt::Page(value) => {
                    permit.succeeded();
                    return Ok(value);
                }
                Attempt::Failed(error) => return Err(error),
                Attempt::Again(failure) => failure,
            };
            let (reason, wait, how) = match retries.next(failure) {
                Next::GiveUp(error) => return Err(error),
                Next::Again { reason, wait, how } => (reason, wait, how),
            };
            self.throttle.retried();
            crate::metrics::provider_retry(self.metric_label(), reason, wait);
            match how {
                How::Refresh => *self.access_token.lock().await = None,
                How::Pause => {
                    tracing::info!(
                        url,
                        ?wait,
                        "throttled by the provider; every read of the integration waits"
                    );
                    // The pause holds back this call's retry and every other call alike.
                    permit.throttled(wait);
                }
                How::Sleep => {
                    drop(permit);
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// One GET of `url`: the page, a failure for good, or one the retry policy may retry.
    async fn attempt<T: DeserializeOwned>(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        token: &str,
    ) -> Attempt<T> {
        let label = self.metric_label();
        let count = |outcome| crate::metrics::provider_request(label, outcome);
        let mut request = self.http.get(url).bearer_auth(token);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                count("unreachable");
                let (provider, url, detail) = (self.provider(), url.to_owned(), err.to_string());
                return Attempt::Again(Failure::Transient {
                    reason: "unreachable",
                    retry_after: None,
                    error: Box::new(move |_| ProviderError::Unreachable {
                        provider,
                        url,
                        detail,
                    }),
                });
            }
        };
        let status = response.status();
        if status.is_success() {
            return self.read_page(url, response).await;
        }
        let retry_after =
            retry_after(response.headers()).map(|d| d.min(self.settings.retry.max_retry_after));
        // An error body is read for its code and message only: a bounded prefix.
        let body = read_capped(response, MAX_ERROR_BODY_BYTES)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let reason = ErrorBody::parse(&body);
        count(if reason.is_throttling(status) {
            "throttled"
        } else if status.is_server_error() {
            "server_error"
        } else {
            "client_error"
        });
        self.error_answer(url, status, retry_after, reason)
    }

    /// A successful answer's body as `T`. Reading a page is an idempotent GET: a connection
    /// cut mid-body or a page that does not parse is read again, within the budget of a 5xx.
    async fn read_page<T: DeserializeOwned>(
        &self,
        url: &str,
        response: reqwest::Response,
    ) -> Attempt<T> {
        let max = self.settings.max_page_bytes;
        let parsed = match read_capped(response, max).await {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| e.to_string()),
            Err(BodyError::TooBig) => {
                return Attempt::Failed(ProviderError::Malformed {
                    provider: self.provider(),
                    url: url.to_owned(),
                    detail: format!("the page is larger than {max} bytes"),
                });
            }
            Err(BodyError::Cut(e)) => Err(format!("the body could not be read: {e}")),
        };
        let label = self.metric_label();
        match parsed {
            Ok(value) => {
                crate::metrics::provider_request(label, "ok");
                Attempt::Page(value)
            }
            Err(detail) => {
                crate::metrics::provider_request(label, "unreadable");
                tracing::warn!(url, detail, "an unreadable page; reading it again");
                let (provider, url) = (self.provider(), url.to_owned());
                Attempt::Again(Failure::Transient {
                    reason: "unreadable",
                    retry_after: None,
                    error: Box::new(move |times| ProviderError::Malformed {
                        provider,
                        url,
                        detail: format!("{detail} (read {times} times)"),
                    }),
                })
            }
        }
    }

    /// What an error answer means: the delta is gone, the token or the grant was refused,
    /// the provider throttles, a 5xx to retry, or any other client error for good.
    fn error_answer<T>(
        &self,
        url: &str,
        status: StatusCode,
        retry_after: Option<Duration>,
        reason: ErrorBody,
    ) -> Attempt<T> {
        let provider = self.provider();
        let http_error = {
            let url = url.to_owned();
            move |detail: String| ProviderError::Http {
                provider,
                url,
                status: status.as_u16(),
                detail,
            }
        };
        if status == StatusCode::GONE
            || matches!(
                reason.reason.as_str(),
                "syncStateNotFound" | "resyncRequired"
            )
        {
            return Attempt::Failed(ProviderError::DeltaExpired {
                provider,
                detail: reason.message,
            });
        }
        if status == StatusCode::UNAUTHORIZED {
            let detail = format!("{url} refused a fresh access token: {}", reason.message);
            return Attempt::Again(Failure::TokenRefused(ProviderError::NeedsReauth {
                provider,
                detail,
            }));
        }
        if reason.is_throttling(status) {
            let message = reason.message;
            return Attempt::Again(Failure::Throttled {
                retry_after,
                error: Box::new(move |times| {
                    http_error(format!("still throttled after {times} waits: {message}"))
                }),
            });
        }
        if status == StatusCode::FORBIDDEN {
            return Attempt::Failed(ProviderError::NeedsReauth {
                provider,
                detail: format!(
                    "the signed-in account may no longer read the directory: {}",
                    reason.message
                ),
            });
        }
        if status.is_server_error() {
            let message = reason.message;
            return Attempt::Again(Failure::Transient {
                reason: "server_error",
                retry_after,
                error: Box::new(move |times| {
                    http_error(format!("failed {times} times: {message}"))
                }),
            });
        }
        Attempt::Failed(http_error(reason.message))
    }
}

/// What one attempt at a page came to.
enum Attempt<T> {
    Page(T),
    /// Failed for good: no retry can help.
    Failed(ProviderError),
    /// Failed in a way the retry policy may retry.
    Again(Failure),
}

/// The most of an error answer's body read (its JSON code and message come first).
const MAX_ERROR_BODY_BYTES: usize = 64 << 10;

/// Why a body was not read whole.
enum BodyError {
    /// Past the cap (announced by `Content-Length`, or found while reading).
    TooBig,
    /// The connection failed mid-body.
    Cut(reqwest::Error),
}

/// Reads a response body of at most `max` bytes, chunk by chunk, so a provider (or whatever
/// answers at its URL) cannot make dirgate hold more than that.
async fn read_capped(mut response: reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooBig);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Cut)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooBig);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `Retry-After` in seconds (the form Graph and Google send).
fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The parts of a Graph or Google error body that matter.
struct ErrorBody {
    message: String,
    /// Graph's `error.code` or Google's `error.errors[0].reason`.
    reason: String,
}

impl ErrorBody {
    fn parse(body: &str) -> Self {
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let error = &json["error"];
        let message = error["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| body.chars().take(200).collect());
        let reason = error["errors"][0]["reason"]
            .as_str()
            .or_else(|| error["code"].as_str())
            .unwrap_or_default()
            .to_owned();
        Self { message, reason }
    }

    fn is_throttling(&self, status: StatusCode) -> bool {
        status == StatusCode::TOO_MANY_REQUESTS
            || (status == StatusCode::FORBIDDEN
                && matches!(
                    self.reason.as_str(),
                    "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded"
                ))
    }
}
