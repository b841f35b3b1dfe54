//! `group_memberships` and `group_nesting`: what a group has (its users, the groups nested in
//! it), and a batch of groups' changes written. The one group diff ([`MembersDiff`]) serves
//! pull sync (full and incremental reads) and SCIM alike.

use super::batch::{in_statements, keys_per_lookup, rows_per_statement};
use crate::error::DomainResult;
use chrono::{DateTime, Utc};
use entity::{group_membership, group_nesting};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set, sea_query::OnConflict,
};
use std::collections::{HashMap, HashSet};

/// What one group's memberships need: the users who left it and those who joined; the
/// groups nested in it that left and those that joined.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersDiff {
    pub group: i64,
    pub left: Vec<i64>,
    pub joined: Vec<i64>,
    pub groups_left: Vec<i64>,
    pub groups_joined: Vec<i64>,
}

/// From `has` to `wants`: what leaves and what joins, each sorted.
fn difference(has: &HashSet<i64>, wants: &HashSet<i64>) -> (Vec<i64>, Vec<i64>) {
    let mut left: Vec<i64> = has.difference(wants).copied().collect();
    let mut joined: Vec<i64> = wants.difference(has).copied().collect();
    left.sort_unstable();
    joined.sort_unstable();
    (left, joined)
}

impl MembersDiff {
    /// From the user members a group `has` to those it `wants`.
    pub fn between(group: i64, has: &HashSet<i64>, wants: &HashSet<i64>) -> Self {
        let (left, joined) = difference(has, wants);
        Self {
            group,
            left,
            joined,
            ..Self::default()
        }
    }

    /// With the nested groups going from those the group `has` to those it `wants` (the
    /// group itself never nests in itself: it is left out of `wants`).
    pub fn nesting(mut self, has: &HashSet<i64>, wants: &HashSet<i64>) -> Self {
        let mut wants = wants.clone();
        wants.remove(&self.group);
        (self.groups_left, self.groups_joined) = difference(has, &wants);
        self
    }

    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.left.is_empty()
            && self.joined.is_empty()
            && self.groups_left.is_empty()
            && self.groups_joined.is_empty()
    }
}

/// The members of each of `groups` (a group without members is absent).
pub async fn members_of<C: ConnectionTrait>(
    db: &C,
    groups: &[i64],
) -> DomainResult<HashMap<i64, HashSet<i64>>> {
    let mut have: HashMap<i64, HashSet<i64>> = HashMap::new();
    for chunk in groups.chunks(rows_per_statement(db, 1)) {
        for (group, user) in group_membership::Entity::find()
            .select_only()
            .column(group_membership::Column::GroupId)
            .column(group_membership::Column::UserId)
            .filter(group_membership::Column::GroupId.is_in(chunk.iter().copied()))
            .into_tuple::<(i64, i64)>()
            .all(db)
            .await?
        {
            have.entry(group).or_default().insert(user);
        }
    }
    Ok(have)
}

/// The groups nested directly in each of `groups` (a group without any is absent).
pub async fn children_of<C: ConnectionTrait>(
    db: &C,
    groups: &[i64],
) -> DomainResult<HashMap<i64, HashSet<i64>>> {
    let mut have: HashMap<i64, HashSet<i64>> = HashMap::new();
    for chunk in groups.chunks(rows_per_statement(db, 1)) {
        for (parent, child) in group_nesting::Entity::find()
            .select_only()
            .column(group_nesting::Column::ParentId)
            .column(group_nesting::Column::ChildId)
            .filter(group_nesting::Column::ParentId.is_in(chunk.iter().copied()))
            .into_tuple::<(i64, i64)>()
            .all(db)
            .await?
        {
            have.entry(parent).or_default().insert(child);
        }
    }
    Ok(have)
}

/// Of `groups` × `users`, the memberships that exist.
pub async fn present<C: ConnectionTrait>(
    db: &C,
    groups: &[i64],
    users: &[i64],
) -> DomainResult<HashSet<(i64, i64)>> {
    let mut present = HashSet::new();
    // Both lists are bound: each takes at most half of one statement's keys.
    let half = (keys_per_lookup(db) / 2).max(1);
    for groups in groups.chunks(half) {
        for users in users.chunks(half) {
            present.extend(
                group_membership::Entity::find()
                    .select_only()
                    .column(group_membership::Column::GroupId)
                    .column(group_membership::Column::UserId)
                    .filter(group_membership::Column::GroupId.is_in(groups.iter().copied()))
                    .filter(group_membership::Column::UserId.is_in(users.iter().copied()))
                    .into_tuple::<(i64, i64)>()
                    .all(db)
                    .await?,
            );
        }
    }
    Ok(present)
}

/// Writes `diffs` in the caller's transaction: each group's leavers deleted, its joiners
/// inserted at `at` (a membership that exists already is left as it is).
pub async fn write<C: ConnectionTrait>(
    txn: &C,
    diffs: &[MembersDiff],
    at: DateTime<Utc>,
) -> DomainResult<()> {
    for diff in diffs.iter().filter(|d| !d.left.is_empty()) {
        for chunk in diff.left.chunks(rows_per_statement(txn, 1) - 1) {
            group_membership::Entity::delete_many()
                .filter(group_membership::Column::GroupId.eq(diff.group))
                .filter(group_membership::Column::UserId.is_in(chunk.iter().copied()))
                .exec(txn)
                .await?;
        }
    }
    let joins: Vec<group_membership::ActiveModel> = diffs
        .iter()
        .flat_map(|d| {
            d.joined.iter().map(|user| group_membership::ActiveModel {
                group_id: Set(d.group),
                user_id: Set(*user),
                created_at: Set(at),
            })
        })
        .collect();
    for chunk in in_statements(txn, 3, joins) {
        group_membership::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([
                    group_membership::Column::GroupId,
                    group_membership::Column::UserId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    write_nesting(txn, diffs, at).await
}

/// The nested groups of `diffs`, in the caller's transaction: each group's leavers deleted,
/// its joiners inserted at `at`.
async fn write_nesting<C: ConnectionTrait>(
    txn: &C,
    diffs: &[MembersDiff],
    at: DateTime<Utc>,
) -> DomainResult<()> {
    for diff in diffs.iter().filter(|d| !d.groups_left.is_empty()) {
        for chunk in diff.groups_left.chunks(rows_per_statement(txn, 1) - 1) {
            group_nesting::Entity::delete_many()
                .filter(group_nesting::Column::ParentId.eq(diff.group))
                .filter(group_nesting::Column::ChildId.is_in(chunk.iter().copied()))
                .exec(txn)
                .await?;
        }
    }
    let joins: Vec<group_nesting::ActiveModel> = diffs
        .iter()
        .flat_map(|d| {
            d.groups_joined
                .iter()
                .map(|child| group_nesting::ActiveModel {
                    parent_id: Set(d.group),
                    child_id: Set(*child),
                    created_at: Set(at),
                })
        })
        .collect();
    for chunk in in_statements(txn, 3, joins) {
        group_nesting::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([
                    group_nesting::Column::ParentId,
                    group_nesting::Column::ChildId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_names_who_left_and_who_joined() {
        let has: HashSet<i64> = [1, 2, 3].into();
        let wants: HashSet<i64> = [3, 4, 2, 5].into();
        let diff = MembersDiff::between(9, &has, &wants);
        assert_eq!(
            diff,
            MembersDiff {
                group: 9,
                left: vec![1],
                joined: vec![4, 5],
                ..MembersDiff::default()
            }
        );
        assert!(MembersDiff::between(9, &has, &has).is_empty());
        let nested = MembersDiff::between(9, &has, &has).nesting(&[7].into(), &[8, 9].into());
        assert_eq!(
            (nested.groups_left, nested.groups_joined),
            (vec![7], vec![8]),
            "a group never nests in itself"
        );
    }
}
