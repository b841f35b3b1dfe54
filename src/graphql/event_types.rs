//! The kinds of directory change events as a GraphQL enum, each with its name on the wire.

use async_graphql::Enum;

/// Declares the event types: each GraphQL value with its name on the wire (webhook payloads,
/// the stored rows), e.g. `USER_CREATED` ↔ `user.created`.
macro_rules! event_types {
    ($($(#[$doc:meta])* $variant:ident => $wire:literal),* $(,)?) => {
        /// What happened to an object: the kind of a directory change event.
        #[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
        pub enum DirectoryEventType { $($(#[$doc])* $variant),* }

        impl DirectoryEventType {
            /// The type's name in webhook payloads and the stored rows.
            pub fn wire(self) -> &'static str {
                match self { $(Self::$variant => $wire),* }
            }

            /// The type named `wire` on the wire, if it is one.
            pub fn of_wire(wire: &str) -> Option<Self> {
                match wire { $($wire => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

event_types!(
    /// A user new in its directory was created.
    UserCreated => "user.created",
    /// A user's synced fields, aliases or manager changed (`changedFields` names them).
    UserUpdated => "user.updated",
    /// A user was disabled or suspended in its directory.
    UserSuspended => "user.suspended",
    /// A suspended user is active again.
    UserReactivated => "user.reactivated",
    /// A user gone from its directory was kept, archived, for its devices.
    UserArchived => "user.archived",
    /// An archived user is back in its directory.
    UserRestored => "user.restored",
    /// A user gone from its directory, without a device, was deleted.
    UserRemoved => "user.removed",
    /// A group new in its directory was created.
    GroupCreated => "group.created",
    /// A group's name, email or description changed.
    GroupUpdated => "group.updated",
    /// A group gone from its directory was deleted.
    GroupRemoved => "group.removed",
    /// A user joined a group.
    GroupMemberAdded => "group.member_added",
    /// A user left a group.
    GroupMemberRemoved => "group.member_removed",
    /// A group was nested in another (`data.state.childGroupId` names it).
    GroupChildGroupAdded => "group.child_group_added",
    /// A group nested in another left it.
    GroupChildGroupRemoved => "group.child_group_removed",
    /// A device was registered.
    DeviceRegistered => "device.registered",
    /// A device got a user (by an admin, or automatically).
    DeviceAssigned => "device.assigned",
    /// A device's user was removed.
    DeviceUnassigned => "device.unassigned",
    /// An integration was added.
    IntegrationCreated => "integration.created",
    /// An integration's sign-in completed: it is ACTIVE with its grant.
    IntegrationAuthorized => "integration.authorized",
    /// An integration's provider refused its grant: it needs re-authentication.
    IntegrationNeedsReauth => "integration.needs_reauth",
    /// An integration was renamed.
    IntegrationRenamed => "integration.renamed",
    /// An integration was deleted.
    IntegrationDeleted => "integration.deleted",
    /// A sync run would remove more users than the safety threshold and waits.
    SyncRunHeld => "sync_run.held",
    /// A sync run ended.
    SyncRunFinished => "sync_run.finished",
);

/// The wire names of `types`, for the domain's filters.
pub fn wire_types(types: Option<Vec<DirectoryEventType>>) -> Option<Vec<String>> {
    types.map(|t| t.into_iter().map(|t| t.wire().to_owned()).collect())
}

/// What kind of object an event or an audit entry is about.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// A directory user.
    User,
    /// A directory group.
    Group,
    /// A device.
    Device,
    /// An integration.
    Integration,
    /// A sync run.
    SyncRun,
    /// An API token.
    ApiToken,
    /// A webhook endpoint.
    WebhookEndpoint,
}

impl ObjectKind {
    /// The kind stored as `name` (`User`, `SyncRun`, ...), if it is one.
    pub fn of_wire(name: &str) -> Option<Self> {
        Some(match name {
            "User" => Self::User,
            "Group" => Self::Group,
            "Device" => Self::Device,
            "Integration" => Self::Integration,
            "SyncRun" => Self::SyncRun,
            "ApiToken" => Self::ApiToken,
            "WebhookEndpoint" => Self::WebhookEndpoint,
            _ => return None,
        })
    }
}

/// A stored row naming something this version does not know (written by a newer one).
#[derive(Debug, thiserror::Error)]
#[error("a stored {what} `{name}` this version does not know")]
pub struct Unknown {
    pub what: &'static str,
    pub name: String,
}

/// `name` as an object kind, or INTERNAL.
pub fn object_kind(name: &str) -> async_graphql::Result<ObjectKind> {
    ObjectKind::of_wire(name).ok_or_else(|| {
        crate::error::DomainError::internal(Unknown {
            what: "object kind",
            name: name.to_owned(),
        })
        .into()
    })
}
