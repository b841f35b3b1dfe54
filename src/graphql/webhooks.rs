//! Webhook endpoints in the API (`crate::webhooks`): listed and managed by ADMIN tokens only,
//! since an endpoint receives the whole directory's changes.

use super::event_types::{DirectoryEventType, wire_types};
use super::{
    context::ContextExt,
    ids::{self},
    payload::{answer, payload},
    types::{WebhookEndpoint, webhook::KIND},
};
use crate::webhooks;
use async_graphql::{Context, ID, InputObject, Object, Result};

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
