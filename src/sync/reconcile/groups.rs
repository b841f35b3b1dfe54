//! The group store of the reconciler: a page of groups applied in one transaction, the
//! memberships of a batch of groups made what the directory lists, membership changes from an
//! incremental read, and group removal.

use super::{Counts, users::load_users};
use crate::store::batch::{in_statements, isolating, keys_per_lookup, rows_per_statement};
use crate::{
    directory::{
        events::{NewEvent, record},
        now,
    },
    error::DomainResult,
    providers::{
        ExternalGroup, MemberChange,
        clean::{Action, ObjectKind, Warning, Warnings},
        fields::{GROUP_FIELDS, group_changes},
    },
};
use entity::{directory_group, group_membership, integration};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set};
use std::collections::{HashMap, HashSet};

/// The integration's groups with these external ids.
pub(super) async fn load_groups(
    db: &DatabaseConnection,
    integration_id: i64,
    external_ids: &[String],
) -> DomainResult<HashMap<String, directory_group::Model>> {
    let mut found = HashMap::new();
    for chunk in external_ids.chunks(keys_per_lookup(db)) {
        found.extend(
            directory_group::Entity::find()
                .filter(directory_group::Column::IntegrationId.eq(integration_id))
                .filter(directory_group::Column::ExternalId.is_in(chunk.iter().cloned()))
                .all(db)
                .await?
                .into_iter()
                .map(|g| (g.external_id.clone(), g)),
        );
    }
    Ok(found)
}

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
    let existing = load_groups(db, integration.id, &keys).await?;
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
    use directory_group::Column as C;
    let txn = crate::db::begin_write(db).await?;
    let mut written = Vec::new();
    let rows: Vec<directory_group::ActiveModel> = batch.iter().map(|w| w.row.clone()).collect();
    // The synced fields, and integration_id, external_id, created_at, updated_at.
    let columns = GROUP_FIELDS.len() + 4;
    let updated = GROUP_FIELDS.iter().map(|f| f.column).chain([C::UpdatedAt]);
    for chunk in in_statements(&txn, columns, rows) {
        written.extend(
            directory_group::Entity::insert_many(chunk)
                .on_conflict(
                    sea_orm::sea_query::OnConflict::columns([C::IntegrationId, C::ExternalId])
                        .update_columns(updated.clone())
                        .to_owned(),
                )
                .exec_with_returning(&txn)
                .await?,
        );
    }
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

/// What one group's memberships need: the users who left it and those who joined.
struct MembersDiff {
    group: i64,
    left: Vec<i64>,
    joined: Vec<i64>,
}

/// Makes the memberships of a batch of groups those the directory lists. Reads what is there
/// in one statement, and writes only the difference, in one transaction (none when nothing
/// changed). A group whose memberships the database refuses keeps those it had, with a
/// warning ([`isolating`]).
pub(super) async fn apply_members(
    db: &DatabaseConnection,
    integration_id: i64,
    batch: Vec<(i64, HashSet<i64>)>,
    warnings: &Warnings,
) -> DomainResult<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = batch.iter().map(|(g, _)| *g).collect();
    let mut have: HashMap<i64, HashSet<i64>> = HashMap::new();
    for (group, user) in group_membership::Entity::find()
        .select_only()
        .column(group_membership::Column::GroupId)
        .column(group_membership::Column::UserId)
        .filter(group_membership::Column::GroupId.is_in(ids))
        .into_tuple::<(i64, i64)>()
        .all(db)
        .await?
    {
        have.entry(group).or_default().insert(user);
    }
    let diffs: Vec<MembersDiff> = batch
        .into_iter()
        .map(|(group, members)| {
            let current = have.remove(&group).unwrap_or_default();
            MembersDiff {
                group,
                left: current.difference(&members).copied().collect(),
                joined: members.difference(&current).copied().collect(),
            }
        })
        .filter(|d| !d.left.is_empty() || !d.joined.is_empty())
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
        for group in directory_group::Entity::find()
            .filter(directory_group::Column::Id.is_in(refused))
            .all(db)
            .await?
        {
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
    let at = now();
    let mut events: Vec<NewEvent> = Vec::new();
    let mut new: Vec<group_membership::ActiveModel> = Vec::new();
    for diff in batch {
        events.extend(diff.left.iter().map(|user| {
            NewEvent::member("group.member_removed", integration_id, diff.group, *user)
        }));
    }
    for diff in batch {
        for user in &diff.joined {
            events.push(NewEvent::member(
                "group.member_added",
                integration_id,
                diff.group,
                *user,
            ));
            new.push(group_membership::ActiveModel {
                group_id: Set(diff.group),
                user_id: Set(*user),
                created_at: Set(at),
            });
        }
    }
    let txn = crate::db::begin_write(db).await?;
    for diff in batch.iter().filter(|d| !d.left.is_empty()) {
        group_membership::Entity::delete_many()
            .filter(group_membership::Column::GroupId.eq(diff.group))
            .filter(group_membership::Column::UserId.is_in(diff.left.iter().copied()))
            .exec(&txn)
            .await?;
    }
    for chunk in in_statements(&txn, 3, new) {
        group_membership::Entity::insert_many(chunk)
            .exec_without_returning(&txn)
            .await?;
    }
    record(&txn, events).await?;
    txn.commit().await?;
    Ok(())
}

pub(super) async fn remove_groups(
    db: &DatabaseConnection,
    ids: &[i64],
    counts: &mut Counts,
) -> DomainResult<()> {
    for chunk in ids.chunks(rows_per_statement(db, 1)) {
        let txn = crate::db::begin_write(db).await?;
        let rows = directory_group::Entity::find()
            .filter(directory_group::Column::Id.is_in(chunk.iter().copied()))
            .all(&txn)
            .await?;
        let removed = directory_group::Entity::delete_many()
            .filter(directory_group::Column::Id.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await?;
        let events = rows
            .iter()
            .map(|row| NewEvent::group("group.removed", row, &[]))
            .collect();
        record(&txn, events).await?;
        txn.commit().await?;
        counts.groups_removed += removed.rows_affected as i32;
    }
    Ok(())
}

/// Applies an incremental read's membership changes (group external id → changes): added
/// users join, removed ones leave; users dirgate does not hold are left out.
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
    let group_ids: Vec<String> = changed.iter().map(|(g, _)| g.clone()).collect();
    let group_rows = load_groups(db, integration_id, &group_ids).await?;
    let user_ids: Vec<String> = changed
        .iter()
        .flat_map(|(_, members)| members.iter().map(|m| m.user.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let (user_rows, _) = load_users(db, integration_id, &user_ids).await?;
    let at = now();
    let mut joins = Vec::new();
    let mut leaves: Vec<(i64, Vec<i64>)> = Vec::new();
    for (group, members) in changed {
        let Some(group_row) = group_rows.get(group) else {
            continue;
        };
        let mut left = Vec::new();
        for member in members {
            let Some(user) = user_rows.get(&member.user) else {
                continue;
            };
            if member.removed {
                left.push(user.id);
            } else {
                joins.push(group_membership::ActiveModel {
                    group_id: Set(group_row.id),
                    user_id: Set(user.id),
                    created_at: Set(at),
                });
            }
        }
        if !left.is_empty() {
            leaves.push((group_row.id, left));
        }
    }
    // What is there already: a join of a member or a leave of a non-member is no change.
    let mut present: HashSet<(i64, i64)> = HashSet::new();
    let touched_groups: Vec<i64> = group_rows.values().map(|g| g.id).collect();
    for chunk in touched_groups.chunks(keys_per_lookup(db)) {
        present.extend(
            group_membership::Entity::find()
                .select_only()
                .column(group_membership::Column::GroupId)
                .column(group_membership::Column::UserId)
                .filter(group_membership::Column::GroupId.is_in(chunk.iter().copied()))
                .filter(group_membership::Column::UserId.is_in(user_rows.values().map(|u| u.id)))
                .into_tuple::<(i64, i64)>()
                .all(db)
                .await?,
        );
    }
    let mut events: Vec<NewEvent> = Vec::new();
    for (group, users) in &leaves {
        events.extend(
            users
                .iter()
                .filter(|u| present.contains(&(*group, **u)))
                .map(|u| NewEvent::member("group.member_removed", integration_id, *group, *u)),
        );
    }
    let mut added = HashSet::new();
    for join in &joins {
        let pair = (*join.group_id.as_ref(), *join.user_id.as_ref());
        if !present.contains(&pair) && added.insert(pair) {
            events.push(NewEvent::member(
                "group.member_added",
                integration_id,
                pair.0,
                pair.1,
            ));
        }
    }
    let txn = crate::db::begin_write(db).await?;
    for (group, users) in leaves {
        group_membership::Entity::delete_many()
            .filter(group_membership::Column::GroupId.eq(group))
            .filter(group_membership::Column::UserId.is_in(users))
            .exec(&txn)
            .await?;
    }
    for chunk in in_statements(&txn, 3, joins) {
        group_membership::Entity::insert_many(chunk)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    group_membership::Column::GroupId,
                    group_membership::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    record(&txn, events).await?;
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{
        super::testing::{Fixture, team},
        *,
    };

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
            vec![(group, HashSet::from([users[0], users[1]]))],
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
            vec![(group, HashSet::from([users[0], users[2]]))],
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
