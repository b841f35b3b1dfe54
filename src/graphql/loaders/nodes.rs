//! Objects of any `Node` type by id, batched: what `node(id:)`, `nodes(ids:)` and the typed
//! references (`AuditEvent.target`, `DirectoryEvent.object`, `WebhookDelivery.event`) read.
//! One statement per kind for a wave's keys.

use super::{BatchLoader, LoadResult};
use crate::{
    error::DomainError,
    store::related::{self, MAX_KEYS},
};
use async_graphql::dataloader::Loader;
use entity::{
    audit_event, device, directory_event, directory_group, directory_user, integration, sync_run,
    webhook_endpoint,
};
use std::collections::HashMap;

/// An object by kind and id (a directory event by its sequence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKey {
    Integration(i64),
    User(i64),
    Group(i64),
    Device(i64),
    SyncRun(i64),
    AuditEvent(i64),
    DirectoryEvent(i64),
    WebhookEndpoint(i64),
}

/// The row a [`NodeKey`] names.
#[derive(Debug, Clone)]
pub enum NodeRow {
    Integration(integration::Model),
    /// Boxed: a user row is twice the size of the next largest.
    User(Box<directory_user::Model>),
    Group(directory_group::Model),
    Device(device::Model),
    SyncRun(sync_run::Model),
    AuditEvent(audit_event::Model),
    DirectoryEvent(directory_event::Model),
    WebhookEndpoint(webhook_endpoint::Model),
}

/// The kinds of [`NodeKey`], each with its constructor, for grouping a wave's keys.
type Kind = fn(i64) -> NodeKey;
const KINDS: [Kind; 8] = [
    NodeKey::Integration,
    NodeKey::User,
    NodeKey::Group,
    NodeKey::Device,
    NodeKey::SyncRun,
    NodeKey::AuditEvent,
    NodeKey::DirectoryEvent,
    NodeKey::WebhookEndpoint,
];

impl NodeKey {
    fn id(self) -> i64 {
        match self {
            Self::Integration(id)
            | Self::User(id)
            | Self::Group(id)
            | Self::Device(id)
            | Self::SyncRun(id)
            | Self::AuditEvent(id)
            | Self::DirectoryEvent(id)
            | Self::WebhookEndpoint(id) => id,
        }
    }
}

impl Loader<NodeKey> for BatchLoader {
    type Value = NodeRow;
    type Error = DomainError;

    async fn load(&self, keys: &[NodeKey]) -> LoadResult<NodeKey, NodeRow> {
        self.batch(async {
            let mut out = HashMap::new();
            for kind in KINDS {
                let ids: Vec<i64> = keys
                    .iter()
                    .filter(|k| **k == kind(k.id()))
                    .map(|k| k.id())
                    .collect();
                for chunk in ids.chunks(MAX_KEYS) {
                    out.extend(self.rows_of(kind(0), chunk).await?);
                }
            }
            Ok(out)
        })
        .await
    }
}

impl BatchLoader {
    /// The rows of `ids` of `kind`'s kind, by key.
    async fn rows_of(&self, kind: NodeKey, ids: &[i64]) -> LoadResult<NodeKey, NodeRow> {
        fn keyed<M>(
            rows: Vec<M>,
            key: impl Fn(&M) -> NodeKey,
            row: fn(M) -> NodeRow,
        ) -> HashMap<NodeKey, NodeRow> {
            rows.into_iter().map(|m| (key(&m), row(m))).collect()
        }
        let (db, p) = (&self.db, self.projection);
        Ok(match kind {
            NodeKey::Integration(_) => keyed(
                related::integrations(db, ids).await?,
                |m| NodeKey::Integration(m.id),
                NodeRow::Integration,
            ),
            NodeKey::User(_) => keyed(
                related::users(db, ids, p.users).await?,
                |m| NodeKey::User(m.id),
                |m| NodeRow::User(Box::new(m)),
            ),
            NodeKey::Group(_) => keyed(
                related::groups(db, ids, p.groups).await?,
                |m| NodeKey::Group(m.id),
                NodeRow::Group,
            ),
            NodeKey::Device(_) => keyed(
                related::devices(db, ids, p.devices).await?,
                |m| NodeKey::Device(m.id),
                NodeRow::Device,
            ),
            NodeKey::SyncRun(_) => keyed(
                related::rows_by::<sync_run::Entity>(db, sync_run::Column::Id, ids).await?,
                |m| NodeKey::SyncRun(m.id),
                NodeRow::SyncRun,
            ),
            NodeKey::AuditEvent(_) => keyed(
                related::rows_by::<audit_event::Entity>(db, audit_event::Column::Id, ids).await?,
                |m| NodeKey::AuditEvent(m.id),
                NodeRow::AuditEvent,
            ),
            NodeKey::DirectoryEvent(_) => keyed(
                related::rows_by::<directory_event::Entity>(db, directory_event::Column::Seq, ids)
                    .await?,
                |m| NodeKey::DirectoryEvent(m.seq),
                NodeRow::DirectoryEvent,
            ),
            NodeKey::WebhookEndpoint(_) => keyed(
                related::rows_by::<webhook_endpoint::Entity>(db, webhook_endpoint::Column::Id, ids)
                    .await?,
                |m| NodeKey::WebhookEndpoint(m.id),
                NodeRow::WebhookEndpoint,
            ),
        })
    }
}
