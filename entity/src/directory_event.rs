//! `directory_events`: the outbox of directory changes, numbered in commit order.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_events")]
pub struct Model {
    /// The event's place in the feed: assigned in commit order, never reused.
    #[sea_orm(primary_key, auto_increment = false)]
    pub seq: i64,
    /// `user.created`, `group.member_added`, ...
    pub event_type: String,
    pub occurred_at: DateTimeUtc,
    pub integration_id: Option<i64>,
    /// `User`, `Group`, `Device`, `Integration`, `SyncRun`.
    pub object_type: String,
    pub object_id: i64,
    /// JSON: the object's state after the change, and what changed.
    pub data: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
