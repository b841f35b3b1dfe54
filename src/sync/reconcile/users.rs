//! The user store of the reconciler: what a full read knows of the stored users (their
//! fingerprints), a page of users applied in one transaction (multi-row upserts of only what
//! differs, and their aliases; `write.rs`: the write itself), and the lookups the delta phases
//! merge onto. The columns it writes and compares come from `providers::fields`.

use super::Counts;
use crate::store::batch::{in_statements, keys_per_lookup, rows_per_statement};
use crate::{
    directory::{match_key, now},
    error::DomainResult,
    providers::{
        ExternalUser,
        clean::Warnings,
        fields::{USER_FIELDS, distinct_aliases, set_user},
    },
};
use entity::{directory_user, enums::UserStatus, integration, user_alias};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
};
use std::collections::{HashMap, HashSet};

mod write;

pub(super) use write::write_users;

/// The columns a user upsert writes: the synced fields, their match keys, and
/// `integration_id`, `origin_name`, `external_id`, `status`, `archived_at`, `created_at`,
/// `updated_at`.
fn user_columns() -> usize {
    USER_FIELDS.len() + USER_FIELDS.iter().filter(|f| f.key.is_some()).count() + 7
}

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
    set_user(&mut active, user, at);
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
    for chunk in in_statements(db, user_columns(), rows) {
        let on_conflict =
            sea_orm::sea_query::OnConflict::columns([C::IntegrationId, C::ExternalId])
                .update_columns(updated_columns())
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

/// The columns an upsert of a user that exists already changes.
fn updated_columns() -> Vec<directory_user::Column> {
    use directory_user::Column as C;
    let mut columns = vec![C::OriginName];
    for field in USER_FIELDS {
        columns.push(field.column);
        columns.extend(field.key);
    }
    columns.extend([C::Status, C::ArchivedAt, C::UpdatedAt]);
    columns
}

/// The text of [`upsert_users_unnest`]'s statement: `$1` the integration's id, `$2` its name,
/// `$3` the time, then one text array per column of [`unnested_columns`].
fn unnest_sql() -> &'static str {
    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use sea_orm::IdenStatic;
        let columns: Vec<&str> = unnested_columns().iter().map(|c| c.as_str()).collect();
        let arrays: Vec<String> = (0..columns.len())
            .map(|i| format!("CAST(${} AS text[])", i + 4))
            .collect();
        let updates: Vec<String> = updated_columns()
            .iter()
            .map(|c| format!("{0} = EXCLUDED.{0}", c.as_str()))
            .collect();
        format!(
            "INSERT INTO directory_users (integration_id, origin_name, created_at, updated_at, \
             archived_at, {columns}) \
             SELECT $1, $2, $3, $3, NULL, {unnested} FROM UNNEST({arrays}) AS u({columns}) \
             ON CONFLICT (integration_id, external_id) DO UPDATE SET {updates} RETURNING *",
            columns = columns.join(", "),
            unnested = columns
                .iter()
                .map(|c| format!("u.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            arrays = arrays.join(", "),
            updates = updates.join(", "),
        )
    });
    &SQL
}

/// The columns [`upsert_users_unnest`] binds as arrays: the external id, each synced field
/// and its match key, the status.
fn unnested_columns() -> Vec<directory_user::Column> {
    let mut columns = vec![directory_user::Column::ExternalId];
    for field in USER_FIELDS {
        columns.push(field.column);
        columns.extend(field.key);
    }
    columns.push(directory_user::Column::Status);
    columns
}

/// [`upsert_users`] on PostgreSQL: the users' columns as arrays, unnested into one upsert.
/// Its text never changes, so it is prepared once, and PostgreSQL binds one parameter per
/// column instead of one per column and user.
async fn upsert_users_unnest<C: ConnectionTrait>(
    db: &C,
    integration: &integration::Model,
    users: &[&ExternalUser],
) -> DomainResult<Vec<directory_user::Model>> {
    use crate::store::page::text_array;
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: &dyn Fn(&ExternalUser) -> Option<String>| -> sea_orm::Value {
        text_array(users.iter().map(|u| f(u))).into()
    };
    let mut values: Vec<sea_orm::Value> = vec![
        integration.id.into(),
        integration.name.clone().into(),
        now().into(),
        column(&|u| Some(u.external_id.clone())),
    ];
    for field in USER_FIELDS {
        values.push(column(&|u| (field.given)(u).map(str::to_owned)));
        if field.key.is_some() {
            values.push(column(&|u| (field.given)(u).map(match_key)));
        }
    }
    values.push(column(&|u| Some(u.status().to_value())));
    Ok(directory_user::Entity::find()
        .from_raw_sql(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            unnest_sql(),
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
        rows.extend(
            distinct_aliases(&aliases)
                .into_iter()
                .map(|a| user_alias::ActiveModel {
                    user_id: Set(user_id),
                    alias_key: Set(match_key(a)),
                    alias: Set(a.clone()),
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
    use directory_user::Column as C;
    let mut columns = vec![C::Id, C::ExternalId, C::Status, C::OriginName];
    columns.extend(USER_FIELDS.iter().map(|f| f.column));
    let mut out = HashMap::new();
    let mut rows = directory_user::Entity::find()
        .select_only()
        .columns(columns)
        .filter(C::IntegrationId.eq(integration_id))
        .into_model::<Fingerprinted>()
        .stream(db)
        .await?;
    while let Some(Fingerprinted {
        id,
        status,
        origin,
        mut user,
    }) = rows.try_next().await?
    {
        user.aliases = aliases.remove(&id).unwrap_or_default();
        let fingerprint = fingerprint(&user, status, &origin);
        out.insert(
            user.external_id,
            Stored {
                id,
                status,
                fingerprint,
            },
        );
    }
    Ok(out)
}

/// A stored user as a fingerprint needs it: the columns [`fingerprints`] selects, by
/// position (no timestamps to parse).
struct Fingerprinted {
    id: i64,
    status: UserStatus,
    origin: String,
    user: ExternalUser,
}

impl sea_orm::FromQueryResult for Fingerprinted {
    fn from_query_result(row: &sea_orm::QueryResult, _pre: &str) -> Result<Self, sea_orm::DbErr> {
        let status: UserStatus = row.try_get_by_index(2)?;
        let mut user = ExternalUser {
            external_id: row.try_get_by_index(1)?,
            suspended: status == UserStatus::Suspended,
            ..ExternalUser::default()
        };
        for (at, field) in USER_FIELDS.iter().enumerate() {
            let value: Option<String> = row.try_get_by_index(4 + at)?;
            (field.given_mut)(&mut user).set(value.as_deref());
        }
        Ok(Self {
            id: row.try_get_by_index(0)?,
            status,
            origin: row.try_get_by_index(3)?,
            user,
        })
    }
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
                        != Some(fingerprint(u, u.status(), &integration.name))
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

#[cfg(test)]
mod tests;
