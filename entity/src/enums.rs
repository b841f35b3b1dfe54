//! The enumerations stored as short strings, so both databases read the same values.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The three kinds of integration (R1).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum DirectoryKind {
    #[sea_orm(string_value = "ENTRA_ID")]
    EntraId,
    #[sea_orm(string_value = "GOOGLE_WORKSPACE")]
    GoogleWorkspace,
    #[sea_orm(string_value = "SCIM")]
    Scim,
}

/// Where an integration stands (R4, R16).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum IntegrationStatus {
    #[sea_orm(string_value = "AWAITING_CONSENT")]
    AwaitingConsent,
    #[sea_orm(string_value = "AWAITING_ADMIN_APPROVAL")]
    AwaitingAdminApproval,
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "AWAITING_SCOPE")]
    AwaitingScope,
    #[sea_orm(string_value = "NEEDS_REAUTH")]
    NeedsReauth,
    #[sea_orm(string_value = "ERROR")]
    Error,
}

/// What started a sync run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum SyncTrigger {
    #[sea_orm(string_value = "INITIAL")]
    Initial,
    #[sea_orm(string_value = "SCHEDULED")]
    Scheduled,
    #[sea_orm(string_value = "MANUAL")]
    Manual,
}

/// Where a sync run stands.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum SyncRunStatus {
    #[sea_orm(string_value = "QUEUED")]
    Queued,
    #[sea_orm(string_value = "RUNNING")]
    Running,
    #[sea_orm(string_value = "SUCCEEDED")]
    Succeeded,
    #[sea_orm(string_value = "FAILED")]
    Failed,
    #[sea_orm(string_value = "HELD")]
    Held,
    #[sea_orm(string_value = "CANCELLED")]
    Cancelled,
}

/// A directory user's state (R9, R14).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum UserStatus {
    #[sea_orm(string_value = "ACTIVE")]
    Active,
    #[sea_orm(string_value = "SUSPENDED")]
    Suspended,
    #[sea_orm(string_value = "ARCHIVED")]
    Archived,
}

/// How a device got its user (R11, R12).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum AssignmentSource {
    #[sea_orm(string_value = "MANUAL")]
    Manual,
    #[sea_orm(string_value = "AUTOMATIC")]
    Automatic,
}

/// A device's operating system family.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum DevicePlatform {
    #[sea_orm(string_value = "MACOS")]
    Macos,
    #[sea_orm(string_value = "IOS")]
    Ios,
    #[sea_orm(string_value = "IPADOS")]
    Ipados,
    #[sea_orm(string_value = "TVOS")]
    Tvos,
    #[sea_orm(string_value = "VISIONOS")]
    Visionos,
    #[sea_orm(string_value = "WINDOWS")]
    Windows,
    #[sea_orm(string_value = "ANDROID")]
    Android,
}

/// An API token's role (SPEC §4).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum TokenRole {
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    #[sea_orm(string_value = "VIEWER")]
    Viewer,
}

/// Why an OAuth authorization was started.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum AuthorizationPurpose {
    #[sea_orm(string_value = "CONNECT")]
    Connect,
    #[sea_orm(string_value = "REAUTH")]
    Reauth,
}
