//! Integrations: reading them, and the rules about their names (R3).

use super::{
    IntegrationId,
    page::{self, Direction, Page, PageArgs},
};
use crate::error::{DomainError, DomainResult};
use entity::{
    enums::{DirectoryKind, IntegrationStatus},
    integration,
};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Select};

/// Longest integration name, in characters (R3).
pub const MAX_NAME_CHARS: usize = 64;

/// A valid integration name: the trimmed name to show and the key that must be unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationName {
    pub display: String,
    pub key: String,
}

/// Checks a proposed integration name: trimmed, 1–64 characters, no control characters (R3).
pub fn validate_name(raw: &str) -> DomainResult<IntegrationName> {
    let display = raw.trim();
    let chars = display.chars().count();
    if chars == 0 {
        return Err(DomainError::invalid("name", "the name must not be empty"));
    }
    if chars > MAX_NAME_CHARS {
        return Err(DomainError::invalid(
            "name",
            format!("the name must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if display.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            "name",
            "the name must not contain control characters",
        ));
    }
    Ok(IntegrationName {
        display: display.to_owned(),
        key: super::match_key(display),
    })
}

/// Which integrations to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct IntegrationFilter {
    pub kind: Option<DirectoryKind>,
    pub status: Option<IntegrationStatus>,
}

fn select(filter: IntegrationFilter) -> Select<integration::Entity> {
    let mut select = integration::Entity::find();
    if let Some(kind) = filter.kind {
        select = select.filter(integration::Column::Kind.eq(kind));
    }
    if let Some(status) = filter.status {
        select = select.filter(integration::Column::Status.eq(status));
    }
    select
}

/// One page of integrations, oldest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    filter: IntegrationFilter,
    args: PageArgs,
) -> DomainResult<Page<integration::Model>> {
    page::fetch(
        db,
        select(filter),
        integration::Column::Id,
        args,
        Direction::Asc,
    )
    .await
}

/// How many integrations match.
pub async fn count<C: ConnectionTrait>(db: &C, filter: IntegrationFilter) -> DomainResult<u64> {
    page::count(db, select(filter)).await
}

/// One integration, or `NOT_FOUND`.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    id: IntegrationId,
) -> DomainResult<integration::Model> {
    find(db, id).await?.ok_or(DomainError::NotFound {
        what: "integration",
    })
}

/// One integration, if it exists.
pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: IntegrationId,
) -> DomainResult<Option<integration::Model>> {
    Ok(integration::Entity::find_by_id(id.0).one(db).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_name_trims_and_keys_case_insensitively() {
        let name = validate_name("  Contoso Entra ").unwrap();
        assert_eq!(name.display, "Contoso Entra");
        assert_eq!(name.key, "contoso entra");
    }

    #[test]
    fn validate_name_refuses_empty_long_and_control() {
        assert_eq!(validate_name("   ").unwrap_err().code(), "INVALID_INPUT");
        assert!(validate_name(&"x".repeat(64)).is_ok());
        assert_eq!(
            validate_name(&"x".repeat(65)).unwrap_err().code(),
            "INVALID_INPUT"
        );
        assert_eq!(
            validate_name("a\u{7}b").unwrap_err().code(),
            "INVALID_INPUT"
        );
        // 64 characters, more than 64 bytes: characters count, not bytes.
        assert!(validate_name(&"é".repeat(64)).is_ok());
    }
}
