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
    providers::{
        DirectoryProvider, ExternalGroup, ExternalUser, ProviderError,
        entra::{Entra, GroupDelta, UserDelta},
    },
};
use entity::{
    directory_group, directory_user, enums::UserStatus, group_membership, integration, user_alias,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set, TransactionTrait,
};
use std::collections::{HashMap, HashSet};
use tokio_util::sync::CancellationToken;

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
    /// Stopped at a batch boundary (shutdown): what was committed stays; nothing was removed.
    #[error("stopped at a batch boundary")]
    Stopped,
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
    let columns = crate::directory::users::UserColumns {
        user_name: &user.user_name,
        email: user.email.as_deref(),
        display_name: &user.display_name,
        given_name: user.given_name.as_deref(),
        family_name: user.family_name.as_deref(),
        job_title: user.job_title.as_deref(),
        department: user.department.as_deref(),
        employee_id: user.employee_id.as_deref(),
        status: status_of(user),
    };
    crate::directory::users::set_columns(active, &columns, now());
}

/// The most bind parameters one statement may carry: SQLite's limit is 32,766, PostgreSQL's
/// 65,535; a margin is kept.
fn max_params(db: &impl ConnectionTrait) -> usize {
    match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => 60_000,
        _ => 30_000,
    }
}

/// How many rows of `columns` columns one multi-row statement may insert.
fn rows_per_statement(db: &impl ConnectionTrait, columns: usize) -> usize {
    (max_params(db) / columns.max(1)).max(1)
}

/// The columns a user upsert writes (every one set by [`user_row`]).
const USER_COLUMNS: usize = 17;

/// A user row to insert or update, with every column the upsert writes set.
fn user_row(integration: &integration::Model, user: &ExternalUser) -> directory_user::ActiveModel {
    let at = now();
    let mut active = directory_user::ActiveModel {
        integration_id: Set(Some(integration.id)),
        origin_name: Set(integration.name.clone()),
        external_id: Set(user.external_id.clone()),
        created_at: Set(at),
        ..Default::default()
    };
    apply_user(&mut active, user);
    active
}

/// Inserts new users and updates changed ones in multi-row upserts keyed on
/// `(integration_id, external_id)`; returns the rows written.
async fn upsert_users<C: ConnectionTrait>(
    db: &C,
    rows: Vec<directory_user::ActiveModel>,
) -> DomainResult<Vec<directory_user::Model>> {
    use directory_user::Column as C;
    let mut written = Vec::with_capacity(rows.len());
    let per = rows_per_statement(db, USER_COLUMNS);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(per).collect();
        let on_conflict =
            sea_orm::sea_query::OnConflict::columns([C::IntegrationId, C::ExternalId])
                .update_columns([
                    C::OriginName,
                    C::UserName,
                    C::UserNameKey,
                    C::Email,
                    C::EmailKey,
                    C::DisplayName,
                    C::GivenName,
                    C::FamilyName,
                    C::JobTitle,
                    C::Department,
                    C::EmployeeId,
                    C::Status,
                    C::ArchivedAt,
                    C::UpdatedAt,
                ])
                .to_owned();
        written.extend(
            directory_user::Entity::insert_many(chunk)
                .on_conflict(on_conflict)
                .exec_with_returning(db)
                .await?,
        );
    }
    Ok(written)
}

/// Replaces the aliases of `users` (id → aliases) in two statements per chunk: one delete,
/// one multi-row insert.
async fn replace_aliases<C: ConnectionTrait>(
    db: &C,
    users: Vec<(i64, Vec<String>)>,
    had_aliases: &HashSet<i64>,
) -> DomainResult<()> {
    let stale: Vec<i64> = users
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| had_aliases.contains(id))
        .collect();
    for chunk in stale.chunks(rows_per_statement(db, 1)) {
        user_alias::Entity::delete_many()
            .filter(user_alias::Column::UserId.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
    }
    let mut rows = Vec::new();
    for (user_id, aliases) in users {
        let mut keys = HashSet::new();
        rows.extend(
            aliases
                .into_iter()
                .filter(|a| keys.insert(match_key(a)))
                .map(|a| user_alias::ActiveModel {
                    user_id: Set(user_id),
                    alias_key: Set(match_key(&a)),
                    alias: Set(a),
                    ..Default::default()
                }),
        );
    }
    let per = rows_per_statement(db, 3);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(per).collect();
        user_alias::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Applies one page of users in one transaction: one read of the page's rows and aliases,
/// then multi-row writes of only what differs (nothing when nothing changed). Returns the ids
/// of the users it created or changed (for automatic device assignment).
/// What a full read knows of a stored user without reading its row again.
#[derive(Debug, Clone, Copy)]
struct Stored {
    id: i64,
    status: UserStatus,
    fingerprint: u64,
}

/// The integration's users by external id: read in one pass when a full read starts, kept up
/// to date as pages are written, and used to skip unchanged users, resolve members and decide
/// removals.
type Fingerprints = HashMap<String, Stored>;

/// A user's fingerprint: its directory fields, aliases, status and origin name. Equal
/// fingerprints mean nothing to write.
fn fingerprint(user: &ExternalUser, status: UserStatus, origin: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    user.hash(&mut hasher);
    status.hash(&mut hasher);
    origin.hash(&mut hasher);
    hasher.finish()
}

/// Fingerprints every user of the integration: one query for the aliases, then the users as
/// a stream (a chunked read would sort the table once per chunk on SQLite).
async fn fingerprints(db: &DatabaseConnection, integration_id: i64) -> DomainResult<Fingerprints> {
    use futures_util::TryStreamExt;
    let of_integration = directory_user::Entity::find()
        .select_only()
        .column(directory_user::Column::Id)
        .filter(directory_user::Column::IntegrationId.eq(integration_id))
        .into_query();
    let mut aliases: HashMap<i64, Vec<String>> = HashMap::new();
    for (user, alias) in user_alias::Entity::find()
        .select_only()
        .column(user_alias::Column::UserId)
        .column(user_alias::Column::Alias)
        .filter(user_alias::Column::UserId.in_subquery(of_integration))
        .order_by_asc(user_alias::Column::Id)
        .into_tuple::<(i64, String)>()
        .all(db)
        .await?
    {
        aliases.entry(user).or_default().push(alias);
    }
    /// The columns a fingerprint needs (no timestamps to parse).
    #[derive(sea_orm::FromQueryResult)]
    struct Row {
        id: i64,
        external_id: String,
        user_name: String,
        email: Option<String>,
        display_name: String,
        given_name: Option<String>,
        family_name: Option<String>,
        job_title: Option<String>,
        department: Option<String>,
        employee_id: Option<String>,
        status: UserStatus,
        origin_name: String,
    }
    use directory_user::Column as C;
    let mut out = HashMap::new();
    let mut rows = directory_user::Entity::find()
        .select_only()
        .columns([
            C::Id,
            C::ExternalId,
            C::UserName,
            C::Email,
            C::DisplayName,
            C::GivenName,
            C::FamilyName,
            C::JobTitle,
            C::Department,
            C::EmployeeId,
            C::Status,
            C::OriginName,
        ])
        .filter(C::IntegrationId.eq(integration_id))
        .into_model::<Row>()
        .stream(db)
        .await?;
    while let Some(row) = rows.try_next().await? {
        let user = ExternalUser {
            aliases: aliases.remove(&row.id).unwrap_or_default(),
            suspended: row.status == UserStatus::Suspended,
            user_name: row.user_name,
            email: row.email,
            display_name: row.display_name,
            given_name: row.given_name,
            family_name: row.family_name,
            job_title: row.job_title,
            department: row.department,
            employee_id: row.employee_id,
            external_id: row.external_id,
        };
        let fingerprint = fingerprint(&user, row.status, &row.origin_name);
        out.insert(
            user.external_id,
            Stored {
                id: row.id,
                status: row.status,
                fingerprint,
            },
        );
    }
    Ok(out)
}

async fn apply_users_page(
    db: &DatabaseConnection,
    integration: &integration::Model,
    users: Vec<ExternalUser>,
    counts: &mut Counts,
    known: Option<&mut Fingerprints>,
) -> DomainResult<Vec<i64>> {
    // A directory may list a user twice (Graph delta pages may repeat an object): last wins.
    let mut latest: HashMap<String, usize> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        latest.insert(user.external_id.clone(), i);
    }
    let users: Vec<ExternalUser> = users
        .into_iter()
        .enumerate()
        .filter(|(i, u)| latest.get(&u.external_id) == Some(i))
        .map(|(_, u)| u)
        .collect();
    // With fingerprints (a full read): unchanged users need nothing, and only users already
    // stored need their rows read.
    let (users, external_ids): (Vec<ExternalUser>, Vec<String>) = match known.as_deref() {
        Some(known) => {
            let users: Vec<ExternalUser> = users
                .into_iter()
                .filter(|u| {
                    known.get(&u.external_id).map(|s| s.fingerprint)
                        != Some(fingerprint(u, status_of(u), &integration.name))
                })
                .collect();
            let stored = users
                .iter()
                .filter(|u| known.contains_key(&u.external_id))
                .map(|u| u.external_id.clone())
                .collect();
            (users, stored)
        }
        None => {
            let ids = users.iter().map(|u| u.external_id.clone()).collect();
            (users, ids)
        }
    };
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let (existing, aliases) = load_users(db, integration.id, &external_ids).await?;

    let mut rows = Vec::new();
    let mut alias_writes: Vec<(String, Vec<String>)> = Vec::new();
    for user in &users {
        match existing.get(&user.external_id) {
            Some(row) => {
                let current = aliases.get(&row.id).map(Vec::as_slice).unwrap_or_default();
                let changed = user_differs(row, user, &integration.name);
                let aliases_changed = current != user.aliases.as_slice();
                if !changed && !aliases_changed {
                    continue;
                }
                if row.status == UserStatus::Archived {
                    counts.users_restored += 1;
                } else if row.status != UserStatus::Suspended && user.suspended {
                    counts.users_suspended += 1;
                } else {
                    counts.users_updated += 1;
                }
                rows.push(user_row(integration, user));
                if aliases_changed {
                    alias_writes.push((user.external_id.clone(), user.aliases.clone()));
                }
            }
            None => {
                counts.users_created += 1;
                if user.suspended {
                    counts.users_suspended += 1;
                }
                rows.push(user_row(integration, user));
                if !user.aliases.is_empty() {
                    alias_writes.push((user.external_id.clone(), user.aliases.clone()));
                }
            }
        }
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let txn = db.begin().await?;
    let written = upsert_users(&txn, rows).await?;
    let ids: HashMap<&str, i64> = written
        .iter()
        .map(|u| (u.external_id.as_str(), u.id))
        .collect();
    let alias_writes: Vec<(i64, Vec<String>)> = alias_writes
        .into_iter()
        .filter_map(|(ext, a)| ids.get(ext.as_str()).map(|id| (*id, a)))
        .collect();
    let had: HashSet<i64> = aliases.keys().copied().collect();
    replace_aliases(&txn, alias_writes, &had).await?;
    txn.commit().await?;
    if let Some(known) = known {
        for user in &users {
            if let Some(&id) = ids.get(user.external_id.as_str()) {
                known.insert(
                    user.external_id.clone(),
                    Stored {
                        id,
                        status: status_of(user),
                        fingerprint: fingerprint(user, status_of(user), &integration.name),
                    },
                );
            }
        }
    }
    Ok(written.iter().map(|u| u.id).collect())
}

/// The integration's rows for these users, and their aliases, in two statements.
async fn load_users(
    db: &DatabaseConnection,
    integration_id: i64,
    external_ids: &[String],
) -> DomainResult<(
    HashMap<String, directory_user::Model>,
    HashMap<i64, Vec<String>>,
)> {
    let mut existing = HashMap::new();
    for chunk in external_ids.chunks(rows_per_statement(db, 1) - 1) {
        existing.extend(
            directory_user::Entity::find()
                .filter(directory_user::Column::IntegrationId.eq(integration_id))
                .filter(directory_user::Column::ExternalId.is_in(chunk.iter().cloned()))
                .all(db)
                .await?
                .into_iter()
                .map(|u| (u.external_id.clone(), u)),
        );
    }
    let ids: Vec<i64> = existing
        .values()
        .map(|u: &directory_user::Model| u.id)
        .collect();
    let mut aliases: HashMap<i64, Vec<String>> = HashMap::new();
    for chunk in ids.chunks(rows_per_statement(db, 1)) {
        for alias in user_alias::Entity::find()
            .filter(user_alias::Column::UserId.is_in(chunk.iter().copied()))
            .order_by_asc(user_alias::Column::Id)
            .all(db)
            .await?
        {
            aliases.entry(alias.user_id).or_default().push(alias.alias);
        }
    }
    Ok((existing, aliases))
}

fn group_differs(row: &directory_group::Model, group: &ExternalGroup) -> bool {
    row.display_name != group.display_name
        || row.email != group.email
        || row.description != group.description
}

/// The integration's groups with these external ids.
async fn load_groups(
    db: &DatabaseConnection,
    integration_id: i64,
    external_ids: &[String],
) -> DomainResult<HashMap<String, directory_group::Model>> {
    let mut found = HashMap::new();
    for chunk in external_ids.chunks(rows_per_statement(db, 1) - 1) {
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

async fn apply_groups_page(
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
    for group in unique.into_values() {
        match existing.get(&group.external_id) {
            Some(row) if !group_differs(row, &group) => continue,
            Some(_) => counts.groups_updated += 1,
            None => counts.groups_created += 1,
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
    let txn = db.begin().await?;
    let per = rows_per_statement(&txn, 7);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<_> = rows.by_ref().take(per).collect();
        directory_group::Entity::insert_many(chunk)
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([C::IntegrationId, C::ExternalId])
                    .update_columns([C::DisplayName, C::Email, C::Description, C::UpdatedAt])
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
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

/// What one reconciliation needs.
pub struct Job<'a> {
    pub db: &'a DatabaseConnection,
    pub integration: &'a integration::Model,
    pub threshold: Threshold,
    /// Removals beyond the threshold were confirmed (R15).
    pub confirmed: bool,
    pub progress: Progress<'a>,
    /// Cancelled to stop at the next batch boundary (shutdown): what was committed stays,
    /// nothing is removed.
    pub stop: &'a CancellationToken,
}

impl Job<'_> {
    fn check_stop(&self) -> Result<(), ReconcileError> {
        if self.stop.is_cancelled() {
            Err(ReconcileError::Stopped)
        } else {
            Ok(())
        }
    }
}

/// Where the next incremental read of an Entra directory starts (Graph delta links).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeltaLinks {
    pub users: String,
    pub groups: String,
}

/// What a reconciliation did.
#[derive(Debug)]
pub struct Report {
    pub outcome: Outcome,
    /// Users created or changed (for automatic device assignment).
    pub touched: Vec<i64>,
    /// The delta links to store, when the read gave them and everything was applied.
    pub delta: Option<DeltaLinks>,
}

/// Whether removing `would_remove` of `present` users needs a confirmation (R15).
fn must_hold(job: &Job<'_>, would_remove: u64, present: u64) -> bool {
    !job.confirmed
        && would_remove > job.threshold.min_users as u64
        && would_remove * 100 > present * job.threshold.percent as u64
}

/// Reads the whole directory through `provider` and applies it to the job's integration.
/// Memberships come inline with the groups when the provider gives them (Graph delta), else
/// from `members_page`. Removals are decided after the read is complete.
pub async fn full_sync<P: DirectoryProvider>(
    job: &Job<'_>,
    provider: &P,
) -> Result<Report, ReconcileError> {
    let (db, integration) = (job.db, job.integration);
    let mut counts = Counts::default();
    let mut touched = Vec::new();

    // 1. Users, page by page.
    let mut seen_users: HashSet<i64> = HashSet::new();
    // PostgreSQL plans the per-page lookups from its statistics; during a bulk import they
    // lag far behind (a plan for 50 rows scanning 100,000), so refresh them as the table
    // doubles.
    let mut analyze_at = 1_000;
    let mut known = fingerprints(db, integration.id).await?;
    let mut cursor = None;
    let users_link = loop {
        job.check_stop()?;
        let page = provider.users_page(cursor).await?;
        counts.pages_read += 1;
        let listed: Vec<String> = page.items.iter().map(|u| u.external_id.clone()).collect();
        touched.extend(
            apply_users_page(db, integration, page.items, &mut counts, Some(&mut known)).await?,
        );
        seen_users.extend(listed.iter().filter_map(|ext| known.get(ext).map(|s| s.id)));
        if counts.users_created >= analyze_at {
            refresh_statistics(db, &["directory_users", "user_aliases"]).await?;
            analyze_at = analyze_at.saturating_mul(2);
        }
        (job.progress)(&counts);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break page.delta_link,
        }
    };

    // 2. Groups, page by page; a group may come more than once with parts of its members.
    let mut seen_groups: Vec<String> = Vec::new();
    let mut seen_group_set: HashSet<String> = HashSet::new();
    let mut inline: HashMap<String, HashSet<i64>> = HashMap::new();
    let resolve = |ext: &String| known.get(ext).map(|s| s.id);
    let mut cursor = None;
    let groups_link = loop {
        job.check_stop()?;
        let page = provider.groups_page(cursor).await?;
        counts.pages_read += 1;
        for group in &page.items {
            if seen_group_set.insert(group.external_id.clone()) {
                seen_groups.push(group.external_id.clone());
            }
            if let Some(members) = &group.members {
                inline
                    .entry(group.external_id.clone())
                    .or_default()
                    .extend(members.iter().filter_map(resolve));
            }
        }
        apply_groups_page(db, integration, page.items, &mut counts).await?;
        (job.progress)(&counts);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break page.delta_link,
        }
    };

    // 3. Memberships, a batch of groups at a time.
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
        let members: HashSet<i64> = match inline.remove(external) {
            Some(listed) => listed,
            None => {
                let mut members = HashSet::new();
                let mut cursor = None;
                loop {
                    let page = provider.members_page(external, cursor).await?;
                    counts.pages_read += 1;
                    members.extend(page.items.iter().filter_map(resolve));
                    match page.next {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                members
            }
        };
        batch.push((group_id, members));
        if batch.len() == MEMBERSHIP_BATCH {
            job.check_stop()?;
            apply_members(db, std::mem::take(&mut batch)).await?;
            (job.progress)(&counts);
        }
    }
    job.check_stop()?;
    apply_members(db, batch).await?;
    (job.progress)(&counts);

    if counts.users_created + counts.groups_created > 1_000 {
        refresh_statistics(db, &["directory_groups", "group_memberships"]).await?;
    }

    // 4. Removals, now that the read is complete.
    let missing: Vec<i64> = known
        .values()
        .filter(|s| s.status != UserStatus::Archived && !seen_users.contains(&s.id))
        .map(|s| s.id)
        .collect();
    let present = known
        .values()
        .filter(|s| s.status != UserStatus::Archived)
        .count() as u64;
    let would_remove = missing.len() as u64;
    if must_hold(job, would_remove, present) {
        return Ok(Report {
            outcome: Outcome::Held {
                counts,
                would_remove,
                of: present,
            },
            touched,
            delta: None,
        });
    }
    job.check_stop()?;
    remove_users(db, &missing, &mut counts).await?;
    let gone_groups: Vec<i64> = groups
        .iter()
        .filter(|(ext, _)| !seen_group_set.contains(*ext))
        .map(|(_, id)| *id)
        .collect();
    remove_groups(db, &gone_groups, &mut counts).await?;
    (job.progress)(&counts);
    let delta = users_link
        .zip(groups_link)
        .map(|(users, groups)| DeltaLinks { users, groups });
    Ok(Report {
        outcome: Outcome::Applied(counts),
        touched,
        delta,
    })
}

async fn remove_groups(
    db: &DatabaseConnection,
    ids: &[i64],
    counts: &mut Counts,
) -> DomainResult<()> {
    for chunk in ids.chunks(rows_per_statement(db, 1)) {
        let removed = directory_group::Entity::delete_many()
            .filter(directory_group::Column::Id.is_in(chunk.iter().copied()))
            .exec(db)
            .await?;
        counts.groups_removed += removed.rows_affected as i32;
    }
    Ok(())
}

/// A stored user as the directory would describe it, to merge a partial change onto.
fn external_of(row: &directory_user::Model, aliases: Option<&Vec<String>>) -> ExternalUser {
    ExternalUser {
        external_id: row.external_id.clone(),
        user_name: row.user_name.clone(),
        email: row.email.clone(),
        display_name: row.display_name.clone(),
        given_name: row.given_name.clone(),
        family_name: row.family_name.clone(),
        job_title: row.job_title.clone(),
        department: row.department.clone(),
        employee_id: row.employee_id.clone(),
        suspended: row.status == UserStatus::Suspended,
        aliases: aliases.cloned().unwrap_or_default(),
    }
}

/// Reads an Entra directory's changes since `links` (Graph delta queries) and applies them:
/// changed users and groups are merged onto what is stored (a delta may carry only the
/// changed properties), membership changes applied, and removals — decided once both reads
/// are complete — go through the same rules as a full sync (R14, R15). A `410` ends it with
/// [`ProviderError::DeltaExpired`], before anything is removed.
pub async fn delta_sync(
    job: &Job<'_>,
    graph: &Entra,
    links: &DeltaLinks,
) -> Result<Report, ReconcileError> {
    let (db, integration) = (job.db, job.integration);
    let mut counts = Counts::default();
    let mut touched = Vec::new();

    // 1. Users.
    let mut removed_users: HashSet<String> = HashSet::new();
    let mut url = links.users.clone();
    let users_link = loop {
        job.check_stop()?;
        let page = graph.user_changes(&url).await?;
        counts.pages_read += 1;
        let (gone, changed): (Vec<UserDelta>, Vec<UserDelta>) =
            page.items.into_iter().partition(|u| u.removed.is_some());
        removed_users.extend(gone.into_iter().map(|u| u.id));
        if !changed.is_empty() {
            let ids: Vec<String> = changed.iter().map(|u| u.id.clone()).collect();
            for id in &ids {
                removed_users.remove(id);
            }
            let (rows, aliases) = load_users(db, integration.id, &ids).await?;
            let merged: Vec<ExternalUser> = changed
                .into_iter()
                .map(|u| {
                    let base = rows
                        .get(&u.id)
                        .map(|row| external_of(row, aliases.get(&row.id)));
                    u.merge(base.as_ref())
                })
                .collect();
            touched.extend(apply_users_page(db, integration, merged, &mut counts, None).await?);
        }
        (job.progress)(&counts);
        match page.next {
            Some(next) => url = next,
            None => break page.delta_link.unwrap_or(url),
        }
    };

    // 2. Groups and their membership changes.
    let mut removed_groups: HashSet<String> = HashSet::new();
    let mut url = links.groups.clone();
    let groups_link = loop {
        job.check_stop()?;
        let page = graph.group_changes(&url).await?;
        counts.pages_read += 1;
        let (gone, changed): (Vec<GroupDelta>, Vec<GroupDelta>) =
            page.items.into_iter().partition(|g| g.removed.is_some());
        removed_groups.extend(gone.into_iter().map(|g| g.id));
        if !changed.is_empty() {
            let ids: Vec<String> = changed.iter().map(|g| g.id.clone()).collect();
            for id in &ids {
                removed_groups.remove(id);
            }
            let stored = load_groups(db, integration.id, &ids).await?;
            let merged: Vec<ExternalGroup> = changed
                .iter()
                .map(|g| {
                    let base = stored.get(&g.id).map(|row| ExternalGroup {
                        external_id: row.external_id.clone(),
                        display_name: row.display_name.clone(),
                        email: row.email.clone(),
                        description: row.description.clone(),
                        members: None,
                    });
                    g.merge(base.as_ref())
                })
                .collect();
            apply_groups_page(db, integration, merged, &mut counts).await?;
            apply_member_changes(db, integration.id, &changed).await?;
        }
        (job.progress)(&counts);
        match page.next {
            Some(next) => url = next,
            None => break page.delta_link.unwrap_or(url),
        }
    };

    // 3. Removals, now that both reads are complete.
    job.check_stop()?;
    let gone: Vec<String> = removed_users.into_iter().collect();
    let (rows, _) = load_users(db, integration.id, &gone).await?;
    let missing: Vec<i64> = rows
        .values()
        .filter(|u| u.status != UserStatus::Archived)
        .map(|u| u.id)
        .collect();
    let present = directory_user::Entity::find()
        .filter(directory_user::Column::IntegrationId.eq(integration.id))
        .filter(directory_user::Column::Status.ne(UserStatus::Archived))
        .count(db)
        .await?;
    let would_remove = missing.len() as u64;
    if must_hold(job, would_remove, present) {
        return Ok(Report {
            outcome: Outcome::Held {
                counts,
                would_remove,
                of: present,
            },
            touched,
            delta: None,
        });
    }
    remove_users(db, &missing, &mut counts).await?;
    let gone: Vec<String> = removed_groups.into_iter().collect();
    let gone_ids: Vec<i64> = load_groups(db, integration.id, &gone)
        .await?
        .values()
        .map(|g| g.id)
        .collect();
    remove_groups(db, &gone_ids, &mut counts).await?;
    (job.progress)(&counts);
    Ok(Report {
        outcome: Outcome::Applied(counts),
        touched,
        delta: Some(DeltaLinks {
            users: users_link,
            groups: groups_link,
        }),
    })
}

/// Applies `members@delta`: added users join, removed ones leave; members that are not users,
/// or users dirgate does not hold, are left out.
async fn apply_member_changes(
    db: &DatabaseConnection,
    integration_id: i64,
    groups: &[GroupDelta],
) -> DomainResult<()> {
    let changed: Vec<&GroupDelta> = groups.iter().filter(|g| !g.members.is_empty()).collect();
    if changed.is_empty() {
        return Ok(());
    }
    let group_ids: Vec<String> = changed.iter().map(|g| g.id.clone()).collect();
    let group_rows = load_groups(db, integration_id, &group_ids).await?;
    let user_ids: Vec<String> = changed
        .iter()
        .flat_map(|g| {
            g.members
                .iter()
                .filter(|m| m.is_user())
                .map(|m| m.id.clone())
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let (user_rows, _) = load_users(db, integration_id, &user_ids).await?;
    let at = now();
    let mut joins = Vec::new();
    let mut leaves: Vec<(i64, Vec<i64>)> = Vec::new();
    for group in changed {
        let Some(group_row) = group_rows.get(&group.id) else {
            continue;
        };
        let mut left = Vec::new();
        for member in group.members.iter().filter(|m| m.is_user()) {
            let Some(user) = user_rows.get(&member.id) else {
                continue;
            };
            if member.removed.is_some() {
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
    let txn = db.begin().await?;
    for (group, users) in leaves {
        group_membership::Entity::delete_many()
            .filter(group_membership::Column::GroupId.eq(group))
            .filter(group_membership::Column::UserId.is_in(users))
            .exec(&txn)
            .await?;
    }
    let per = rows_per_statement(&txn, 3);
    let mut joins = joins.into_iter().peekable();
    while joins.peek().is_some() {
        let chunk: Vec<_> = joins.by_ref().take(per).collect();
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
    txn.commit().await?;
    Ok(())
}

/// `ANALYZE` on PostgreSQL (SQLite's planner does not need it for these lookups).
async fn refresh_statistics(db: &DatabaseConnection, tables: &[&str]) -> DomainResult<()> {
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        db.execute_unprepared(&format!("ANALYZE {}", tables.join(", ")))
            .await?;
    }
    Ok(())
}

/// Users gone from the directory (R14): `directory::users::remove_or_archive`, a transaction
/// per 1,000.
async fn remove_users(
    db: &DatabaseConnection,
    missing: &[i64],
    counts: &mut Counts,
) -> DomainResult<()> {
    for chunk in missing.chunks(1000) {
        let txn = db.begin().await?;
        let departed = crate::directory::users::remove_or_archive(&txn, chunk).await?;
        txn.commit().await?;
        counts.users_archived += departed.archived as i32;
        counts.users_removed += departed.removed as i32;
    }
    Ok(())
}
