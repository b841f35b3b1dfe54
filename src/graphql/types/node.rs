//! `Node`: every object with a global id, resolvable by `node(id:)` and `nodes(ids:)`.

use super::{AuditEvent, Device, DirectoryEvent, Group, Integration, SyncRun, User};
use crate::{
    directory::{DeviceId, GroupId, IntegrationId, SyncRunId, UserId},
    directory::{devices, groups, integrations, sync_runs, users},
    error::{DomainError, DomainResult},
    graphql::{
        context::ContextExt,
        ids::{self, kinds},
        webhooks::WebhookEndpoint,
    },
    store,
};
use async_graphql::{Context, ID, Interface};

/// An object with an opaque global id: refetch any of them with `node(id:)` or
/// `nodes(ids:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's global id."))]
pub enum Node {
    Integration(Integration),
    User(User),
    Group(Group),
    Device(Device),
    SyncRun(SyncRun),
    AuditEvent(AuditEvent),
    DirectoryEvent(DirectoryEvent),
    WebhookEndpoint(WebhookEndpoint),
}

/// Most ids one `nodes` call may name.
pub const MAX_NODES: usize = 100;

/// `Ok(None)` for an object that does not exist: a query for an id that names nothing
/// answers null.
pub fn found<T>(result: DomainResult<T>) -> DomainResult<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(DomainError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The object `id` names, or `None` when it does not exist. The audit log and webhook
/// endpoints are ADMIN-only here as in their lists; a malformed id is INVALID_INPUT on
/// `field`.
pub async fn resolve(
    ctx: &Context<'_>,
    id: &ID,
    field: &'static str,
) -> DomainResult<Option<Node>> {
    let (kind, raw) = ids::decode_any(id, field)?;
    let db = ctx.db();
    Ok(match kind.as_str() {
        kinds::INTEGRATION => found(integrations::get(db, IntegrationId(raw)).await)?
            .map(|m| Node::Integration(Integration(m))),
        kinds::USER => found(users::get(db, UserId(raw)).await)?.map(|m| Node::User(User::new(m))),
        kinds::GROUP => found(groups::get(db, GroupId(raw)).await)?.map(|m| Node::Group(Group(m))),
        kinds::DEVICE => {
            found(devices::get(db, DeviceId(raw)).await)?.map(|m| Node::Device(Device::new(m)))
        }
        kinds::SYNC_RUN => {
            found(sync_runs::get(db, SyncRunId(raw)).await)?.map(|m| Node::SyncRun(SyncRun(m)))
        }
        kinds::DIRECTORY_EVENT => store::events::find(db, raw)
            .await?
            .map(|m| Node::DirectoryEvent(DirectoryEvent(m))),
        kinds::AUDIT_EVENT => {
            ctx.admin()?;
            store::audit::find(db, raw)
                .await?
                .map(|m| Node::AuditEvent(AuditEvent(m)))
        }
        kinds::WEBHOOK_ENDPOINT => {
            ctx.admin()?;
            found(crate::webhooks::get(db, raw).await)?
                .map(|m| Node::WebhookEndpoint(WebhookEndpoint(m)))
        }
        _ => {
            return Err(DomainError::invalid(
                field,
                format!("`{field}` is not a valid id"),
            ));
        }
    })
}
