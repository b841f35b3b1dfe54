//! The group store of the reconciler: a page of groups applied in one transaction, the
//! memberships of a batch of groups made what the directory lists, membership changes from an
//! incremental read, and group removal.

use super::{
    Counts,
    store::{in_statements, keys_per_lookup, rows_per_statement},
    users::load_users,
};
use crate::{
    directory::{
        events::{NewEvent, record},
        now,
    },
    error::DomainResult,
    providers::{ExternalGroup, MemberChange},
};
use entity::{directory_group, group_membership, integration};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, Set};
use std::collections::{HashMap, HashSet};

fn group_differs(row: &directory_group::Model, group: &ExternalGroup) -> bool {
    !changed_fields(row, group).is_empty()
}

/// The names (as the API spells them) of the fields a write of `group` changes in `row`.
fn changed_fields(row: &directory_group::Model, group: &ExternalGroup) -> Vec<&'static str> {
    [
        (row.display_name != group.display_name, "displayName"),
        (row.email != group.email, "email"),
        (row.description != group.description, "description"),
    ]
    .into_iter()
    .filter_map(|(differs, name)| differs.then_some(name))
    .collect()
}

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

pub(super) async fn apply_groups_page(
    db: &DatabaseConnection,
    integration: &integration::Model,
    groups: Vec<ExternalGroup>,
    counts: &mut Counts,
) -> DomainResult<()> {
    use directory_group::Column as C;
    let mut unique: HashMap<String, ExternalGroup> = HashMap::new();
    for group in groups {
        unique.insert(group.external_id.clone(), group);
    }
    let keys: Vec<String> = unique.keys().cloned().collect();
    let existing = load_groups(db, integration.id, &keys).await?;
    let at = now();
    let mut rows = Vec::new();
    // external id → (event type, changed fields)
    let mut events: HashMap<String, (&'static str, Vec<&'static str>)> = HashMap::new();
    for group in unique.into_values() {
        match existing.get(&group.external_id) {
            Some(row) if !group_differs(row, &group) => continue,
            Some(row) => {
                counts.groups_updated += 1;
                let fields = changed_fields(row, &group);
                events.insert(group.external_id.clone(), ("group.updated", fields));
            }
            None => {
                counts.groups_created += 1;
                events.insert(group.external_id.clone(), ("group.created", Vec::new()));
            }
        }
        rows.push(directory_group::ActiveModel {
            integration_id: Set(integration.id),
            external_id: Set(group.external_id),
            display_name: Set(group.display_name),
            email: Set(group.email),
            description: Set(group.description),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        });
    }
    if rows.is_empty() {
        return Ok(());
    }
    let txn = crate::db::begin_write(db).await?;
    let mut written = Vec::new();
    for chunk in in_statements(&txn, 7, rows) {
        written.extend(
            directory_group::Entity::insert_many(chunk)
                .on_conflict(
                    sea_orm::sea_query::OnConflict::columns([C::IntegrationId, C::ExternalId])
                        .update_columns([C::DisplayName, C::Email, C::Description, C::UpdatedAt])
                        .to_owned(),
                )
                .exec_with_returning(&txn)
                .await?,
        );
    }
    let events = written
        .iter()
        .filter_map(|row| {
            let (ty, fields) = events.get(&row.external_id)?;
            Some(NewEvent::group(ty, row, fields))
        })
        .collect();
    record(&txn, events).await?;
    txn.commit().await?;
    Ok(())
}

/// Groups whose memberships are applied together, in one transaction.
pub(super) const MEMBERSHIP_BATCH: usize = 200;

/// Makes the memberships of a batch of groups those the directory lists. Reads what is there
/// in one statement, and writes only the difference, in one transaction (none when nothing
/// changed).
pub(super) async fn apply_members(
    db: &DatabaseConnection,
    integration_id: i64,
    batch: Vec<(i64, HashSet<i64>)>,
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
    let at = now();
    let mut gone: Vec<(i64, Vec<i64>)> = Vec::new();
    let mut new: Vec<group_membership::ActiveModel> = Vec::new();
    for (group, members) in batch {
        let current = have.remove(&group).unwrap_or_default();
        let left: Vec<i64> = current.difference(&members).copied().collect();
        if !left.is_empty() {
            gone.push((group, left));
        }
        new.extend(
            members
                .difference(&current)
                .map(|user| group_membership::ActiveModel {
                    group_id: Set(group),
                    user_id: Set(*user),
                    created_at: Set(at),
                }),
        );
    }
    if gone.is_empty() && new.is_empty() {
        return Ok(());
    }
    let mut events: Vec<NewEvent> = gone
        .iter()
        .flat_map(|(group, users)| {
            users
                .iter()
                .map(|user| NewEvent::member("group.member_removed", integration_id, *group, *user))
        })
        .collect();
    events.extend(new.iter().map(|m| {
        NewEvent::member(
            "group.member_added",
            integration_id,
            *m.group_id.as_ref(),
            *m.user_id.as_ref(),
        )
    }));
    let txn = crate::db::begin_write(db).await?;
    for (group, users) in gone {
        group_membership::Entity::delete_many()
            .filter(group_membership::Column::GroupId.eq(group))
            .filter(group_membership::Column::UserId.is_in(users))
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
        apply_groups_page(&fx.db, &fx.integration, vec![team(0)], &mut counts)
            .await
            .unwrap();
        let group = fx.group("g0").await.unwrap().id;
        apply_members(
            &fx.db,
            fx.integration.id,
            vec![(group, HashSet::from([users[0], users[1]]))],
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
        apply_groups_page(&fx.db, &fx.integration, vec![team(0), team(1)], &mut counts)
            .await
            .unwrap();
        let mut renamed = team(1);
        renamed.description = Some("Sales".into());
        apply_groups_page(&fx.db, &fx.integration, vec![team(0), renamed], &mut counts)
            .await
            .unwrap();
        assert_eq!((counts.groups_created, counts.groups_updated), (2, 1));
        assert_eq!(
            fx.group("g1").await.unwrap().description.as_deref(),
            Some("Sales")
        );
    }
}
