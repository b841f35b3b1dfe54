//! `devices`: an enrolled device and its assigned user (R11, R12).

use crate::enums::{AssignmentSource, DevicePlatform};
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "devices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Trimmed and upper-cased; unique.
    pub serial_number: String,
    pub name: String,
    pub platform: DevicePlatform,
    pub model: Option<String>,
    pub os_version: Option<String>,
    pub enrollment_identity: Option<String>,
    pub enrollment_identity_key: Option<String>,
    pub user_id: Option<i64>,
    pub assignment_source: Option<AssignmentSource>,
    pub assigned_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
