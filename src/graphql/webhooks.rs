//! Webhook endpoints in the API (`crate::webhooks`): listed and managed by ADMIN tokens only,
//! since an endpoint receives the whole directory's changes.

use super::event_types::{DirectoryEventType, wire_types};
use super::{
    context::ContextExt,
    ids::{self},
    payload::{answer, payload},
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
    pub types: Option<Vec<DirectoryEventType>>,
}

/// Changes to an endpoint; a field left out stays as it is.
#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    /// The endpoint's id.
    pub id: ID,
    /// A new URL: `https://` on a public host (`--webhook-allow-private-urls` allows others).
    pub url: Option<String>,
    /// The event types to deliver from now on; empty: every type.
    pub types: Option<Vec<DirectoryEventType>>,
    /// `true` re-enables a disabled endpoint (its next event is tried at once).
    pub enabled: Option<bool>,
}

payload!(
    /// A new endpoint and its signing secret (null when refused).
    CreateWebhookEndpointPayload {
        /// The endpoint; it receives the events committed from now on.
        webhook_endpoint: WebhookEndpoint,
        /// The signing secret (`whsec_...`), shown only now.
        secret: String,
    }
);

payload!(
    /// The changed endpoint (null when refused).
    UpdateWebhookEndpointPayload {
        /// The endpoint as it now is.
        webhook_endpoint: WebhookEndpoint,
    }
);

/// The endpoint whose secret to replace.
#[derive(InputObject)]
pub struct RotateWebhookSecretInput {
    /// The endpoint's id.
    pub id: ID,
}

payload!(
    /// An endpoint's new signing secret (null when refused).
    RotateWebhookSecretPayload {
        /// The endpoint.
        webhook_endpoint: WebhookEndpoint,
        /// The new signing secret (`whsec_...`), shown only now; the old one stops signing.
        secret: String,
    }
);

/// The endpoint to delete.
#[derive(InputObject)]
pub struct DeleteWebhookEndpointInput {
    /// The endpoint's id.
    pub id: ID,
}

payload!(
    /// What deleting an endpoint did (null when refused).
    DeleteWebhookEndpointPayload {
        /// The deleted endpoint's id.
        deleted_webhook_endpoint_id: ID,
    }
);

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
        #[graphql(desc = "What to change; see the input type.")] input: CreateWebhookEndpointInput,
    ) -> Result<Option<CreateWebhookEndpointPayload>> {
        let admin = ctx.admin()?;
        let services = ctx.services();
        let created = webhooks::create(
            ctx.db(),
            &admin,
            &services.secrets,
            ctx.config().webhook_allow_private_urls,
            &input.url,
            &wire_types(input.types).unwrap_or_default(),
        )
        .await;
        answer(created.map(|(model, secret)| CreateWebhookEndpointPayload {
            webhook_endpoint: Some(WebhookEndpoint(model)),
            secret: Some(secret),
            ..Default::default()
        }))
    }

    /// Changes an endpoint's URL, types, or whether it is enabled.
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: UpdateWebhookEndpointInput,
    ) -> Result<Option<UpdateWebhookEndpointPayload>> {
        let admin = ctx.admin()?;
        let allow_private = ctx.config().webhook_allow_private_urls;
        answer(
            async {
                let id = ids::decode(&input.id, KIND, "id")?;
                let changes = webhooks::Changes {
                    url: input.url,
                    types: wire_types(input.types),
                    enabled: input.enabled,
                };
                let model = webhooks::update(ctx.db(), &admin, allow_private, id, changes).await?;
                Ok(UpdateWebhookEndpointPayload {
                    webhook_endpoint: Some(WebhookEndpoint(model)),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Replaces an endpoint's secret at once; the old one stops signing.
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: RotateWebhookSecretInput,
    ) -> Result<Option<RotateWebhookSecretPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let id = ids::decode(&input.id, KIND, "id")?;
                let services = ctx.services();
                let (model, secret) =
                    webhooks::rotate_secret(ctx.db(), &admin, &services.secrets, id).await?;
                Ok(RotateWebhookSecretPayload {
                    webhook_endpoint: Some(WebhookEndpoint(model)),
                    secret: Some(secret),
                    ..Default::default()
                })
            }
            .await,
        )
    }

    /// Deletes an endpoint and its delivery log.
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "What to change; see the input type.")] input: DeleteWebhookEndpointInput,
    ) -> Result<Option<DeleteWebhookEndpointPayload>> {
        let admin = ctx.admin()?;
        answer(
            async {
                let raw = ids::decode(&input.id, KIND, "id")?;
                webhooks::delete(ctx.db(), &admin, raw).await?;
                Ok(DeleteWebhookEndpointPayload {
                    deleted_webhook_endpoint_id: Some(input.id.clone()),
                    ..Default::default()
                })
            }
            .await,
        )
    }
}
