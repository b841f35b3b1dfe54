//! The reconciler: applies a complete read of a directory to dirgate's tables, in named steps
//! (users, groups, memberships, then removals), one transaction per page or group, so memory
//! stays bounded by a page and a failure part-way loses nothing.
//!
//! Removals are decided only after the whole directory was read (R15): users gone from the
//! directory are deleted when they have no device and archived when they have one (R14);
//! disabled users become SUSPENDED; returning users are restored. A sync that would remove
//! more than the threshold is held instead (R15).

use crate::{
    directory::{match_key, now},
    error::{DomainError, DomainResult},
    providers::{DirectoryProvider, ExternalGroup, ExternalUser, ProviderError},
};
use entity::{
    device, directory_group, directory_user, enums::UserStatus, group_membership, integration,
    user_alias,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, Set, TransactionTrait,
};
use std::collections::{HashMap, HashSet};

/// What a sync changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub pages_read: i32,
    pub users_created: i32,
    pub users_updated: i32,
    pub users_suspended: i32,
    pub users_removed: i32,
    pub users_archived: i32,
    pub users_restored: i32,
    pub groups_created: i32,
    pub groups_updated: i32,
    pub groups_removed: i32,
}

/// The removal safety threshold (R15): hold a sync that would remove more than `percent` of
/// the integration's users and more than `min_users` of them.
#[derive(Debug, Clone, Copy)]
pub struct Threshold {
    pub percent: u32,
    pub min_users: u32,
}

impl Default for Threshold {
    fn default() -> Self {
        Self {
            percent: 20,
            min_users: 10,
        }
    }
}

/// How a reconciliation ended.
#[derive(Debug)]
pub enum Outcome {
    /// Everything applied.
    Applied(Counts),
    /// Creates and updates applied; removals held for confirmation (R15).
    Held {
        counts: Counts,
        would_remove: u64,
        of: u64,
    },
}

/// Why a reconciliation stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<sea_orm::DbErr> for ReconcileError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Domain(err.into())
    }
}

/// Called after each page with the counts so far, to report progress.
pub type Progress<'a> = &'a (dyn Fn(&Counts) + Send + Sync);

fn status_of(user: &ExternalUser) -> UserStatus {
    if user.suspended {
        UserStatus::Suspended
    } else {
        UserStatus::Active
    }
}

fn user_differs(row: &directory_user::Model, user: &ExternalUser, origin: &str) -> bool {
    row.user_name != user.user_name
        || row.email != user.email
        || row.display_name != user.display_name
        || row.given_name != user.given_name
        || row.family_name != user.family_name
        || row.job_title != user.job_title
        || row.department != user.department
        || row.employee_id != user.employee_id
        || row.status != status_of(user)
        || row.origin_name != origin
}

fn apply_user(active: &mut directory_user::ActiveModel, user: &ExternalUser) {
    active.user_name = Set(user.user_name.clone());
    active.user_name_key = Set(match_key(&user.user_name));
    active.email = Set(user.email.clone());
    active.email_key = Set(user.email.as_deref().map(match_key));
    active.display_name = Set(user.display_name.clone());
    active.given_name = Set(user.given_name.clone());
    active.family_name = Set(user.family_name.clone());
    active.job_title = Set(user.job_title.clone());
    active.department = Set(user.department.clone());
    active.employee_id = Set(user.employee_id.clone());
    active.status = Set(status_of(user));
    active.archived_at = Set(None);
    active.updated_at = Set(now());
}

/// Replaces a user's aliases when they differ.
async fn sync_aliases<C: ConnectionTrait>(
    db: &C,
    user_id: i64,
    aliases: &[String],
    existing: &[String],
) -> DomainResult<()> {
    let want: Vec<&String> = aliases.iter().collect();
    let have: Vec<&String> = existing.iter().collect();
    if want == have {
        return Ok(());
    }
    user_alias::Entity::delete_many()
        .filter(user_alias::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    let mut keys = HashSet::new();
    let rows: Vec<user_alias::ActiveModel> = aliases
        .iter()
        .filter(|a| keys.insert(match_key(a)))
        .map(|a| user_alias::ActiveModel {
            user_id: Set(user_id),
            alias: Set(a.clone()),
            alias_key: Set(match_key(a)),
            ..Default::default()
        })
        .collect();
    if !rows.is_empty() {
        user_alias::Entity::insert_many(rows).exec(db).await?;
    }
    Ok(())
}

/// Applies one page of users in one transaction; returns the ids of the users it created or
/// changed (for automatic device assignment).
async fn apply_users_page(
    db: &DatabaseConnection,
    integration: &integration::Model,
    users: Vec<ExternalUser>,
    counts: &mut Counts,
) -> DomainResult<Vec<i64>> {
    let txn = db.begin().await?;
    let external: Vec<String> = users.iter().map(|u| u.external_id.clone()).collect();
    let existing: HashMap<String, directory_user::Model> = directory_user::Entity::find()
        .filter(directory_user::Column::IntegrationId.eq(integration.id))
        .filter(directory_user::Column::ExternalId.is_in(external))
        .all(&txn)
        .await?
        .into_iter()
        .map(|u| (u.external_id.clone(), u))
        .collect();
    let ids: Vec<i64> = existing.values().map(|u| u.id).collect();
    let mut aliases: HashMap<i64, Vec<String>> = HashMap::new();
    if !ids.is_empty() {
        for alias in user_alias::Entity::find()
            .filter(user_alias::Column::UserId.is_in(ids))
            .all(&txn)
            .await?
        {
            aliases.entry(alias.user_id).or_default().push(alias.alias);
        }
    }
    let mut touched = Vec::new();
    for user in users {
        match existing.get(&user.external_id) {
            Some(row) => {
                let current_aliases = aliases.get(&row.id).cloned().unwrap_or_default();
                let changed = user_differs(row, &user, &integration.name);
                if changed {
                    if row.status == UserStatus::Archived {
                        counts.users_restored += 1;
                    } else if row.status != UserStatus::Suspended && user.suspended {
                        counts.users_suspended += 1;
                    } else {
                        counts.users_updated += 1;
                    }
                    let mut active = row.clone().into_active_model();
                    apply_user(&mut active, &user);
                    active.origin_name = Set(integration.name.clone());
                    active.update(&txn).await?;
                    touched.push(row.id);
                }
                if current_aliases != user.aliases {
                    sync_aliases(&txn, row.id, &user.aliases, &current_aliases).await?;
                    if !changed {
                        counts.users_updated += 1;
                        touched.push(row.id);
                    }
                }
            }
            None => {
                let at = now();
                let mut active = directory_user::ActiveModel {
                    integration_id: Set(Some(integration.id)),
                    origin_name: Set(integration.name.clone()),
                    external_id: Set(user.external_id.clone()),
                    created_at: Set(at),
                    ..Default::default()
                };
                apply_user(&mut active, &user);
                let row = active.insert(&txn).await?;
                sync_aliases(&txn, row.id, &user.aliases, &[]).await?;
                counts.users_created += 1;
                if user.suspended {
                    counts.users_suspended += 1;
                }
                touched.push(row.id);
            }
        }
    }
    txn.commit().await?;
    Ok(touched)
}

fn group_differs(row: &directory_group::Model, group: &ExternalGroup) -> bool {
    row.display_name != group.display_name
        || row.email != group.email
        || row.description != group.description
}

async fn apply_groups_page(
    db: &DatabaseConnection,
    integration: &integration::Model,
    groups: Vec<ExternalGroup>,
    counts: &mut Counts,
) -> DomainResult<()> {
    let txn = db.begin().await?;
    let external: Vec<String> = groups.iter().map(|g| g.external_id.clone()).collect();
    let existing: HashMap<String, directory_group::Model> = directory_group::Entity::find()
        .filter(directory_group::Column::IntegrationId.eq(integration.id))
        .filter(directory_group::Column::ExternalId.is_in(external))
        .all(&txn)
        .await?
        .into_iter()
        .map(|g| (g.external_id.clone(), g))
        .collect();
    for group in groups {
        match existing.get(&group.external_id) {
            Some(row) if group_differs(row, &group) => {
                let mut active = row.clone().into_active_model();
                active.display_name = Set(group.display_name);
                active.email = Set(group.email);
                active.description = Set(group.description);
                active.updated_at = Set(now());
                active.update(&txn).await?;
                counts.groups_updated += 1;
            }
            Some(_) => {}
            None => {
                let at = now();
                directory_group::ActiveModel {
                    integration_id: Set(integration.id),
                    external_id: Set(group.external_id),
                    display_name: Set(group.display_name),
                    email: Set(group.email),
                    description: Set(group.description),
                    created_at: Set(at),
                    updated_at: Set(at),
                    ..Default::default()
                }
                .insert(&txn)
                .await?;
                counts.groups_created += 1;
            }
        }
    }
    txn.commit().await?;
    Ok(())
}

/// The integration's rows as `external id → (id, status)`.
async fn user_index(
    db: &DatabaseConnection,
    integration_id: i64,
) -> DomainResult<HashMap<String, (i64, UserStatus)>> {
    let rows: Vec<(i64, String, UserStatus)> = directory_user::Entity::find()
        .select_only()
        .column(directory_user::Column::Id)
        .column(directory_user::Column::ExternalId)
        .column(directory_user::Column::Status)
        .filter(directory_user::Column::IntegrationId.eq(integration_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, ext, status)| (ext, (id, status)))
        .collect())
}

/// Groups whose memberships are applied together, in one transaction.
const MEMBERSHIP_BATCH: usize = 200;

/// Makes the memberships of a batch of groups those the directory lists. Reads what is there
/// in one statement, and writes only the difference, in one transaction (none when nothing
/// changed).
async fn apply_members(
    db: &DatabaseConnection,
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
    let txn = db.begin().await?;
    for (group, users) in gone {
        group_membership::Entity::delete_many()
            .filter(group_membership::Column::GroupId.eq(group))
            .filter(group_membership::Column::UserId.is_in(users))
            .exec(&txn)
            .await?;
    }
    for chunk in new.chunks(1000) {
        group_membership::Entity::insert_many(chunk.to_vec())
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Reads the whole directory through `provider` and applies it to `integration`. With
/// `confirmed`, removals beyond the threshold are applied instead of held. Returns the
/// outcome and the users created or changed (for automatic device assignment).
pub async fn full_sync<P: DirectoryProvider>(
    db: &DatabaseConnection,
    provider: &P,
    integration: &integration::Model,
    threshold: Threshold,
    confirmed: bool,
    progress: Progress<'_>,
) -> Result<(Outcome, Vec<i64>), ReconcileError> {
    let mut counts = Counts::default();
    let mut touched = Vec::new();

    // 1. Users, page by page.
    let mut seen_users: HashSet<String> = HashSet::new();
    // PostgreSQL plans the per-page lookups from its statistics; during a bulk import they
    // lag far behind (a plan for 50 rows scanning 100,000), so refresh them as the table
    // doubles.
    let mut analyze_at = 1_000;
    let mut cursor = None;
    loop {
        let page = provider.users_page(cursor).await?;
        counts.pages_read += 1;
        seen_users.extend(page.items.iter().map(|u| u.external_id.clone()));
        touched.extend(apply_users_page(db, integration, page.items, &mut counts).await?);
        if counts.users_created >= analyze_at {
            refresh_statistics(db, &["directory_users", "user_aliases"]).await?;
            analyze_at = analyze_at.saturating_mul(2);
        }
        progress(&counts);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    // 2. Groups, page by page.
    let mut seen_groups: Vec<String> = Vec::new();
    let mut cursor = None;
    loop {
        let page = provider.groups_page(cursor).await?;
        counts.pages_read += 1;
        seen_groups.extend(page.items.iter().map(|g| g.external_id.clone()));
        apply_groups_page(db, integration, page.items, &mut counts).await?;
        progress(&counts);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }

    // 3. Memberships, group by group.
    let users = user_index(db, integration.id).await?;
    let groups: HashMap<String, i64> = directory_group::Entity::find()
        .select_only()
        .column(directory_group::Column::ExternalId)
        .column(directory_group::Column::Id)
        .filter(directory_group::Column::IntegrationId.eq(integration.id))
        .into_tuple::<(String, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut batch = Vec::with_capacity(MEMBERSHIP_BATCH);
    for external in &seen_groups {
        let Some(&group_id) = groups.get(external) else {
            continue;
        };
        let mut members = HashSet::new();
        let mut cursor = None;
        loop {
            let page = provider.members_page(external, cursor).await?;
            counts.pages_read += 1;
            members.extend(
                page.items
                    .iter()
                    .filter_map(|ext| users.get(ext).map(|(id, _)| *id)),
            );
            match page.next {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        batch.push((group_id, members));
        if batch.len() == MEMBERSHIP_BATCH {
            apply_members(db, std::mem::take(&mut batch)).await?;
            progress(&counts);
        }
    }
    apply_members(db, batch).await?;
    progress(&counts);

    if counts.users_created + counts.groups_created > 1_000 {
        refresh_statistics(db, &["directory_groups", "group_memberships"]).await?;
    }

    // 4. Removals, now that the read is complete.
    let missing: Vec<i64> = users
        .iter()
        .filter(|(ext, (_, status))| *status != UserStatus::Archived && !seen_users.contains(*ext))
        .map(|(_, (id, _))| *id)
        .collect();
    let present = users
        .values()
        .filter(|(_, s)| *s != UserStatus::Archived)
        .count() as u64;
    let would_remove = missing.len() as u64;
    if !confirmed
        && would_remove > threshold.min_users as u64
        && would_remove * 100 > present * threshold.percent as u64
    {
        return Ok((
            Outcome::Held {
                counts,
                would_remove,
                of: present,
            },
            touched,
        ));
    }
    remove_users(db, &missing, &mut counts).await?;
    let seen: HashSet<&String> = seen_groups.iter().collect();
    let gone_groups: Vec<i64> = groups
        .iter()
        .filter(|(ext, _)| !seen.contains(ext))
        .map(|(_, id)| *id)
        .collect();
    for chunk in gone_groups.chunks(1000) {
        let removed = directory_group::Entity::delete_many()
            .filter(directory_group::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
        counts.groups_removed += removed.rows_affected as i32;
    }
    progress(&counts);
    Ok((Outcome::Applied(counts), touched))
}

/// `ANALYZE` on PostgreSQL (SQLite's planner does not need it for these lookups).
async fn refresh_statistics(db: &DatabaseConnection, tables: &[&str]) -> DomainResult<()> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        db.execute_unprepared(&format!("ANALYZE {}", tables.join(", ")))
            .await?;
    }
    Ok(())
}

/// Users gone from the directory: deleted without a device, archived with one (R14).
async fn remove_users(
    db: &DatabaseConnection,
    missing: &[i64],
    counts: &mut Counts,
) -> DomainResult<()> {
    for chunk in missing.chunks(1000) {
        let txn = db.begin().await?;
        let with_devices: HashSet<i64> = device::Entity::find()
            .select_only()
            .column(device::Column::UserId)
            .filter(device::Column::UserId.is_in(chunk.iter().copied()))
            .into_tuple::<Option<i64>>()
            .all(&txn)
            .await?
            .into_iter()
            .flatten()
            .collect();
        let (archive, delete): (Vec<i64>, Vec<i64>) =
            chunk.iter().partition(|id| with_devices.contains(id));
        if !archive.is_empty() {
            let at = now();
            directory_user::Entity::update_many()
                .col_expr(
                    directory_user::Column::Status,
                    sea_orm::sea_query::Expr::value(UserStatus::Archived),
                )
                .col_expr(
                    directory_user::Column::ArchivedAt,
                    sea_orm::sea_query::Expr::value(at),
                )
                .col_expr(
                    directory_user::Column::UpdatedAt,
                    sea_orm::sea_query::Expr::value(at),
                )
                .filter(directory_user::Column::Id.is_in(archive.iter().copied()))
                .exec(&txn)
                .await?;
            group_membership::Entity::delete_many()
                .filter(group_membership::Column::UserId.is_in(archive.iter().copied()))
                .exec(&txn)
                .await?;
            counts.users_archived += archive.len() as i32;
        }
        if !delete.is_empty() {
            directory_user::Entity::delete_many()
                .filter(directory_user::Column::Id.is_in(delete.iter().copied()))
                .exec(&txn)
                .await?;
            counts.users_removed += delete.len() as i32;
        }
        txn.commit().await?;
    }
    Ok(())
}
