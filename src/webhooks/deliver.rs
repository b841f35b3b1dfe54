//! The delivery worker: takes endpoints with events to deliver under a lease (`FOR UPDATE
//! SKIP LOCKED` on PostgreSQL, so processes sharing the database split them; SQLite has one
//! writer), posts their events in order, signed per Standard Webhooks, and moves each
//! endpoint's cursor. A failure holds the endpoint's later events back and is retried on the
//! schedule (`--webhook-retry-ms`, about 28 hours, with jitter); past its end the endpoint is
//! disabled and says why. Every attempt is recorded.
//!
//! At least once: an event is posted, then the cursor moves; a process that dies between the
//! two leaves the event to be posted again, with the same `webhook-id`, by whoever takes the
//! endpoint once the lease runs out.

use super::{is_public, secret_of, types_of};
use crate::{
    directory::{events, now},
    error::{DomainError, DomainResult},
    services::Services,
    store::{self, webhooks::Next},
};
use entity::{directory_event, webhook_attempt, webhook_endpoint};
use futures_util::{StreamExt, stream::FuturesUnordered};

use sea_orm::{DatabaseConnection, Set};
use std::{sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// Events posted per lease, at most.
const BATCH: u64 = 20;
/// The time a receiver has to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer read (it is not used; reading it lets the connection be reused).
const MAX_ANSWER_BYTES: usize = 64 << 10;
/// Endpoints one process delivers at once, at most.
const IN_FLIGHT: usize = 32;

/// What the worker needs.
#[derive(Clone)]
pub struct Deliverer {
    pub db: DatabaseConnection,
    /// The secret box opens the endpoints' signing secrets.
    pub services: Arc<Services>,
    pub allow_private: bool,
    pub retry_ms: Vec<u64>,
    /// This process, as lease owner.
    pub owner: String,
    /// How long a lease lasts (`--webhook-lease-seconds`): a batch ([`BATCH`] posts of at
    /// most [`TIMEOUT`] each) should end within it.
    pub lease: Duration,
}

/// Delivers until `stop`. Each endpoint is delivered on its own, up to [`IN_FLIGHT`] at once:
/// a slow or dead receiver holds only its own delivery (at most [`TIMEOUT`] an attempt, then
/// its retry schedule), never another endpoint's, and each endpoint's events still go in
/// order (one delivery of it at a time, under its lease). A freed slot, a new event or the
/// poll interval claims more.
pub async fn run(deliverer: Deliverer, stop: CancellationToken) {
    let mut failures = crate::error::FailureLog::default();
    let mut delivering = FuturesUnordered::new();
    // The endpoints being delivered here: one whose lease ran out mid-batch and was claimed
    // again is not delivered twice at once.
    let mut in_flight = std::collections::HashSet::new();
    loop {
        if stop.is_cancelled() {
            return;
        }
        let room = IN_FLIGHT - delivering.len();
        let claimed = if room == 0 {
            0
        } else {
            match deliverer.claim(room).await {
                Ok(endpoints) => {
                    failures.succeeded("webhook delivery");
                    let n = endpoints.len();
                    for endpoint in endpoints {
                        if in_flight.insert(endpoint.id) {
                            delivering.push(deliverer.deliver_one(endpoint));
                        }
                    }
                    n
                }
                Err(err) => {
                    failures.failed("webhook delivery could not claim endpoints; retrying", &err);
                    0
                }
            }
        };
        // A full claim may leave more due endpoints: claim again at once.
        if claimed > 0 && claimed == room {
            continue;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            Some(id) = delivering.next(), if !delivering.is_empty() => {
                in_flight.remove(&id);
            }
            () = events::written_or_poll() => {}
        }
    }
}

/// The outcome of one post.
struct Posted {
    status: Option<u16>,
    error: Option<String>,
    latency_ms: i32,
}

impl Posted {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

impl Deliverer {
    /// Delivers one claimed endpoint; a failure of dirgate's own (not the receiver's) releases
    /// its lease, so it is taken again.
    async fn deliver_one(&self, endpoint: webhook_endpoint::Model) -> i64 {
        let id = endpoint.id;
        if let Err(err) = self.deliver(endpoint).await {
            tracing::warn!(endpoint = id, error = %err, "webhook delivery failed");
            self.release(id).await.ok();
        }
        id
    }

    /// Leases up to `most` endpoints that are due and not leased.
    async fn claim(&self, most: usize) -> DomainResult<Vec<webhook_endpoint::Model>> {
        let at = now();
        let until = at + chrono::Duration::from_std(self.lease).unwrap_or_default();
        store::webhooks::claim(&self.db, &self.owner, until, at, most).await
    }

    /// Posts the endpoint's next events, in order, until one fails or the batch ends.
    async fn deliver(&self, endpoint: webhook_endpoint::Model) -> DomainResult<()> {
        let filter = events::EventFilter {
            types: types_of(&endpoint),
            integration: None,
        };
        let read = events::read(&self.db, endpoint.cursor_seq, BATCH, &filter).await?;
        let secret = secret_of(&self.services.secrets, &endpoint)?;
        let signer = standardwebhooks::Webhook::new(&secret)
            .map_err(|e| DomainError::Internal(Arc::new(SignerError(e.to_string()))))?;
        let client = self.client_for(&endpoint.url).await;
        // The attempt number of an event: the first of the batch is the one that failed
        // `endpoint.attempt` times before; the others are new.
        let retried = read.items.first().map(|e| e.seq);
        let attempt_at = |seq: i64| {
            if Some(seq) == retried {
                endpoint.attempt + 1
            } else {
                1
            }
        };
        let mut cursor = endpoint.cursor_seq;
        let mut attempts = Vec::new();
        let mut failed: Option<(i64, i32, Posted)> = None;
        for event in &read.items {
            let posted = match &client {
                Ok(client) => post(client, &signer, &endpoint.url, event).await,
                Err(why) => Posted {
                    status: None,
                    error: Some(why.clone()),
                    latency_ms: 0,
                },
            };
            attempts.push(webhook_attempt::ActiveModel {
                endpoint_id: Set(endpoint.id),
                event_seq: Set(event.seq),
                attempt: Set(attempt_at(event.seq)),
                status_code: Set(posted.status.map(i32::from)),
                latency_ms: Set(posted.latency_ms),
                error: Set(posted.error.clone()),
                attempted_at: Set(now()),
                ..Default::default()
            });
            crate::metrics::webhook_delivery(posted.ok());
            if !posted.ok() {
                failed = Some((event.seq, attempt_at(event.seq), posted));
                break;
            }
            cursor = event.seq;
        }
        if failed.is_none() {
            // Every wanted event up to where the read went was delivered; the unwanted ones
            // between are passed over.
            cursor = read.through;
        }
        let at = now();
        let next = match failed {
            None => Next::Delivered,
            Some((seq, attempt, posted)) => {
                self.after_failure(&endpoint, seq, attempt, &posted, at)
            }
        };
        store::webhooks::finish(
            &self.db,
            endpoint.id,
            &self.owner,
            attempts,
            cursor,
            next,
            at,
        )
        .await?;
        Ok(())
    }

    /// Where an endpoint goes after an event's `attempt`th failure: the next try on the retry
    /// schedule, or, past its end, disabled with the reason.
    fn after_failure(
        &self,
        endpoint: &webhook_endpoint::Model,
        seq: i64,
        attempt: i32,
        posted: &Posted,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Next {
        if let Some(wait) = self.retry_ms.get(attempt as usize - 1) {
            return Next::Retry {
                attempt,
                at: at + chrono::Duration::milliseconds(jittered(*wait) as i64),
            };
        }
        let last = posted.status.map_or_else(
            || posted.error.clone().unwrap_or_default(),
            |s| format!("HTTP {s}"),
        );
        tracing::warn!(
            endpoint = endpoint.id,
            "webhook endpoint disabled after its retries"
        );
        Next::Disable {
            attempt,
            reason: format!(
                "disabled after {attempt} failed attempts at event {seq} over the retry schedule; the last: {last}"
            ),
        }
    }

    /// Lets go of an endpoint without moving it.
    async fn release(&self, id: i64) -> DomainResult<()> {
        store::webhooks::release(&self.db, id, &self.owner).await
    }

    /// An HTTP client that follows no redirect and connects only where the URL's host resolves
    /// to a public address (checked here, then pinned, so a name cannot resolve elsewhere
    /// between the check and the connection), unless private URLs are allowed.
    async fn client_for(&self, raw: &str) -> Result<reqwest::Client, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("the URL does not parse: {e}"))?;
        let builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT);
        if self.allow_private {
            return builder.build().map_err(|e| e.to_string());
        }
        let host = url.host_str().ok_or("the URL has no host")?.to_owned();
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .collect();
        let public = addrs
            .into_iter()
            .find(|a| is_public(a.ip()))
            .ok_or_else(|| format!("{host} resolves to no public address"))?;
        builder
            .resolve(&host, public)
            .build()
            .map_err(|e| e.to_string())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("webhook signer: {0}")]
struct SignerError(String);

/// `wait` ± 10%.
fn jittered(wait: u64) -> u64 {
    use rand::Rng;
    let spread = wait / 10;
    if spread == 0 {
        return wait;
    }
    wait - spread + rand::thread_rng().gen_range(0..=2 * spread)
}

/// The body of an event's webhook: `{"type", "timestamp", "data"}` as Standard Webhooks
/// recommends, `data` holding the event as the `events` feed shows it.
pub fn body(event: &directory_event::Model) -> String {
    use crate::directory::ids::global_id;
    let data: serde_json::Value = serde_json::from_str(&event.data).unwrap_or_default();
    serde_json::json!({
        "type": event.event_type,
        "timestamp": event.occurred_at,
        "data": {
            "id": global_id("DirectoryEvent", event.seq),
            "sequence": event.seq.to_string(),
            "integrationId": event.integration_id.map(|id| global_id("Integration", id)),
            "objectType": event.object_type,
            "objectId": global_id(&event.object_type, event.object_id),
            "object": data.get("object"),
            "state": data.get("state"),
            "changedFields": data.get("changedFields"),
        }
    })
    .to_string()
}

/// The `webhook-id` of an event: the same on every attempt.
pub fn message_id(event: &directory_event::Model) -> String {
    format!("evt_{}", event.seq)
}

async fn post(
    client: &reqwest::Client,
    signer: &standardwebhooks::Webhook,
    url: &str,
    event: &directory_event::Model,
) -> Posted {
    let body = body(event);
    let id = message_id(event);
    let timestamp = chrono::Utc::now().timestamp();
    let signature = match signer.sign(&id, timestamp, body.as_bytes()) {
        Ok(s) => s,
        Err(e) => {
            return Posted {
                status: None,
                error: Some(format!("cannot sign: {e}")),
                latency_ms: 0,
            };
        }
    };
    let started = std::time::Instant::now();
    let sent = client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let result = match sent {
        Ok(mut response) => {
            let status = response.status().as_u16();
            let mut read = 0usize;
            while let Ok(Some(chunk)) = response.chunk().await {
                read += chunk.len();
                if read > MAX_ANSWER_BYTES {
                    break;
                }
            }
            let error = (!(200..300).contains(&status)).then(|| format!("HTTP {status}"));
            (Some(status), error)
        }
        Err(e) => (None, Some(e.to_string())),
    };
    Posted {
        status: result.0,
        error: result.1,
        latency_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
    }
}

#[cfg(test)]
mod tests {
    /// The Standard Webhooks spec's own test vector, verified through the crate dirgate signs
    /// with.
    #[test]
    fn signatures_match_the_spec_vector() {
        let wh = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = wh
            .sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#,
            )
            .unwrap();
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn jitter_stays_within_a_tenth() {
        for _ in 0..100 {
            let j = super::jittered(1000);
            assert!((900..=1100).contains(&j), "{j}");
        }
        assert_eq!(super::jittered(5), 5);
    }
}
