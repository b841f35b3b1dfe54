//! The group store of the reconciler: a page of groups applied in one transaction, the
//! memberships of a batch of groups made what the directory lists, membership changes from an
//! incremental read, and group removal.

use super::Counts;
use crate::{
    directory::{
        events::{NewEvent, record},
        now,
    },
    error::DomainResult,
    providers::{
        ExternalGroup, Member, MemberChange,
        clean::{Action, ObjectKind, Warning, Warnings},
        fields::{GROUP_FIELDS, group_changes},
    },
    store::{self, batch::isolating, memberships::MembersDiff},
};
use entity::{directory_group, integration};
use sea_orm::{DatabaseConnection, Set};
use std::collections::{HashMap, HashSet};

/// One group to write, and what it is to the feed and the counts.
struct GroupWrite {
    row: directory_group::ActiveModel,
    external_id: String,
    event: &'static str,
    fields: Vec<&'static str>,
}

/// Applies a page of groups: the new ones and those that differ from their rows, with their
/// events, in one transaction. A group the database refuses is skipped with a warning and the
/// rest written ([`isolating`]); a stored group skipped keeps its row and its members.
pub(super) async fn apply_groups_page(
    db: &DatabaseConnection,
    integration: &integration::Model,
    groups: Vec<ExternalGroup>,
    counts: &mut Counts,
    warnings: &Warnings,
) -> DomainResult<()> {
    let mut unique: HashMap<String, ExternalGroup> = HashMap::new();
    for group in groups {
        unique.insert(group.external_id.clone(), group);
    }
    let keys: Vec<String> = unique.keys().cloned().collect();
    let existing = store::groups::rows_of(db, integration.id, &keys).await?;
    let at = now();
    let mut writes = Vec::new();
    for group in unique.into_values() {
        let (event, fields) = match existing.get(&group.external_id) {
            Some(row) => match group_changes(row, &group) {
                fields if fields.is_empty() => continue,
                fields => ("group.updated", fields),
            },
            None => ("group.created", Vec::new()),
        };
        let mut row = directory_group::ActiveModel {
            integration_id: Set(integration.id),
            external_id: Set(group.external_id.clone()),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        };
        for field in GROUP_FIELDS {
            (field.set)(&mut row, (field.given)(&group));
        }
        writes.push(GroupWrite {
            external_id: group.external_id,
            row,
            event,
            fields,
        });
    }
    let written = isolating(
        &writes,
        |batch| write_group_batch(db, batch),
        |write, refusal| {
            tracing::warn!(error = %refusal, "the database refused a group; skipped");
            warnings.push(Warning::new(
                ObjectKind::Group,
                &write.external_id,
                None,
                Action::Skipped,
                "the group was skipped: the database refused its record; a stored group keeps what it had",
            ));
        },
    )
    .await?;
    for write in written.into_iter().flatten() {
        match write.event {
            "group.created" => counts.groups_created += 1,
            _ => counts.groups_updated += 1,
        }
    }
    Ok(())
}

/// Writes one batch of groups and their events in one transaction.
async fn write_group_batch<'a>(
    db: &DatabaseConnection,
    batch: &'a [GroupWrite],
) -> DomainResult<&'a [GroupWrite]> {
    let txn = crate::db::begin_write(db).await?;
    let rows: Vec<directory_group::ActiveModel> = batch.iter().map(|w| w.row.clone()).collect();
    let written = store::groups::upsert(&txn, rows).await?;
    let by_external: HashMap<&str, &GroupWrite> =
        batch.iter().map(|w| (w.external_id.as_str(), w)).collect();
    let events = written
        .iter()
        .filter_map(|row| {
            let write = by_external.get(row.external_id.as_str())?;
            Some(NewEvent::group(write.event, row, &write.fields))
        })
        .collect();
    record(&txn, events).await?;
    txn.commit().await?;
    Ok(batch)
}

/// Groups whose memberships are applied together, in one transaction.
pub(super) const MEMBERSHIP_BATCH: usize = 200;

/// What a read lists as one stored group's direct members, by stored id.
#[derive(Debug, Clone, Default)]
pub(super) struct GroupMembers {
    pub group: i64,
    pub users: HashSet<i64>,
    /// The groups nested in it.
    pub groups: HashSet<i64>,
}

/// Makes the memberships (users and nested groups) of a batch of groups those the directory
/// lists. Reads what is there in one statement per kind, and writes only the difference, in
/// one transaction (none when nothing changed). A group whose memberships the database
/// refuses keeps those it had, with a warning ([`isolating`]).
pub(super) async fn apply_members(
    db: &DatabaseConnection,
    integration_id: i64,
    batch: Vec<GroupMembers>,
    warnings: &Warnings,
) -> DomainResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = batch.iter().map(|g| g.group).collect();
    let mut have = store::memberships::members_of(db, &ids).await?;
    let mut nested = store::memberships::children_of(db, &ids).await?;
    let diffs: Vec<MembersDiff> = batch
        .into_iter()
        .map(|wants| {
            let group = wants.group;
            let users = have.remove(&group).unwrap_or_default();
            let groups = nested.remove(&group).unwrap_or_default();
            MembersDiff::between(group, &users, &wants.users).nesting(&groups, &wants.groups)
        })
        .filter(|d| !d.is_empty())
        .collect();
    let mut refused = Vec::new();
    isolating(
        &diffs,
        |batch| write_members_batch(db, integration_id, batch),
        |diff, err| {
            tracing::warn!(error = %err, group = diff.group, "the database refused a group's memberships; skipped");
            refused.push(diff.group);
        },
    )
    .await?;
    if !refused.is_empty() {
        for group in store::groups::by_ids(db, &refused).await? {
            warnings.push(Warning::new(
                ObjectKind::Group,
                &group.external_id,
                Some("members"),
                Action::Skipped,
                "the group's membership changes were skipped: the database refused them; the group keeps the members it had",
            ));
        }
    }
    Ok(())
}

/// Writes the membership changes of a batch of groups, and their events, in one transaction.
async fn write_members_batch(
    db: &DatabaseConnection,
    integration_id: i64,
    batch: &[MembersDiff],
) -> DomainResult<()> {
    let txn = crate::db::begin_write(db).await?;
    store::memberships::write(&txn, batch, now()).await?;
    record(&txn, NewEvent::memberships(integration_id, batch)).await?;
    txn.commit().await?;
    Ok(())
}

pub(super) async fn remove_groups(
    db: &DatabaseConnection,
    ids: &[i64],
    counts: &mut Counts,
) -> DomainResult<()> {
    for chunk in ids.chunks(REMOVAL_CHUNK) {
        let txn = crate::db::begin_write(db).await?;
        let rows = store::groups::remove(&txn, chunk).await?;
        let events = rows
            .iter()
            .map(|row| NewEvent::group("group.removed", row, &[]))
            .collect();
        record(&txn, events).await?;
        txn.commit().await?;
        counts.groups_removed += rows.len() as i32;
    }
    Ok(())
}

/// Groups removed per transaction.
const REMOVAL_CHUNK: usize = 1_000;

/// Applies an incremental read's membership changes (group external id → changes): added
/// users and groups join, removed ones leave; members dirgate does not hold are left out, and
/// so is a join of a member or a leave of a non-member.
pub(super) async fn apply_member_changes(
    db: &DatabaseConnection,
    integration_id: i64,
    groups: &[(String, Vec<MemberChange>)],
) -> DomainResult<()> {
    let changed: Vec<&(String, Vec<MemberChange>)> =
        groups.iter().filter(|(_, m)| !m.is_empty()).collect();
    if changed.is_empty() {
        return Ok(());
    }
    let mut group_ids: HashSet<String> = changed.iter().map(|(g, _)| g.clone()).collect();
    let mut user_ids: HashSet<String> = HashSet::new();
    for change in changed.iter().flat_map(|(_, members)| members) {
        match &change.member {
            Member::User(id) => user_ids.insert(id.clone()),
            Member::Group(id) => group_ids.insert(id.clone()),
        };
    }
    let group_ids: Vec<String> = group_ids.into_iter().collect();
    let group_rows = store::groups::rows_of(db, integration_id, &group_ids).await?;
    let user_ids: Vec<String> = user_ids.into_iter().collect();
    let (user_rows, _) = store::users::rows_of(db, integration_id, &user_ids).await?;
    let touched: Vec<i64> = changed
        .iter()
        .filter_map(|(g, _)| group_rows.get(g).map(|g| g.id))
        .collect();
    let users: Vec<i64> = user_rows.values().map(|u| u.id).collect();
    let present = store::memberships::present(db, &touched, &users).await?;
    let nested = store::memberships::children_of(db, &touched).await?;
    let mut diffs = Vec::new();
    for (group, members) in changed {
        let Some(group) = group_rows.get(group) else {
            continue;
        };
        let mut diff = MembersDiff {
            group: group.id,
            ..MembersDiff::default()
        };
        let children = nested.get(&group.id);
        for change in members {
            let (id, member_now, left, joined) = match &change.member {
                Member::User(external) => {
                    let Some(user) = user_rows.get(external) else {
                        continue;
                    };
                    let now = present.contains(&(group.id, user.id));
                    (user.id, now, &mut diff.left, &mut diff.joined)
                }
                Member::Group(external) => {
                    let Some(child) = group_rows.get(external).filter(|c| c.id != group.id) else {
                        continue;
                    };
                    let now = children.is_some_and(|c| c.contains(&child.id));
                    (
                        child.id,
                        now,
                        &mut diff.groups_left,
                        &mut diff.groups_joined,
                    )
                }
            };
            match (change.removed, member_now) {
                (true, true) if !left.contains(&id) => left.push(id),
                (false, false) if !joined.contains(&id) => joined.push(id),
                _ => {}
            }
        }
        if !diff.is_empty() {
            diffs.push(diff);
        }
    }
    if diffs.is_empty() {
        return Ok(());
    }
    write_members_batch(db, integration_id, &diffs).await
}

#[cfg(test)]
mod tests {
    use super::{
        super::testing::{Fixture, team},
        *,
    };
    use entity::group_membership;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    /// More users than one statement may bind (SQLite's limit is 32,766) are looked up in
    /// several statements, and the memberships found are exact.
    #[tokio::test]
    async fn present_memberships_of_more_users_than_one_statement_binds() {
        let fx = Fixture::new().await;
        let users = fx.users(2).await;
        let mut counts = Counts::default();
        apply_groups_page(
            &fx.db,
            &fx.integration,
            vec![team(0)],
            &mut counts,
            &fx.warnings,
        )
        .await
        .unwrap();
        let group = fx.group("g0").await.unwrap().id;
        apply_members(
            &fx.db,
            fx.integration.id,
            vec![GroupMembers {
                group,
                users: HashSet::from([users[1]]),
                ..GroupMembers::default()
            }],
            &fx.warnings,
        )
        .await
        .unwrap();
        let mut asked: Vec<i64> = (1_000_000..1_040_000).collect();
        asked.extend(&users);
        let found = store::memberships::present(&fx.db, &[group], &asked)
            .await
            .unwrap();
        assert_eq!(found, HashSet::from([(group, users[1])]));
    }

    #[tokio::test]
    async fn apply_members_writes_only_the_difference() {
        let fx = Fixture::new().await;
        let users = fx.users(3).await;
        let mut counts = Counts::default();
        apply_groups_page(
            &fx.db,
            &fx.integration,
            vec![team(0)],
            &mut counts,
            &fx.warnings,
        )
        .await
        .unwrap();
        let group = fx.group("g0").await.unwrap().id;
        apply_members(
            &fx.db,
            fx.integration.id,
            vec![GroupMembers {
                group,
                users: HashSet::from([users[0], users[1]]),
                ..GroupMembers::default()
            }],
            &fx.warnings,
        )
        .await
        .unwrap();
        let before = group_membership::Entity::find()
            .filter(group_membership::Column::UserId.eq(users[0]))
            .one(&fx.db)
            .await
            .unwrap()
            .unwrap();
        apply_members(
            &fx.db,
            fx.integration.id,
            vec![GroupMembers {
                group,
                users: HashSet::from([users[0], users[2]]),
                ..GroupMembers::default()
            }],
            &fx.warnings,
        )
        .await
        .unwrap();
        assert_eq!(fx.members("g0").await, ["u0", "u2"]);
        let kept = group_membership::Entity::find()
            .filter(group_membership::Column::UserId.eq(users[0]))
            .one(&fx.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            kept.created_at, before.created_at,
            "a kept row is not rewritten"
        );
    }

    #[tokio::test]
    async fn apply_groups_page_counts_created_updated_and_skips_unchanged() {
        let fx = Fixture::new().await;
        let mut counts = Counts::default();
        apply_groups_page(
            &fx.db,
            &fx.integration,
            vec![team(0), team(1)],
            &mut counts,
            &fx.warnings,
        )
        .await
        .unwrap();
        let mut renamed = team(1);
        renamed.description = Some("Sales".into());
        apply_groups_page(
            &fx.db,
            &fx.integration,
            vec![team(0), renamed],
            &mut counts,
            &fx.warnings,
        )
        .await
        .unwrap();
        assert_eq!((counts.groups_created, counts.groups_updated), (2, 1));
        assert_eq!(
            fx.group("g1").await.unwrap().description.as_deref(),
            Some("Sales")
        );
    }
}
