//! `directory_users` and `user_aliases`: a page of users upserted (one statement on
//! PostgreSQL), their aliases replaced, an integration's users described for a full read's
//! fingerprints, and the rows of a page's users. The columns come from
//! `providers::fields::USER_FIELDS`.

pub mod list;

pub use list::{UserFilter, search_condition};

use super::batch::{in_statements, keys_per_lookup, rows_per_statement};
use crate::{
    error::DomainResult,
    providers::{
        ExternalUser,
        fields::{USER_FIELDS, distinct_aliases, set_user},
    },
    text::match_key,
};
use chrono::{DateTime, Utc};
use entity::{directory_user, enums::UserStatus, integration, user_alias};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set, Statement,
};
use std::collections::{HashMap, HashSet};

/// The columns a user upsert writes: the synced fields, their match keys, and
/// `integration_id`, `origin_name`, `external_id`, `status`, `archived_at`, `created_at`,
/// `updated_at`.
fn user_columns() -> usize {
    USER_FIELDS.len() + USER_FIELDS.iter().filter(|f| f.key.is_some()).count() + 7
}

/// A user row to insert or update, with every column the upsert writes set.
fn user_row(
    integration: &integration::Model,
    user: &ExternalUser,
    at: DateTime<Utc>,
) -> directory_user::ActiveModel {
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
/// column one array parameter, [`upsert_unnest`]); on SQLite multi-row upserts.
pub async fn upsert<C: ConnectionTrait>(
    db: &C,
    integration: &integration::Model,
    users: &[&ExternalUser],
    at: DateTime<Utc>,
) -> DomainResult<Vec<directory_user::Model>> {
    if db.get_database_backend() == DatabaseBackend::Postgres {
        return upsert_unnest(db, integration, users, at).await;
    }
    use directory_user::Column as C;
    let rows: Vec<directory_user::ActiveModel> =
        users.iter().map(|u| user_row(integration, u, at)).collect();
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

/// The text of [`upsert_unnest`]'s statement: `$1` the integration's id, `$2` its name,
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

/// The columns [`upsert_unnest`] binds as arrays: the external id, each synced field
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

/// [`upsert`] on PostgreSQL: the users' columns as arrays, unnested into one upsert.
/// Its text never changes, so it is prepared once, and PostgreSQL binds one parameter per
/// column instead of one per column and user.
async fn upsert_unnest<C: ConnectionTrait>(
    db: &C,
    integration: &integration::Model,
    users: &[&ExternalUser],
    at: DateTime<Utc>,
) -> DomainResult<Vec<directory_user::Model>> {
    use super::page::text_array;
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: &dyn Fn(&ExternalUser) -> Option<String>| -> sea_orm::Value {
        text_array(users.iter().map(|u| f(u))).into()
    };
    let mut values: Vec<sea_orm::Value> = vec![
        integration.id.into(),
        integration.name.clone().into(),
        at.into(),
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
pub async fn replace_aliases<C: ConnectionTrait>(
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

/// A stored user as its directory would describe it, with its row's id, status and origin.
pub struct Described {
    pub id: i64,
    pub status: UserStatus,
    pub origin: String,
    pub user: ExternalUser,
}

/// Every user of the integration, described, to `each`: one query for the aliases, then the
/// users as a stream of only the columns a description needs (a chunked read would sort the
/// table once per chunk on SQLite).
pub async fn described(
    db: &DatabaseConnection,
    integration_id: i64,
    mut each: impl FnMut(Described),
) -> DomainResult<()> {
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
    let mut rows = directory_user::Entity::find()
        .select_only()
        .columns(columns)
        .filter(C::IntegrationId.eq(integration_id))
        .into_model::<Described>()
        .stream(db)
        .await?;
    while let Some(mut stored) = rows.try_next().await? {
        stored.user.aliases = aliases.remove(&stored.id).unwrap_or_default();
        each(stored);
    }
    Ok(())
}

/// The columns [`described`] selects, by position (no timestamps to parse).
impl sea_orm::FromQueryResult for Described {
    fn from_query_result(row: &sea_orm::QueryResult, _pre: &str) -> Result<Self, sea_orm::DbErr> {
        let status: UserStatus = row.try_get_by_index(2)?;
        let mut user = ExternalUser {
            external_id: row.try_get_by_index(1)?,
            suspended: status == UserStatus::Suspended,
            ..ExternalUser::default()
        };
        for (at, field) in USER_FIELDS.iter().enumerate() {
            (field.given_mut)(&mut user).put(row.try_get_by_index(4 + at)?);
        }
        Ok(Self {
            id: row.try_get_by_index(0)?,
            status,
            origin: row.try_get_by_index(3)?,
            user,
        })
    }
}

/// The integration's rows for these users, and their aliases, in two statements.
pub async fn rows_of(
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

/// How many of the integration's users are not archived.
pub async fn present_count(db: &DatabaseConnection, integration_id: i64) -> DomainResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(directory_user::Entity::find()
        .filter(directory_user::Column::IntegrationId.eq(integration_id))
        .filter(directory_user::Column::Status.ne(UserStatus::Archived))
        .count(db)
        .await?)
}

/// Of these external ids, those of the integration's users that are not archived: external
/// id → id.
pub async fn present_ids_of<C: ConnectionTrait>(
    db: &C,
    integration_id: i64,
    external_ids: &[String],
) -> DomainResult<HashMap<String, i64>> {
    let mut found = HashMap::new();
    for chunk in external_ids.chunks(keys_per_lookup(db)) {
        found.extend(
            directory_user::Entity::find()
                .select_only()
                .column(directory_user::Column::ExternalId)
                .column(directory_user::Column::Id)
                .filter(directory_user::Column::IntegrationId.eq(integration_id))
                .filter(directory_user::Column::Status.ne(UserStatus::Archived))
                .filter(directory_user::Column::ExternalId.is_in(chunk.iter().cloned()))
                .into_tuple::<(String, i64)>()
                .all(db)
                .await?,
        );
    }
    Ok(found)
}

/// The first key of the PostgreSQL advisory lock that serialises SCIM user writes of one
/// integration (the second is the integration's id).
const SCIM_USER_LOCK: i32 = 0x5c1d;

/// Takes, on PostgreSQL, the transaction-long lock that serialises SCIM user writes of one
/// integration across processes (within a process a mutex does; SQLite has one writer).
pub async fn lock_scim_writes<C: ConnectionTrait>(
    txn: &C,
    integration_id: i64,
) -> DomainResult<()> {
    if txn.get_database_backend() == DatabaseBackend::Postgres {
        txn.execute_raw(Statement::from_sql_and_values(
            DatabaseBackend::Postgres,
            "SELECT pg_advisory_xact_lock($1, $2)",
            [SCIM_USER_LOCK.into(), (integration_id as i32).into()],
        ))
        .await?;
    }
    Ok(())
}

/// The integration's users whose user name has this match key.
pub async fn named<C: ConnectionTrait>(
    db: &C,
    integration_id: i64,
    key: &str,
) -> DomainResult<Vec<directory_user::Model>> {
    Ok(directory_user::Entity::find()
        .filter(directory_user::Column::IntegrationId.eq(integration_id))
        .filter(directory_user::Column::UserNameKey.eq(key))
        .all(db)
        .await?)
}

/// Every user of the integration shows `name` as its origin (the integration was renamed).
pub async fn set_origin_name(
    db: &impl super::Db,
    integration_id: i64,
    name: &str,
) -> Result<(), sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
    directory_user::Entity::update_many()
        .col_expr(
            directory_user::Column::OriginName,
            Expr::value(name.to_owned()),
        )
        .filter(directory_user::Column::IntegrationId.eq(integration_id))
        .exec(db)
        .await
        .map(drop)
}

/// The users with these ids (at most one statement's worth).
pub async fn by_ids(
    db: &impl super::Db,
    ids: &[i64],
) -> Result<Vec<directory_user::Model>, sea_orm::DbErr> {
    directory_user::Entity::find()
        .filter(directory_user::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// Of `users` (at most one statement's worth), those assigned to at least one device.
pub async fn with_devices(
    db: &impl super::Db,
    users: &[i64],
) -> Result<HashSet<i64>, sea_orm::DbErr> {
    use entity::device;
    Ok(device::Entity::find()
        .select_only()
        .column(device::Column::UserId)
        .filter(device::Column::UserId.is_in(users.iter().copied()))
        .into_tuple::<Option<i64>>()
        .all(db)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// Archives `users` at `at` and takes them out of their groups; with `detach_from` they also
/// leave their integration, showing that name as their origin.
pub async fn archive(
    txn: &impl super::Db,
    users: &[i64],
    at: DateTime<Utc>,
    detach_from: Option<&str>,
) -> Result<(), sea_orm::DbErr> {
    use entity::group_membership;
    use sea_orm::sea_query::Expr;
    let mut update = directory_user::Entity::update_many()
        .col_expr(
            directory_user::Column::Status,
            Expr::value(UserStatus::Archived),
        )
        .col_expr(directory_user::Column::ArchivedAt, Expr::value(at))
        .col_expr(directory_user::Column::UpdatedAt, Expr::value(at));
    if let Some(origin) = detach_from {
        update = update
            .col_expr(
                directory_user::Column::IntegrationId,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(directory_user::Column::OriginName, Expr::value(origin));
    }
    update
        .filter(directory_user::Column::Id.is_in(users.iter().copied()))
        .exec(txn)
        .await?;
    group_membership::Entity::delete_many()
        .filter(group_membership::Column::UserId.is_in(users.iter().copied()))
        .exec(txn)
        .await
        .map(drop)
}

/// Deletes `users` (their memberships and aliases go with them).
pub async fn delete(txn: &impl super::Db, users: &[i64]) -> Result<(), sea_orm::DbErr> {
    directory_user::Entity::delete_many()
        .filter(directory_user::Column::Id.is_in(users.iter().copied()))
        .exec(txn)
        .await
        .map(drop)
}

/// Up to `most` ids of the integration's users after `after`, in id order.
pub async fn ids_after(
    db: &impl super::Db,
    integration_id: i64,
    after: i64,
    most: u64,
) -> Result<Vec<i64>, sea_orm::DbErr> {
    directory_user::Entity::find()
        .select_only()
        .column(directory_user::Column::Id)
        .filter(directory_user::Column::IntegrationId.eq(integration_id))
        .filter(directory_user::Column::Id.gt(after))
        .order_by_asc(directory_user::Column::Id)
        .limit(most)
        .into_tuple()
        .all(db)
        .await
}

/// Writes a user's row as a SCIM push gives it: inserted when `new`, else its set columns
/// updated.
pub async fn save(
    txn: &impl super::Db,
    row: directory_user::ActiveModel,
    new: bool,
) -> Result<directory_user::Model, sea_orm::DbErr> {
    use sea_orm::ActiveModelTrait;
    if new {
        row.insert(txn).await
    } else {
        row.update(txn).await
    }
}

/// Each user of an integration as a scope preview weighs it: external id → (archived, has a
/// device).
pub async fn standing_of(
    db: &impl super::Db,
    integration_id: i64,
) -> DomainResult<HashMap<String, (bool, bool)>> {
    let with_devices = entity::device::Entity::find()
        .select_only()
        .column(entity::device::Column::UserId)
        .filter(entity::device::Column::UserId.is_not_null())
        .into_query();
    let rows: Vec<(String, UserStatus, bool)> = directory_user::Entity::find()
        .select_only()
        .column(directory_user::Column::ExternalId)
        .column(directory_user::Column::Status)
        .expr_as(
            sea_orm::sea_query::ExprTrait::in_subquery(
                sea_orm::sea_query::Expr::col((directory_user::Entity, directory_user::Column::Id)),
                with_devices,
            ),
            "has_device",
        )
        .filter(directory_user::Column::IntegrationId.eq(integration_id))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, status, device)| (id, (status == UserStatus::Archived, device)))
        .collect())
}
