//! Directory change events: an outbox written in the transaction of each change, so an event
//! exists exactly when its change committed.
//!
//! [`record`] numbers a transaction's events with `event_sequence` (see migration 7): the row
//! lock makes numbers follow commit order, so the feed ([`list`]) is gapless and a consumer
//! resumes after the last number it saw. Each event carries the object's global id and its
//! state after the change; updates name the fields that changed. A change that changes
//! nothing writes no event. [`prune`] drops events past the retention.

use super::{ids::global_id, now};
use crate::{error::DomainResult, store::memberships::MembersDiff};
use entity::{
    device, directory_event, directory_group, directory_user, enums::UserStatus, integration,
    sync_run,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Query},
};
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

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: &'static str,
    pub integration_id: Option<i64>,
    pub object_type: &'static str,
    pub object_id: i64,
    /// JSON text: see [`object`].
    pub data: String,
}

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

    /// `group.member_removed` for every user who left a group of `diffs`, then
    /// `group.member_added` for every one who joined.
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
        left.chain(joined).collect()
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

/// Rows per insert, at most: 7 values each, well under both databases' bind limits; small
/// enough that the few prepared statement sizes ([`crate::db::statement_chunks`]) stay small.
const ROWS_PER_INSERT: usize = 256;

/// Writes `events` in the caller's transaction, numbered after every event committed before.
/// Call it last in the transaction: the sequence row stays locked until the commit.
pub async fn record<C: ConnectionTrait>(db: &C, events: Vec<NewEvent>) -> DomainResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let n = events.len() as i64;
    let bump = Query::update()
        .table(EventSequence)
        .value(LastSeq, Expr::col(LastSeq).add(n))
        .and_where(Expr::col(Id).eq(Expr::val(1)))
        .returning_col(LastSeq)
        .to_owned();
    let row = db.query_one(&bump).await?.ok_or_else(|| {
        crate::error::DomainError::internal(sea_orm::DbErr::RecordNotFound(
            "event_sequence has no row".into(),
        ))
    })?;
    let last: i64 = row.try_get("", "last_seq")?;
    let at = now();
    let mut seq = last - n;
    let rows: Vec<directory_event::ActiveModel> = events
        .into_iter()
        .map(|e| {
            seq += 1;
            directory_event::ActiveModel {
                seq: Set(seq),
                event_type: Set(e.event_type.to_owned()),
                occurred_at: Set(at),
                integration_id: Set(e.integration_id),
                object_type: Set(e.object_type.to_owned()),
                object_id: Set(e.object_id),
                data: Set(e.data),
            }
        })
        .collect();
    for chunk in crate::db::statement_chunks(rows, ROWS_PER_INSERT) {
        directory_event::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    WRITTEN.notify_waiters();
    Ok(())
}

#[derive(sea_orm::DeriveIden)]
struct EventSequence;
#[derive(sea_orm::DeriveIden)]
struct LastSeq;
#[derive(sea_orm::DeriveIden)]
struct Id;

/// Woken when this process writes events (before their commit: a waiter reads again, and
/// also reads every [`POLL`], which is how it sees other processes' events).
static WRITTEN: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// How often a waiting reader looks for events written by another process.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(250);

/// Waits until this process writes events, or [`POLL`] passes.
pub async fn written_or_poll() {
    let _ = tokio::time::timeout(POLL, WRITTEN.notified()).await;
}

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types (none: every type).
    pub types: Vec<String>,
    pub integration: Option<i64>,
}

/// Up to `first` events after `after`, in order; and whether more follow.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    after: Option<i64>,
    first: u64,
    filter: &EventFilter,
) -> DomainResult<crate::store::page::Page<directory_event::Model>> {
    list_between(db, after.unwrap_or(0), None, first, filter).await
}

/// [`list`], of events numbered at most `upto` (when given).
async fn list_between<C: ConnectionTrait>(
    db: &C,
    after: i64,
    upto: Option<i64>,
    first: u64,
    filter: &EventFilter,
) -> DomainResult<crate::store::page::Page<directory_event::Model>> {
    let mut select = directory_event::Entity::find().filter(directory_event::Column::Seq.gt(after));
    if let Some(upto) = upto {
        select = select.filter(directory_event::Column::Seq.lte(upto));
    }
    if !filter.types.is_empty() {
        select = select.filter(directory_event::Column::EventType.is_in(filter.types.clone()));
    }
    if let Some(id) = filter.integration {
        select = select.filter(directory_event::Column::IntegrationId.eq(id));
    }
    let mut items = select
        .order_by_asc(directory_event::Column::Seq)
        .limit(first + 1)
        .all(db)
        .await?;
    let has_next = items.len() as u64 > first;
    items.truncate(first as usize);
    Ok(crate::store::page::Page { items, has_next })
}

/// What a consumer that follows the feed read: the events, and the number it has read
/// through (events it did not want included), where its next read starts.
#[derive(Debug)]
pub struct Read {
    pub items: Vec<directory_event::Model>,
    pub through: i64,
    /// More wanted events may follow `through` already.
    pub has_next: bool,
}

/// Up to `first` wanted events after `after`, for a consumer that follows the feed (the
/// subscription, webhook delivery). Reads only up to the last number committed when it starts,
/// and moves past unwanted events up to there: a consumer of rare types does not scan the
/// same stretch of the log again on every read. Numbers follow commit order, so nothing at or
/// below that last number can still arrive.
pub async fn read<C: ConnectionTrait>(
    db: &C,
    after: i64,
    first: u64,
    filter: &EventFilter,
) -> DomainResult<Read> {
    let upto = last_seq(db).await?;
    if upto <= after {
        return Ok(Read {
            items: Vec::new(),
            through: after,
            has_next: false,
        });
    }
    let page = list_between(db, after, Some(upto), first, filter).await?;
    let through = if page.has_next {
        page.items.last().map_or(after, |e| e.seq)
    } else {
        upto
    };
    Ok(Read {
        items: page.items,
        through,
        has_next: page.has_next,
    })
}

/// The number of the last event committed (0 when there is none).
pub async fn last_seq<C: ConnectionTrait>(db: &C) -> DomainResult<i64> {
    Ok(directory_event::Entity::find()
        .select_only()
        .column_as(directory_event::Column::Seq.max(), "last")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten()
        .unwrap_or(0))
}

/// Deletes events that occurred before `before`; returns how many.
pub async fn prune<C: ConnectionTrait>(
    db: &C,
    before: chrono::DateTime<chrono::Utc>,
) -> DomainResult<u64> {
    Ok(directory_event::Entity::delete_many()
        .filter(directory_event::Column::OccurredAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
