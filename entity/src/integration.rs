//! `integrations`: one connected directory (R1–R3, R7).

use crate::enums::{DirectoryKind, IntegrationStatus};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "integrations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    /// `name` trimmed and lower-cased; unique, so names are unique case-insensitively (R3).
    pub name_key: String,
    pub kind: DirectoryKind,
    pub status: IntegrationStatus,
    pub status_reason: Option<String>,
    /// Entra tenant id or Google Workspace domain.
    pub tenant: Option<String>,
    pub authorized_by: Option<String>,
    /// Space-separated OAuth scopes granted.
    pub granted_scopes: Option<String>,
    pub auto_assign_devices: bool,
    pub sync_interval_minutes: Option<i32>,
    pub refresh_token_enc: Option<Vec<u8>>,
    pub delta_state: Option<String>,
    pub scim_token_hash: Option<String>,
    pub scim_token_hint: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_synced_at: Option<DateTimeUtc>,
    pub next_sync_at: Option<DateTimeUtc>,
    /// What the integration imports (R19), as JSON; NULL: everything.
    pub scope: Option<String>,
    /// The admin asked to choose the scope before the first import: the sign-in leaves the
    /// integration AWAITING_SCOPE until one is set.
    pub awaiting_scope: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
