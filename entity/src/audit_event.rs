//! `audit_events`: who did what to which object, and when (SPEC §4).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `token:<id>:<name>`, or `cli`, or `scim:<integration id>`.
    pub actor: String,
    pub actor_token_id: Option<i64>,
    /// The mutation's name, e.g. `assignDeviceUser`.
    pub action: String,
    pub target_type: Option<String>,
    /// The target's global id.
    pub target_id: Option<String>,
    /// JSON with what changed.
    pub details: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
