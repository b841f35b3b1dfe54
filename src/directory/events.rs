//! Directory change events: an outbox written in the transaction of each change, so an event
//! exists exactly when its change committed. This module says what each event is (its type,
//! the object's state, the changed fields); `store::events` stores and reads them, re-exported
//! here for the callers.
//!
//! [`record`] numbers a transaction's events with `event_sequence` (see migration 7): the row
//! lock makes numbers follow commit order, so the feed ([`list`]) is gapless and a consumer
//! resumes after the last number it saw. Each event carries the object's global id and its
//! state after the change; updates name the fields that changed. A change that changes
//! nothing writes no event. [`prune`] drops events past the retention.

use super::ids::global_id;
pub use crate::store::events::{
    EventFilter, NewEvent, POLL, Read, last_seq, list, prune, read, record, written_or_poll,
};
use crate::store::memberships::MembersDiff;
use entity::{device, directory_group, directory_user, enums::UserStatus, integration, sync_run};
use serde_json::{Value, json};

/// Every kind of event, by the name consumers see.
pub const EVENT_TYPES: [&str; 22] = [
    "user.created",
    "user.updated",
    "user.suspended",
    "user.reactivated",
    "user.archived",
    "user.restored",
    "user.removed",
    "group.created",
    "group.updated",
    "group.removed",
    "group.member_added",
    "group.member_removed",
    "device.registered",
    "device.assigned",
    "device.unassigned",
    "integration.created",
    "integration.authorized",
    "integration.needs_reauth",
    "integration.renamed",
    "integration.deleted",
    "sync_run.held",
    "sync_run.finished",
];

/// An event's `data`: `{"object": {"id", "type"}, "state": ..., "changedFields": [...]}`,
/// serialised straight to text (a sync writes one per changed user).
fn object<S: serde::Serialize>(kind: &str, id: i64, state: S, changed: &[&str]) -> String {
    #[derive(serde::Serialize)]
    struct ObjectRef<'a> {
        id: String,
        #[serde(rename = "type")]
        kind: &'a str,
    }
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Data<'a, S> {
        object: ObjectRef<'a>,
        state: S,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        changed_fields: &'a [&'a str],
    }
    serde_json::to_string(&Data {
        object: ObjectRef {
            id: global_id(kind, id),
            kind,
        },
        state,
        changed_fields: changed,
    })
    .unwrap_or_default()
}

/// An enum as the API spells it (`SUSPENDED`, `ENTRA_ID`, ...): its stored value.
fn label<E: sea_orm::ActiveEnum<Value = String>>(value: E) -> String {
    value.to_value()
}

fn integration_ref(id: Option<i64>) -> Value {
    id.map_or(Value::Null, |id| json!(global_id("Integration", id)))
}

/// A user's state as events show it: its id, integration and external id, every synced field
/// (`providers::fields::USER_FIELDS`), status, origin and last change.
pub struct UserState<'a>(&'a directory_user::Model);

impl<'a> UserState<'a> {
    pub fn of(m: &'a directory_user::Model) -> Self {
        Self(m)
    }
}

impl serde::Serialize for UserState<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use crate::providers::fields::USER_FIELDS;
        use serde::ser::SerializeMap;
        let m = self.0;
        let mut map = serializer.serialize_map(Some(USER_FIELDS.len() + 6))?;
        map.serialize_entry("id", &global_id("User", m.id))?;
        map.serialize_entry(
            "integrationId",
            &m.integration_id.map(|id| global_id("Integration", id)),
        )?;
        map.serialize_entry("externalId", &m.external_id)?;
        for field in USER_FIELDS {
            map.serialize_entry(field.name, &(field.stored)(m))?;
        }
        map.serialize_entry("status", &label(m.status))?;
        map.serialize_entry("origin", &m.origin_name)?;
        map.serialize_entry("updatedAt", &m.updated_at)?;
        map.end()
    }
}

impl NewEvent {
    /// `user.*` for `m` as it is after the change.
    pub fn user(event_type: &'static str, m: &directory_user::Model, changed: &[&str]) -> Self {
        Self {
            event_type,
            integration_id: m.integration_id,
            object_type: "User",
            object_id: m.id,
            data: object("User", m.id, UserState::of(m), changed),
        }
    }

    /// `group.created`, `group.updated`, `group.removed`.
    pub fn group(event_type: &'static str, m: &directory_group::Model, changed: &[&str]) -> Self {
        let mut state = serde_json::Map::new();
        state.insert("id".into(), json!(global_id("Group", m.id)));
        state.insert(
            "integrationId".into(),
            integration_ref(Some(m.integration_id)),
        );
        state.insert("externalId".into(), json!(m.external_id));
        for field in crate::providers::fields::GROUP_FIELDS {
            state.insert(field.name.into(), json!((field.stored)(m)));
        }
        Self {
            event_type,
            integration_id: Some(m.integration_id),
            object_type: "Group",
            object_id: m.id,
            data: object("Group", m.id, state, changed),
        }
    }

    /// `group.member_added` or `group.member_removed`: `user` in `group`.
    pub fn member(event_type: &'static str, integration_id: i64, group: i64, user: i64) -> Self {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Membership {
            group_id: String,
            user_id: String,
        }
        let state = Membership {
            group_id: global_id("Group", group),
            user_id: global_id("User", user),
        };
        Self {
            event_type,
            integration_id: Some(integration_id),
            object_type: "Group",
            object_id: group,
            data: object("Group", group, state, &[]),
        }
    }

    /// `group.child_group_*` (`event_type`) for the group `child` nested in `group`.
    pub fn nesting(event_type: &'static str, integration_id: i64, group: i64, child: i64) -> Self {
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Nesting {
            group_id: String,
            child_group_id: String,
        }
        let state = Nesting {
            group_id: global_id("Group", group),
            child_group_id: global_id("Group", child),
        };
        Self {
            event_type,
            integration_id: Some(integration_id),
            object_type: "Group",
            object_id: group,
            data: object("Group", group, state, &[]),
        }
    }

    /// `group.member_removed` for every user who left a group of `diffs`, then
    /// `group.member_added` for every one who joined; then `group.child_group_removed` for
    /// every nested group that left, `group.child_group_added` for every one that joined.
    pub fn memberships(integration_id: i64, diffs: &[MembersDiff]) -> Vec<Self> {
        let left = diffs.iter().flat_map(|d| {
            d.left
                .iter()
                .map(|user| Self::member("group.member_removed", integration_id, d.group, *user))
        });
        let joined = diffs.iter().flat_map(|d| {
            d.joined
                .iter()
                .map(|user| Self::member("group.member_added", integration_id, d.group, *user))
        });
        let groups_left = diffs.iter().flat_map(|d| {
            d.groups_left.iter().map(|child| {
                Self::nesting("group.child_group_removed", integration_id, d.group, *child)
            })
        });
        let groups_joined = diffs.iter().flat_map(|d| {
            d.groups_joined.iter().map(|child| {
                Self::nesting("group.child_group_added", integration_id, d.group, *child)
            })
        });
        left.chain(joined)
            .chain(groups_left)
            .chain(groups_joined)
            .collect()
    }

    /// `device.*` for `m` as it is after the change.
    pub fn device(event_type: &'static str, m: &device::Model) -> Self {
        let state = json!({
            "id": global_id("Device", m.id),
            "serialNumber": m.serial_number,
            "name": m.name,
            "platform": label(m.platform),
            "userId": m.user_id.map(|u| global_id("User", u)),
            "assignmentSource": m.assignment_source.map(label),
            "assignedAt": m.assigned_at,
        });
        Self {
            event_type,
            integration_id: None,
            object_type: "Device",
            object_id: m.id,
            data: object("Device", m.id, state, &[]),
        }
    }

    /// `integration.*` for `m` as it is after the change.
    pub fn integration(event_type: &'static str, m: &integration::Model) -> Self {
        let state = json!({
            "id": global_id("Integration", m.id),
            "name": m.name,
            "kind": label(m.kind),
            "status": label(m.status),
            "statusReason": m.status_reason,
            "tenant": m.tenant,
        });
        Self {
            event_type,
            integration_id: Some(m.id),
            object_type: "Integration",
            object_id: m.id,
            data: object("Integration", m.id, state, &[]),
        }
    }

    /// `sync_run.held` or `sync_run.finished`.
    pub fn sync_run(event_type: &'static str, m: &sync_run::Model) -> Self {
        let state = json!({
            "id": global_id("SyncRun", m.id),
            "integrationId": global_id("Integration", m.integration_id),
            "status": label(m.status),
            "trigger": label(m.trigger),
            "error": m.error,
            "usersCreated": m.users_created,
            "usersUpdated": m.users_updated,
            "usersRemoved": m.users_removed,
            "usersArchived": m.users_archived,
            "groupsCreated": m.groups_created,
            "groupsRemoved": m.groups_removed,
            "warningCount": m.warning_count,
        });
        Self {
            event_type,
            integration_id: Some(m.integration_id),
            object_type: "SyncRun",
            object_id: m.id,
            data: object("SyncRun", m.id, state, &[]),
        }
    }
}

/// The event of a write that turned `before` into `after` (SCIM PUT/PATCH, a restore): a
/// restore, a suspension, a reactivation or an update naming the fields that changed; `None`
/// when no field the API shows changed.
pub fn user_change(
    before: &directory_user::Model,
    after: &directory_user::Model,
) -> Option<NewEvent> {
    let changed = crate::providers::fields::user_row_changes(before, after);
    if changed.is_empty() {
        return None;
    }
    Some(NewEvent::user(
        status_event(before.status, after.status),
        after,
        &changed,
    ))
}

/// The event of a write that takes a user from status `before` to `after` (pull sync, SCIM
/// and restores alike): a restore (an archived user written again, R14), a suspension, a
/// reactivation, else an update.
pub fn status_event(before: UserStatus, after: UserStatus) -> &'static str {
    match (before, after) {
        (UserStatus::Archived, s) if s != UserStatus::Archived => "user.restored",
        (b, UserStatus::Suspended) if b != UserStatus::Suspended => "user.suspended",
        (UserStatus::Suspended, UserStatus::Active) => "user.reactivated",
        _ => "user.updated",
    }
}
