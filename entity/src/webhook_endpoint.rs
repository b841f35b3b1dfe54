//! `webhook_endpoints`: where events are delivered, and how far each has got.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url: String,
    /// JSON array of event types; empty: every type.
    pub event_types: String,
    /// The signing secret, sealed with the row id as associated data.
    pub secret_enc: Vec<u8>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    /// The last event delivered (or skipped as not wanted).
    pub cursor_seq: i64,
    /// Failed attempts at the next event.
    pub attempt: i32,
    pub next_attempt_at: DateTimeUtc,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
