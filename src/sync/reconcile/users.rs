//! The user store of the reconciler: what a full read knows of the stored users (their
//! fingerprints), a page of users applied in one transaction (multi-row upserts of only what
//! differs, and their aliases; `write.rs`: the write itself), and the lookups the delta phases
//! merge onto.

use super::{
    Counts,
    store::{in_statements, keys_per_lookup, rows_per_statement},
};
use crate::{
    directory::{
        match_key, now,
        users::{UserColumns, set_columns},
    },
    error::DomainResult,
    providers::{ExternalUser, clean::Warnings},
};
use entity::{directory_user, enums::UserStatus, integration, user_alias};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
};
use std::collections::{HashMap, HashSet};

mod write;

pub(super) use write::write_users;

pub(super) fn status_of(user: &ExternalUser) -> UserStatus {
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

/// The names (as the API spells them) of the fields a write of `user` changes in `row`.
fn changed_fields(
    row: &directory_user::Model,
    user: &ExternalUser,
    origin: &str,
) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let mut check = |differs: bool, name| {
        if differs {
            changed.push(name);
        }
    };
    check(row.user_name != user.user_name, "userName");
    check(row.email != user.email, "email");
    check(row.display_name != user.display_name, "displayName");
    check(row.given_name != user.given_name, "givenName");
    check(row.family_name != user.family_name, "familyName");
    check(row.job_title != user.job_title, "jobTitle");
    check(row.department != user.department, "department");
    check(row.employee_id != user.employee_id, "employeeId");
    check(row.status != status_of(user), "status");
    check(row.origin_name != origin, "origin");
    changed
}

/// The event of a write of `user` over `row`: a restore, a suspension, a reactivation, or an
/// update.
fn change_event(row: &directory_user::Model, user: &ExternalUser) -> &'static str {
    if row.status == UserStatus::Archived {
        "user.restored"
    } else if row.status != UserStatus::Suspended && user.suspended {
        "user.suspended"
    } else if row.status == UserStatus::Suspended && !user.suspended {
        "user.reactivated"
    } else {
        "user.updated"
    }
}

fn apply_user(active: &mut directory_user::ActiveModel, user: &ExternalUser) {
    let columns = UserColumns {
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
    set_columns(active, &columns, now());
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

/// Inserts new users and updates changed ones, keyed on `(integration_id, external_id)`;
/// returns the rows written. On PostgreSQL one statement whatever the number of users (each
/// column one array parameter, [`upsert_users_unnest`]); on SQLite multi-row upserts.
async fn upsert_users<C: ConnectionTrait>(
    db: &C,
    integration: &integration::Model,
    users: &[&ExternalUser],
) -> DomainResult<Vec<directory_user::Model>> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        return upsert_users_unnest(db, integration, users).await;
    }
    use directory_user::Column as C;
    let rows: Vec<directory_user::ActiveModel> =
        users.iter().map(|u| user_row(integration, u)).collect();
    let mut written = Vec::with_capacity(rows.len());
    for chunk in in_statements(db, USER_COLUMNS, rows) {
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

/// [`upsert_users`] on PostgreSQL: the users' columns as arrays, unnested into one upsert.
/// Its text never changes, so it is prepared once, and PostgreSQL binds 14 parameters instead
/// of 17 per user.
async fn upsert_users_unnest<C: ConnectionTrait>(
    db: &C,
    integration: &integration::Model,
    users: &[&ExternalUser],
) -> DomainResult<Vec<directory_user::Model>> {
    use crate::directory::page::text_array;
    const SQL: &str = "INSERT INTO directory_users (integration_id, origin_name, external_id, \
        user_name, user_name_key, email, email_key, display_name, given_name, family_name, \
        job_title, department, employee_id, status, archived_at, created_at, updated_at) \
        SELECT $1, $2, u.external_id, u.user_name, u.user_name_key, u.email, u.email_key, \
        u.display_name, u.given_name, u.family_name, u.job_title, u.department, \
        u.employee_id, u.status, NULL, $3, $3 \
        FROM UNNEST(CAST($4 AS text[]), CAST($5 AS text[]), CAST($6 AS text[]), \
        CAST($7 AS text[]), CAST($8 AS text[]), CAST($9 AS text[]), CAST($10 AS text[]), \
        CAST($11 AS text[]), CAST($12 AS text[]), CAST($13 AS text[]), CAST($14 AS text[]), \
        CAST($15 AS text[])) AS u(external_id, user_name, user_name_key, email, email_key, \
        display_name, given_name, family_name, job_title, department, employee_id, status) \
        ON CONFLICT (integration_id, external_id) DO UPDATE SET \
        origin_name = EXCLUDED.origin_name, user_name = EXCLUDED.user_name, \
        user_name_key = EXCLUDED.user_name_key, email = EXCLUDED.email, \
        email_key = EXCLUDED.email_key, display_name = EXCLUDED.display_name, \
        given_name = EXCLUDED.given_name, family_name = EXCLUDED.family_name, \
        job_title = EXCLUDED.job_title, department = EXCLUDED.department, \
        employee_id = EXCLUDED.employee_id, status = EXCLUDED.status, \
        archived_at = EXCLUDED.archived_at, updated_at = EXCLUDED.updated_at \
        RETURNING *";
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&ExternalUser) -> Option<String>| -> sea_orm::Value {
        text_array(users.iter().map(|u| f(u))).into()
    };
    let values: Vec<sea_orm::Value> = vec![
        integration.id.into(),
        integration.name.clone().into(),
        now().into(),
        column(|u| Some(u.external_id.clone())),
        column(|u| Some(u.user_name.clone())),
        column(|u| Some(match_key(&u.user_name))),
        column(|u| u.email.clone()),
        column(|u| u.email.as_deref().map(match_key)),
        column(|u| Some(u.display_name.clone())),
        column(|u| u.given_name.clone()),
        column(|u| u.family_name.clone()),
        column(|u| u.job_title.clone()),
        column(|u| u.department.clone()),
        column(|u| u.employee_id.clone()),
        column(|u| Some(status_of(u).to_value())),
    ];
    Ok(directory_user::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            SQL,
            values,
        ))
        .all(db)
        .await?)
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
    for chunk in in_statements(db, 3, rows) {
        user_alias::Entity::insert_many(chunk)
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// What a full read knows of a stored user without reading its row again.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stored {
    pub id: i64,
    pub status: UserStatus,
    pub fingerprint: u64,
}

/// The integration's users by external id: read in one pass when a full read starts, kept up
/// to date as pages are written, and used to skip unchanged users, resolve members and decide
/// removals.
pub(super) type Fingerprints = HashMap<String, Stored>;

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
pub(super) async fn fingerprints(
    db: &DatabaseConnection,
    integration_id: i64,
) -> DomainResult<Fingerprints> {
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

/// Applies one page of users in one transaction: one read of the page's rows and aliases,
/// then multi-row writes of only what differs (nothing when nothing changed). With `known`
/// (a full read's fingerprints) unchanged users are skipped without a read, and `known` is
/// kept up to date. Returns the ids of the users it created or changed (for automatic device
/// assignment).
pub(super) async fn apply_users_page(
    db: &DatabaseConnection,
    integration: &integration::Model,
    users: Vec<ExternalUser>,
    counts: &mut Counts,
    known: Option<&mut Fingerprints>,
    warnings: &Warnings,
) -> DomainResult<Vec<i64>> {
    let plan = plan_users(integration, users, known.as_deref());
    let written = write_users(db, integration, plan, counts, warnings).await?;
    if let Some(known) = known {
        known.extend(written.fingerprints);
    }
    Ok(written.ids)
}

/// The users of a page that need writing, as [`plan_users`] found them.
pub(super) struct UsersPlan {
    /// Last of each external id, without the unchanged ones when fingerprints were given.
    users: Vec<ExternalUser>,
    /// The external ids of those already stored (their rows are read before writing).
    stored: Vec<String>,
}

impl UsersPlan {
    /// The external ids this plan writes.
    pub fn external_ids(&self) -> impl Iterator<Item = &str> {
        self.users.iter().map(|u| u.external_id.as_str())
    }
}

/// What [`write_users`] wrote.
#[derive(Default)]
pub(super) struct UsersWritten {
    /// The ids of the users created or changed.
    pub ids: Vec<i64>,
    /// Their new fingerprints, for a full read's `known`.
    pub fingerprints: Vec<(String, Stored)>,
}

/// Of a page of users, those to write: the last of each external id (a directory may list a
/// user twice; Graph delta pages may repeat an object), and with `known` (a full read's
/// fingerprints) only those whose fingerprint differs. Reads nothing.
pub(super) fn plan_users(
    integration: &integration::Model,
    users: Vec<ExternalUser>,
    known: Option<&Fingerprints>,
) -> UsersPlan {
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
    let (users, stored): (Vec<ExternalUser>, Vec<String>) = match known {
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
    UsersPlan { users, stored }
}

/// The integration's rows for these users, and their aliases, in two statements.
pub(super) async fn load_users(
    db: &DatabaseConnection,
    integration_id: i64,
    external_ids: &[String],
) -> DomainResult<(
    HashMap<String, directory_user::Model>,
    HashMap<i64, Vec<String>>,
)> {
    let mut existing = HashMap::new();
    for chunk in external_ids.chunks(keys_per_lookup(db)) {
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

/// A stored user as the directory would describe it, to merge a partial change onto.
pub(super) fn external_of(
    row: &directory_user::Model,
    aliases: Option<&Vec<String>>,
) -> ExternalUser {
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

#[cfg(test)]
mod tests;
