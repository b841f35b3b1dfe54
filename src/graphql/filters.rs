//! The `filter:` inputs of the lists, and how each becomes the domain's filter (ids decoded,
//! search terms and event types checked).

use super::{
    event_types::{DirectoryEventType, wire_types},
    ids::{self, kinds},
    types::{AuditAction, DevicePlatform, DirectoryKind, IntegrationStatus, UserStatus},
};
use crate::directory::{
    GroupId, IntegrationId, UserId, devices, events, groups, integrations, users,
};
use crate::error::{DomainError, DomainResult};
use async_graphql::{ID, InputObject};

/// Which users to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct UserFilter {
    /// Only users of this integration.
    pub integration_id: Option<ID>,
    /// Only members of this group.
    pub group_id: Option<ID>,
    /// With `groupId`: also the members of the groups nested in it, at any depth. Default
    /// false (direct members only). Without `groupId`: INVALID_INPUT.
    pub transitive: Option<bool>,
    /// Only users with this status.
    pub status: Option<UserStatus>,
    /// `true`: only users with a device; `false`: only users without one.
    pub assigned: Option<bool>,
    /// Case-insensitive text in the display name, user name or email.
    pub search: Option<String>,
    /// Only the direct reports of this user: the users of its integration whose directory
    /// names it as their manager.
    pub manager_id: Option<ID>,
}

/// Which audit events to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct AuditEventFilter {
    /// Only this action.
    pub action: Option<AuditAction>,
    /// Only events about this object (its global id).
    pub target_id: Option<ID>,
    /// Only events at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

/// Which groups to list.
#[derive(InputObject, Default)]
pub struct GroupFilter {
    /// Only groups of this integration.
    pub integration_id: Option<ID>,
    /// Case-insensitive text in the name or email.
    pub search: Option<String>,
}

/// Which devices to list.
#[derive(InputObject, Default)]
pub struct DeviceFilter {
    /// Only devices of this platform.
    pub platform: Option<DevicePlatform>,
    /// `true`: only devices with a user; `false`: only devices without one.
    pub assigned: Option<bool>,
    /// Only devices assigned to this user.
    pub user_id: Option<ID>,
    /// Case-insensitive text in the serial number, name or enrollment identity.
    pub search: Option<String>,
}

fn search_term(search: Option<String>) -> DomainResult<Option<String>> {
    let Some(term) = search
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
    else {
        return Ok(None);
    };
    if term.chars().count() > 256 {
        return Err(DomainError::invalid(
            "search",
            "`search` must be at most 256 characters",
        ));
    }
    Ok(Some(term))
}

fn decode_opt(
    id: Option<&ID>,
    kind: &'static str,
    field: &'static str,
) -> DomainResult<Option<i64>> {
    id.map(|id| ids::decode(id, kind, field)).transpose()
}

impl UserFilter {
    pub(super) fn into_domain(self) -> DomainResult<users::UserFilter> {
        Ok(users::UserFilter {
            integration: decode_opt(
                self.integration_id.as_ref(),
                kinds::INTEGRATION,
                "integrationId",
            )?
            .map(IntegrationId),
            group: decode_opt(self.group_id.as_ref(), kinds::GROUP, "groupId")?.map(GroupId),
            transitive: match (self.transitive, &self.group_id) {
                (Some(true), None) => {
                    return Err(crate::error::DomainError::invalid(
                        "transitive",
                        "`transitive` needs a `groupId`",
                    ));
                }
                (transitive, _) => transitive.unwrap_or(false),
            },
            status: self.status.map(Into::into),
            assigned: self.assigned,
            search: search_term(self.search)?,
            reports_to: decode_opt(self.manager_id.as_ref(), kinds::USER, "managerId")?.map(UserId),
        })
    }
}

impl GroupFilter {
    pub(super) fn into_domain(self) -> DomainResult<groups::GroupFilter> {
        Ok(groups::GroupFilter {
            integration: decode_opt(
                self.integration_id.as_ref(),
                kinds::INTEGRATION,
                "integrationId",
            )?
            .map(IntegrationId),
            search: search_term(self.search)?,
        })
    }
}

impl DeviceFilter {
    pub(super) fn into_domain(self) -> DomainResult<devices::DeviceFilter> {
        Ok(devices::DeviceFilter {
            platform: self.platform.map(Into::into),
            assigned: self.assigned,
            user: decode_opt(self.user_id.as_ref(), kinds::USER, "userId")?.map(UserId),
            search: search_term(self.search)?,
        })
    }
}

/// Which events to list. All given conditions must hold.
#[derive(InputObject, Default)]
pub struct EventFilter {
    /// Only events of these types; each at most once.
    pub types: Option<Vec<DirectoryEventType>>,
    /// Only events of this integration.
    pub integration_id: Option<ID>,
}

impl EventFilter {
    /// Checks the types (each at most once) and decodes the integration id.
    pub fn into_domain(self) -> DomainResult<events::EventFilter> {
        let types = wire_types(self.types).unwrap_or_default();
        if types.len() > events::EVENT_TYPES.len() {
            return Err(DomainError::invalid(
                "filter.types",
                "`types` names each event type at most once",
            ));
        }
        let integration = self
            .integration_id
            .map(|id| ids::decode(&id, kinds::INTEGRATION, "filter.integrationId"))
            .transpose()?;
        Ok(events::EventFilter { types, integration })
    }
}

/// Which integrations to list. All given conditions must hold.
#[derive(InputObject, Default, Clone, Copy)]
pub struct IntegrationFilter {
    /// Only integrations of this kind.
    pub kind: Option<DirectoryKind>,
    /// Only integrations in this status.
    pub status: Option<IntegrationStatus>,
}

impl IntegrationFilter {
    pub(super) fn into_domain(self) -> integrations::IntegrationFilter {
        integrations::IntegrationFilter {
            kind: self.kind.map(Into::into),
            status: self.status.map(Into::into),
        }
    }
}
