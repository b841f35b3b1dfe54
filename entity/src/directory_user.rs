//! `directory_users`: a person imported from a directory (R9, R10, R14).

use crate::enums::UserStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `None` once the integration was deleted and the user kept for its devices (R9).
    pub integration_id: Option<i64>,
    /// The name of the integration the user came from; kept when detached (R3, R9).
    pub origin_name: String,
    pub external_id: String,
    /// UPN (Entra), primary email (Google) or `userName` (SCIM).
    pub user_name: String,
    pub user_name_key: String,
    pub email: Option<String>,
    pub email_key: Option<String>,
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub job_title: Option<String>,
    pub department: Option<String>,
    pub employee_id: Option<String>,
    pub manager_external_id: Option<String>,
    pub status: UserStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub archived_at: Option<DateTimeUtc>,
    pub last_seen_run_id: Option<i64>,
    /// SCIM integrations: the resource as the client sent it (canonical names), JSON.
    pub scim_resource: Option<String>,
    /// SCIM integrations: the client's `externalId`, indexed for its lookups.
    pub scim_external_id: Option<String>,
    /// How the organisation employs the user (`Employee`, `Contractor`, ...).
    pub employee_type: Option<String>,
    /// The standard HR attributes (`providers::fields` says which source field feeds each).
    pub office_location: Option<String>,
    pub company_name: Option<String>,
    pub division: Option<String>,
    pub cost_center: Option<String>,
    pub hire_date: Option<String>,
    pub mobile_phone: Option<String>,
    pub country: Option<String>,
    pub preferred_language: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
