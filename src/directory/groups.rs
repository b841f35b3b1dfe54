//! Directory groups and their memberships: reading them.

use super::GroupId;
use crate::error::{DomainError, DomainResult};
use crate::store::{self, Db};
use entity::directory_group;

pub use crate::store::groups::{GroupFilter, count, list};

/// One group, or `NOT_FOUND`.
pub async fn get(db: &impl Db, id: GroupId) -> DomainResult<directory_group::Model> {
    store::groups::find(db, id.0)
        .await?
        .ok_or(DomainError::NotFound { what: "group" })
}
