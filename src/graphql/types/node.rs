//! `Node`: every object with a global id, resolvable by `node(id:)` and `nodes(ids:)`.

use super::{
    AuditEvent, Device, DirectoryEvent, Group, Integration, SyncRun, User, WebhookEndpoint,
};
use crate::{
    error::{DomainError, DomainResult},
    graphql::{
        context::ContextExt,
        ids::{self, kinds},
        loaders::{NodeKey, NodeRow},
    },
};
use async_graphql::{Context, ID, Interface};

/// An object with an opaque global id: refetch any of them with `node(id:)` or
/// `nodes(ids:)`.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's global id."))]
// A value of a response, resolved and dropped: boxing `User` would only add an allocation
// (async-graphql's interface variants are the object types themselves).
#[allow(clippy::large_enum_variant)]
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

/// The key of the object of `kind` (a global id's type name) numbered `raw`, if `kind` is
/// a `Node` type.
pub fn key_of(kind: &str, raw: i64) -> Option<NodeKey> {
    Some(match kind {
        kinds::INTEGRATION => NodeKey::Integration(raw),
        kinds::USER => NodeKey::User(raw),
        kinds::GROUP => NodeKey::Group(raw),
        kinds::DEVICE => NodeKey::Device(raw),
        kinds::SYNC_RUN => NodeKey::SyncRun(raw),
        kinds::DIRECTORY_EVENT => NodeKey::DirectoryEvent(raw),
        kinds::AUDIT_EVENT => NodeKey::AuditEvent(raw),
        kinds::WEBHOOK_ENDPOINT => NodeKey::WebhookEndpoint(raw),
        _ => return None,
    })
}

impl From<NodeRow> for Node {
    fn from(row: NodeRow) -> Self {
        match row {
            NodeRow::Integration(m) => Node::Integration(Integration(m)),
            NodeRow::User(m) => Node::User(User::new(*m)),
            NodeRow::Group(m) => Node::Group(Group(m)),
            NodeRow::Device(m) => Node::Device(Device::new(m)),
            NodeRow::SyncRun(m) => Node::SyncRun(SyncRun(m)),
            NodeRow::AuditEvent(m) => Node::AuditEvent(AuditEvent(m)),
            NodeRow::DirectoryEvent(m) => Node::DirectoryEvent(DirectoryEvent(m)),
            NodeRow::WebhookEndpoint(m) => Node::WebhookEndpoint(WebhookEndpoint(m)),
        }
    }
}

/// The object `key` names, or `None` when it does not exist, read through the request's
/// loader (so the objects of a page of events, or a `nodes` call, are one statement per
/// kind). The audit log and webhook endpoints are ADMIN-only here as in their lists.
pub async fn load(ctx: &Context<'_>, key: NodeKey) -> DomainResult<Option<Node>> {
    if matches!(key, NodeKey::AuditEvent(_) | NodeKey::WebhookEndpoint(_)) {
        ctx.admin()?;
    }
    Ok(ctx.loaders().load_one(key).await?.map(Node::from))
}

/// The object `id` names, or `None` when it does not exist; a malformed id, or one of a
/// type that is not a `Node`, is INVALID_INPUT on `field`.
pub async fn resolve(
    ctx: &Context<'_>,
    id: &ID,
    field: &'static str,
) -> DomainResult<Option<Node>> {
    let (kind, raw) = ids::decode_any(id, field)?;
    let key = key_of(&kind, raw)
        .ok_or_else(|| DomainError::invalid(field, format!("`{field}` is not a valid id")))?;
    load(ctx, key).await
}
