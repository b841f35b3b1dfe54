//! The loaders of one relation each: an integration or a user by id, a user's groups,
//! devices and aliases, and counts of children; and [`Prefetches`], what a page of users reads
//! beside its users.

use super::{
    AliasesOfUser, BatchLoader, CountKey, DevicesOfUser, GroupsOfUser, IntegrationKey, LoadResult,
    MAX_KEYS, Prefetch, Prefetched, PrefetchedUser, UserKey, index_by,
};
use crate::{
    error::DomainError,
    graphql::projection::Projection,
    store::{
        columns::{Columns, project, select_list},
        page,
        rows::FromColumns,
    },
};
use async_graphql::dataloader::Loader;
use entity::{
    device, directory_group, directory_user, group_membership, integration, sync_run, user_alias,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, Func},
};
use std::{collections::HashMap, sync::Arc};

impl Loader<IntegrationKey> for BatchLoader {
    type Value = integration::Model;
    type Error = DomainError;

    async fn load(&self, keys: &[IntegrationKey]) -> LoadResult<IntegrationKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for chunk in keys.chunks(MAX_KEYS) {
                let rows = integration::Entity::find()
                    .filter(integration::Column::Id.is_in(chunk.iter().map(|k| k.0)))
                    .all(&self.db)
                    .await?;
                out.extend(index_by(rows, |m| IntegrationKey(m.id)));
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<UserKey> for BatchLoader {
    type Value = directory_user::Model;
    type Error = DomainError;

    async fn load(&self, keys: &[UserKey]) -> LoadResult<UserKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for chunk in keys.chunks(MAX_KEYS) {
                let rows = crate::store::rows::models(
                    &self.db,
                    project(
                        directory_user::Entity::find()
                            .filter(directory_user::Column::Id.is_in(chunk.iter().map(|k| k.0))),
                        self.projection.users,
                    ),
                )
                .await?;
                out.extend(index_by(rows, |m| UserKey(m.id)));
            }
            Ok(out)
        })
        .await
    }
}

/// Groups `rows` into one list per key, with an empty list for keys that have none.
pub(super) fn group_into<K, V>(
    keys: &[K],
    rows: impl IntoIterator<Item = (K, V)>,
) -> HashMap<K, Vec<V>>
where
    K: std::hash::Hash + Eq + Copy,
{
    let mut out: HashMap<K, Vec<V>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for (key, value) in rows {
        out.entry(key).or_default().push(value);
    }
    out
}

impl Loader<GroupsOfUser> for BatchLoader {
    type Value = Vec<directory_group::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[GroupsOfUser]) -> LoadResult<GroupsOfUser, Self::Value> {
        self.batch(async {
            let users: Vec<i64> = keys.iter().map(|k| k.0).collect();
            let groups = groups_of(&self.db, &users, self.projection.groups).await?;
            Ok(groups
                .into_iter()
                .map(|(user, groups)| (GroupsOfUser(user), groups))
                .collect())
        })
        .await
    }
}

/// The groups of each of `users` (an empty list for one in none), in group order, reading
/// `columns` of them.
pub async fn groups_of(
    db: &DatabaseConnection,
    users: &[i64],
    columns: Columns,
) -> Result<HashMap<i64, Vec<directory_group::Model>>, DomainError> {
    let mut out = HashMap::new();
    for chunk in users.chunks(MAX_KEYS) {
        let statement = groups_of_users(db.get_database_backend(), chunk, columns);
        let mut pairs = Vec::new();
        for row in db.query_all_raw(statement).await? {
            // `dg_member`, then the group's columns in the table's order, which is the
            // entity's (a test holds them equal).
            let user: i64 = row.try_get_by_index(0)?;
            pairs.push((user, directory_group::Model::from_columns(&row, 1)?));
        }
        out.extend(group_into(chunk, pairs));
    }
    Ok(out)
}

/// The groups of `users`, with the member as `dg_member`, in group order, reading `columns`
/// of them: one statement.
///
/// On PostgreSQL each membership finds its group by primary key in a `LATERAL` subquery
/// (`OFFSET 0` keeps the planner from flattening it into a join): its default costs would
/// otherwise hash the whole groups table for a few dozen memberships. SQLite's planner takes
/// the index lookups for the plain join.
pub fn groups_of_users(
    backend: sea_orm::DbBackend,
    users: &[i64],
    columns: Columns,
) -> sea_orm::Statement {
    let group = select_list::<directory_group::Entity>("g", columns);
    let select =
        format!(r#"SELECT "m"."user_id" AS "dg_member", {group} FROM "group_memberships" AS "m""#);
    const ORDER: &str = r#"ORDER BY "m"."group_id""#;
    if backend == sea_orm::DbBackend::Postgres {
        return sea_orm::Statement::from_sql_and_values(
            backend,
            format!(
                r#"{select} CROSS JOIN LATERAL (SELECT * FROM "directory_groups" WHERE "directory_groups"."id" = "m"."group_id" OFFSET 0) AS "g" WHERE "m"."user_id" = ANY(CAST($1 AS bigint[])) {ORDER}"#
            ),
            [page::id_array(users)],
        );
    }
    let marks = vec!["?"; users.len()].join(",");
    sea_orm::Statement::from_sql_and_values(
        backend,
        format!(
            r#"{select} JOIN "directory_groups" AS "g" ON "g"."id" = "m"."group_id" WHERE "m"."user_id" IN ({marks}) {ORDER}"#
        ),
        users.iter().map(|&id| sea_orm::Value::from(id)),
    )
}

impl Loader<DevicesOfUser> for BatchLoader {
    type Value = Vec<device::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[DevicesOfUser]) -> LoadResult<DevicesOfUser, Self::Value> {
        self.batch(async {
            let users: Vec<i64> = keys.iter().map(|k| k.0).collect();
            let devices = devices_of(&self.db, &users, self.projection.devices).await?;
            Ok(devices
                .into_iter()
                .map(|(user, devices)| (DevicesOfUser(user), devices))
                .collect())
        })
        .await
    }
}

/// The devices of each of `users` (an empty list for one with none), oldest first, reading
/// `columns` of them.
pub async fn devices_of(
    db: &DatabaseConnection,
    users: &[i64],
    columns: Columns,
) -> Result<HashMap<i64, Vec<device::Model>>, DomainError> {
    let mut out = HashMap::new();
    for chunk in users.chunks(MAX_KEYS) {
        let rows = crate::store::rows::models(
            db,
            project(
                device::Entity::find()
                    .filter(device::Column::UserId.is_in(chunk.iter().copied()))
                    .order_by_asc(device::Column::Id),
                columns,
            ),
        )
        .await?;
        out.extend(group_into(
            chunk,
            rows.into_iter().filter_map(|d| d.user_id.map(|u| (u, d))),
        ));
    }
    Ok(out)
}

/// What was read beside some users: one statement per relation for all of them.
#[derive(Default)]
pub struct Prefetches {
    devices: Option<HashMap<i64, Arc<[device::Model]>>>,
    groups: Option<HashMap<i64, Arc<[directory_group::Model]>>>,
}

impl Prefetches {
    /// Reads `beside` of `users` (each id once), with the request's `projection`.
    pub async fn of(
        db: &DatabaseConnection,
        projection: Projection,
        users: impl IntoIterator<Item = i64>,
        beside: Prefetch,
    ) -> Result<Self, DomainError> {
        if beside == Prefetch::default() {
            return Ok(Self::default());
        }
        let users: std::collections::HashSet<i64> = users.into_iter().collect();
        let users: Vec<i64> = users.into_iter().collect();
        fn shared<T>(map: HashMap<i64, Vec<T>>) -> HashMap<i64, Arc<[T]>> {
            map.into_iter().map(|(k, v)| (k, v.into())).collect()
        }
        let mut read = Self::default();
        if beside.devices {
            read.devices = Some(shared(devices_of(db, &users, projection.devices).await?));
        }
        if beside.groups {
            read.groups = Some(shared(groups_of(db, &users, projection.groups).await?));
        }
        Ok(read)
    }

    /// `user` with what was read beside it (an empty list where it has none).
    pub fn attach(&self, user: directory_user::Model) -> PrefetchedUser {
        fn own<T>(map: &Option<HashMap<i64, Arc<[T]>>>, id: i64) -> Option<Arc<[T]>> {
            map.as_ref()
                .map(|m| m.get(&id).cloned().unwrap_or_else(|| Arc::from(Vec::new())))
        }
        let related = Prefetched {
            devices: own(&self.devices, user.id),
            groups: own(&self.groups, user.id),
        };
        PrefetchedUser { user, related }
    }
}

impl Loader<AliasesOfUser> for BatchLoader {
    type Value = Vec<String>;
    type Error = DomainError;

    async fn load(&self, keys: &[AliasesOfUser]) -> LoadResult<AliasesOfUser, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for chunk in keys.chunks(MAX_KEYS) {
                let rows = user_alias::Entity::find()
                    .filter(user_alias::Column::UserId.is_in(chunk.iter().map(|k| k.0)))
                    .order_by_asc(user_alias::Column::Id)
                    .all(&self.db)
                    .await?;
                out.extend(group_into(
                    chunk,
                    rows.into_iter()
                        .map(|a| (AliasesOfUser(a.user_id), a.alias)),
                ));
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<CountKey> for BatchLoader {
    type Value = u64;
    type Error = DomainError;

    async fn load(&self, keys: &[CountKey]) -> LoadResult<CountKey, u64> {
        self.batch(async {
            let mut out: HashMap<CountKey, u64> = keys.iter().map(|k| (*k, 0)).collect();
            macro_rules! count_by {
                ($variant:ident, $entity:ident, $col:expr) => {{
                    let parents: Vec<i64> = keys
                        .iter()
                        .filter_map(|k| match k {
                            CountKey::$variant(id) => Some(*id),
                            _ => None,
                        })
                        .collect();
                    for chunk in parents.chunks(MAX_KEYS) {
                        let counts: Vec<(i64, i64)> = $entity::Entity::find()
                            .select_only()
                            .column($col)
                            .expr_as(Expr::from(Func::count(Expr::col($col))), "n")
                            .filter($col.is_in(chunk.iter().copied()))
                            .group_by($col)
                            .into_tuple()
                            .all(&self.db)
                            .await?;
                        for (parent, n) in counts {
                            out.insert(CountKey::$variant(parent), n as u64);
                        }
                    }
                }};
            }
            count_by!(
                UsersOfIntegration,
                directory_user,
                directory_user::Column::IntegrationId
            );
            count_by!(
                GroupsOfIntegration,
                directory_group,
                directory_group::Column::IntegrationId
            );
            count_by!(
                MembersOfGroup,
                group_membership,
                group_membership::Column::GroupId
            );
            count_by!(RunsOfIntegration, sync_run, sync_run::Column::IntegrationId);
            Ok(out)
        })
        .await
    }
}
