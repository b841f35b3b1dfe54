//! `DirectoryEvent`: one change of directory data, from the outbox (`directory::events`).

use super::{Integration, Node, node};
use crate::graphql::{context::ContextExt, ids, loaders::IntegrationKey};
use async_graphql::{Context, ID, Json, Object, Result};
use chrono::{DateTime, Utc};
use entity::directory_event;

/// One change of directory data, written in the transaction that made it. Events are numbered
/// in commit order: a consumer resumes after the last one it saw, and never misses one.
pub struct DirectoryEvent(pub directory_event::Model);

/// One change of directory data, written in the transaction that made it. Events are numbered
/// in commit order: a consumer resumes after the last one it saw, and never misses one.
#[Object]
impl DirectoryEvent {
    /// The event's global id.
    pub async fn id(&self) -> ID {
        ids::encode("DirectoryEvent", self.0.seq)
    }

    /// The event's place in the feed (a decimal number; later events have larger ones).
    async fn sequence(&self) -> String {
        self.0.seq.to_string()
    }

    /// What happened (in webhook payloads, the same type is named `user.created`, ...).
    #[graphql(name = "type")]
    async fn event_type(
        &self,
    ) -> async_graphql::Result<crate::graphql::event_types::DirectoryEventType> {
        crate::graphql::event_types::DirectoryEventType::of_wire(&self.0.event_type).ok_or_else(
            || crate::error::DomainError::internal(UnknownType(self.0.event_type.clone())).into(),
        )
    }

    /// When the change was made.
    async fn occurred_at(&self) -> DateTime<Utc> {
        self.0.occurred_at
    }

    /// The integration the change belongs to, if any (devices belong to none).
    async fn integration_id(&self) -> Option<ID> {
        self.0
            .integration_id
            .map(|id| ids::encode(ids::kinds::INTEGRATION, id))
    }

    /// The integration the change belongs to, while it exists; null for a device's change,
    /// and once the integration is deleted (`integrationId` still names it).
    async fn integration(&self, ctx: &Context<'_>) -> Result<Option<Integration>> {
        let Some(id) = self.0.integration_id else {
            return Ok(None);
        };
        let found = ctx.loaders().load_one(IntegrationKey(id)).await?;
        Ok(found.map(Integration))
    }

    /// The kind of the changed object: USER, GROUP, DEVICE, INTEGRATION or SYNC_RUN.
    async fn object_type(&self) -> async_graphql::Result<crate::graphql::event_types::ObjectKind> {
        crate::graphql::event_types::object_kind(&self.0.object_type)
    }

    /// The changed object's global id (it may no longer exist).
    async fn object_id(&self) -> ID {
        ids::encode(&self.0.object_type, self.0.object_id)
    }

    /// The changed object as it is now, while it exists; null once it is removed
    /// (`objectId` still names it, and `data` holds its last state).
    async fn object(&self, ctx: &Context<'_>) -> Result<Option<Node>> {
        let Some(key) = node::key_of(&self.0.object_type, self.0.object_id) else {
            return Ok(None);
        };
        Ok(node::load(ctx, key).await?)
    }

    /// `{"object": {"id", "type"}, "state": {...}, "changedFields": [...]}`: the object's
    /// state after the change (before it, for a removal), and for an update the fields that
    /// changed.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(serde_json::from_str(&self.0.data).unwrap_or_default())
    }
}

/// A stored event of a type this version does not know (written by a newer one).
#[derive(Debug, thiserror::Error)]
#[error("an event of unknown type `{0}`")]
struct UnknownType(String);
