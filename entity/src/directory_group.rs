//! `directory_groups`: a group imported from a directory.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directory_groups")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub integration_id: i64,
    pub external_id: String,
    pub display_name: String,
    pub email: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_seen_run_id: Option<i64>,
    /// SCIM integrations: the resource as the client sent it (canonical names), JSON.
    pub scim_resource: Option<String>,
    /// SCIM integrations: the client's `externalId`, indexed for its lookups.
    pub scim_external_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
