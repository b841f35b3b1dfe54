//! Webhook endpoints in the API (`crate::webhooks`): listed and managed by ADMIN tokens only,
//! since an endpoint receives the whole directory's changes.

use super::{
    context::ContextExt,
    ids::{self},
};
use crate::webhooks;
use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{webhook_attempt, webhook_endpoint};

const KIND: &str = "WebhookEndpoint";

/// Where directory change events are delivered, signed per Standard Webhooks.
pub struct WebhookEndpoint(pub webhook_endpoint::Model);

/// One delivery attempt.
#[derive(SimpleObject)]
pub struct WebhookDelivery {
    /// The event's `sequence`.
    pub event_sequence: String,
    /// 1 for the first attempt at this event.
    pub attempt: i32,
    /// The receiver's HTTP status; null when no answer came.
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    /// Why it failed (the status, or the connection error); null when it succeeded.
    pub error: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

impl From<webhook_attempt::Model> for WebhookDelivery {
    fn from(m: webhook_attempt::Model) -> Self {
        Self {
            event_sequence: m.event_seq.to_string(),
            attempt: m.attempt,
            status_code: m.status_code,
            latency_ms: m.latency_ms,
            error: m.error,
            attempted_at: m.attempted_at,
        }
    }
}

/// A URL that receives directory events, signed per Standard Webhooks, in order and at least
/// once; with its event types, delivery state and recent attempts.
#[Object]
impl WebhookEndpoint {
    async fn id(&self) -> ID {
        ids::encode(KIND, self.0.id)
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The event types delivered; empty: every type.
    async fn types(&self) -> Vec<String> {
        webhooks::types_of(&self.0)
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

    async fn next_attempt_at(&self) -> DateTime<Utc> {
        self.0.next_attempt_at
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// The latest delivery attempts, newest first (at most 100).
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
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

/// The webhooks' reads.
#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// Every webhook endpoint, oldest first (at most 100). ADMIN only.
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Vec<WebhookEndpoint>> {
        ctx.admin()?;
        Ok(webhooks::list(ctx.db())
            .await?
            .into_iter()
            .map(WebhookEndpoint)
            .collect())
    }
}

/// An endpoint to add.
#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// `https://` on a public host (`--webhook-allow-private-urls` allows others).
    pub url: String,
    /// The event types to deliver; none or empty: every type.
    pub types: Option<Vec<String>>,
}

/// Changes to an endpoint; a field left out stays as it is.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    pub id: ID,
    pub url: Option<String>,
    pub types: Option<Vec<String>>,
    /// `true` re-enables a disabled endpoint (its next event is tried at once).
    pub enabled: Option<bool>,
}

/// An endpoint and its signing secret (`whsec_...`), shown only now.
#[derive(SimpleObject)]
pub struct WebhookEndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    pub secret: String,
}

/// The webhooks' changes. ADMIN only.
#[derive(Default)]
pub struct WebhookMutation;

#[Object]
impl WebhookMutation {
    /// Adds an endpoint; it receives the events committed from now on, in order, each at
    /// least once. The secret verifies the `webhook-signature` header.
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> Result<WebhookEndpointWithSecret> {
        let admin = ctx.admin()?;
        let services = ctx.services();
        let (model, secret) = webhooks::create(
            ctx.db(),
            &admin,
            &services.secrets,
            ctx.config().webhook_allow_private_urls,
            &input.url,
            &input.types.unwrap_or_default(),
        )
        .await?;
        Ok(WebhookEndpointWithSecret {
            endpoint: WebhookEndpoint(model),
            secret,
        })
    }

    /// Changes an endpoint's URL, types, or whether it is enabled.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> Result<WebhookEndpoint> {
        let admin = ctx.admin()?;
        let id = ids::decode(&input.id, KIND, "id")?;
        let changes = webhooks::Changes {
            url: input.url,
            types: input.types,
            enabled: input.enabled,
        };
        let model = webhooks::update(
            ctx.db(),
            &admin,
            ctx.config().webhook_allow_private_urls,
            id,
            changes,
        )
        .await?;
        Ok(WebhookEndpoint(model))
    }

    /// Replaces an endpoint's secret at once; the old one stops signing.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<WebhookEndpointWithSecret> {
        let admin = ctx.admin()?;
        let id = ids::decode(&id, KIND, "id")?;
        let services = ctx.services();
        let (model, secret) =
            webhooks::rotate_secret(ctx.db(), &admin, &services.secrets, id).await?;
        Ok(WebhookEndpointWithSecret {
            endpoint: WebhookEndpoint(model),
            secret,
        })
    }

    /// Deletes an endpoint and its delivery log; returns its id.
    async fn delete_webhook_endpoint(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let admin = ctx.admin()?;
        let raw = ids::decode(&id, KIND, "id")?;
        webhooks::delete(ctx.db(), &admin, raw).await?;
        Ok(id)
    }
}
