//! `WebhookEndpoint` and `WebhookDelivery`: a URL that receives directory events, and one
//! attempt at delivering one (read and managed by ADMIN tokens only: `graphql/webhooks.rs`).

use super::DirectoryEvent;
use crate::{
    graphql::{
        context::ContextExt,
        event_types::DirectoryEventType,
        ids,
        loaders::{NodeKey, NodeRow},
    },
    webhooks,
};
use async_graphql::{ComplexObject, Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_endpoint};

/// The type name in a webhook endpoint's global id.
pub const KIND: &str = "WebhookEndpoint";

/// Where directory change events are delivered, signed per Standard Webhooks.
pub struct WebhookEndpoint(pub webhook_endpoint::Model);

/// One delivery attempt.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct WebhookDelivery {
    #[graphql(skip)]
    seq: i64,
    /// The event's `sequence`.
    pub event_sequence: String,
    /// 1 for the first attempt at this event.
    pub attempt: i32,
    /// The receiver's HTTP status; null when no answer came.
    pub status_code: Option<i32>,
    /// How long the receiver took to answer, in milliseconds.
    pub latency_ms: i32,
    /// Why it failed (the status, or the connection error); null when it succeeded.
    pub error: Option<String>,
    /// When the delivery was tried.
    pub attempted_at: DateTime<Utc>,
}

impl From<webhook_attempt::Model> for WebhookDelivery {
    fn from(m: webhook_attempt::Model) -> Self {
        Self {
            seq: m.event_seq,
            event_sequence: m.event_seq.to_string(),
            attempt: m.attempt,
            status_code: m.status_code,
            latency_ms: m.latency_ms,
            error: m.error,
            attempted_at: m.attempted_at,
        }
    }
}

#[ComplexObject]
impl WebhookDelivery {
    /// The event delivered, while it is kept (events are pruned after their retention);
    /// null after that, when `eventSequence` still names it.
    async fn event(&self, ctx: &Context<'_>) -> Result<Option<DirectoryEvent>> {
        let found = ctx
            .loaders()
            .load_one(NodeKey::DirectoryEvent(self.seq))
            .await?;
        Ok(match found {
            Some(NodeRow::DirectoryEvent(m)) => Some(DirectoryEvent(m)),
            _ => None,
        })
    }
}

/// A URL that receives directory events, signed per Standard Webhooks, in order and at least
/// once; with its event types, delivery state and recent attempts.
#[Object]
impl WebhookEndpoint {
    /// The endpoint's global id.
    pub async fn id(&self) -> ID {
        ids::encode(KIND, self.0.id)
    }

    /// Where events are posted.
    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The event types delivered; empty: every type.
    async fn types(&self) -> Vec<DirectoryEventType> {
        webhooks::types_of(&self.0)
            .iter()
            .filter_map(|t| DirectoryEventType::of_wire(t))
            .collect()
    }

    /// False once disabled (by an admin, or after failing the whole retry schedule).
    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// Why it is disabled.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// The `sequence` of the last event delivered (or passed over as not wanted).
    async fn delivered_through(&self) -> String {
        self.0.cursor_seq.to_string()
    }

    /// Failed attempts at the next event; it is tried again at `nextAttemptAt`.
    async fn failed_attempts(&self) -> i32 {
        self.0.attempt
    }

    /// When the next delivery is tried (now, for an endpoint that is up to date).
    async fn next_attempt_at(&self) -> DateTime<Utc> {
        self.0.next_attempt_at
    }

    /// When the endpoint was added.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The latest delivery attempts, newest first (at most 100).
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20, desc = "How many of the latest attempts, 0 to 100.")] first: i32,
    ) -> Result<Vec<WebhookDelivery>> {
        ctx.admin()?;
        let first = u64::try_from(first.clamp(0, 100)).unwrap_or(0);
        Ok(webhooks::attempts(ctx.db(), self.0.id, first)
            .await?
            .into_iter()
            .map(Into::into)
            .collect())
    }
}
