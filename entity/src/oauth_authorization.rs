//! `oauth_authorizations`: an OAuth flow started and not yet completed (R4, R8).

use crate::enums::AuthorizationPurpose;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "oauth_authorizations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub integration_id: i64,
    /// Hex SHA-256 of the `state` parameter; unique.
    pub state_hash: String,
    pub code_verifier: String,
    pub purpose: AuthorizationPurpose,
    pub redirect_uri: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub consumed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
