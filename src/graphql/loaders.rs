//! Batched loading of every relation, through one async-graphql `DataLoader` per request.
//!
//! Each key type below is one relation; all keys of a type asked for while a response is being
//! resolved are read in one statement (nested pages too: see `directory::page`), so the number
//! of statements a request runs does not depend on the page size.
//!
//! Where a page can carry the answer, no key is asked at all: a page of users asked for with
//! their devices or groups reads them beside the page ([`Beside`], [`Read`]), and a page of devices carries
//! its users and their groups (`query.rs`'s `devices`, with [`groups_of`]); each [`UserWith`]
//! then answers its fields itself. Every read takes the request's [`Projection`].

pub use super::gate::Busy;
use super::{gate::Gate, projection::Projection};
use crate::{
    directory::{
        columns::{Columns, project, select_list},
        page::{self, Direction, Page, PageArgs},
        rows::FromColumns,
    },
    error::DomainError,
};
use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use entity::{
    device, directory_group, directory_user, group_membership, integration, sync_run, user_alias,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, JoinType, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait, Select,
    sea_query::{Expr, ExprTrait, Func},
};
use std::{collections::HashMap, sync::Arc, time::Duration};

/// The request's loader: an async-graphql `DataLoader` whose batches wait at a [`Gate`].
pub struct Loaders {
    loader: DataLoader<Db, HashMapCache>,
    gate: Arc<Gate>,
    projection: Projection,
}

/// Makes the loader for one request, which reads `projection`'s columns of each model.
pub fn for_request(db: DatabaseConnection, projection: Projection) -> Loaders {
    let gate = Arc::new(Gate::default());
    let spawner_gate = gate.clone();
    let loader = DataLoader::with_cache(
        Db {
            db,
            gate: gate.clone(),
            projection,
        },
        move |batch| spawner_gate.submit(batch),
        HashMapCache::default(),
    )
    .delay(Duration::ZERO)
    // Every batch must load exactly once to pass the gate's barrier, so the loader never
    // splits a batch by size; statements split long key lists themselves (`MAX_KEYS`).
    .max_batch_size(usize::MAX);
    Loaders {
        loader,
        gate,
        projection,
    }
}

/// Most keys bound in one statement, well under SQLite's and PostgreSQL's parameter limits.
const MAX_KEYS: usize = 5000;

impl Loaders {
    /// Loads the value of one key, batched with every other key the request asks for meanwhile.
    pub async fn load_one<K>(&self, key: K) -> Result<Option<<Db as Loader<K>>::Value>, DomainError>
    where
        K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
        Db: Loader<K, Error = DomainError>,
    {
        self.gate.touch();
        self.loader.load_one(key).await
    }

    /// Marks database work outside the loader (a root page, a count) as in progress: no
    /// batch runs until it is done, so its rows' relations join the same wave.
    pub fn busy(&self) -> Busy {
        self.gate.enter()
    }

    /// Runs this request's waves in the caller's task: poll it after the request's future
    /// (see `App::execute`), until the request is done.
    pub fn driver(&self) -> impl Future<Output = ()> + Send + 'static {
        self.gate.driver()
    }

    /// The columns of each model this request reads (a page read outside the loader reads
    /// the same, since the loader's cache holds them side by side).
    pub fn projection(&self) -> Projection {
        self.projection
    }

    /// Turns caching off (for long-lived subscriptions, which must see fresh rows).
    pub fn disable_cache(&self) {
        self.loader.enable_all_cache(false);
    }
}

/// The database, seen as a loader of every key type below.
pub struct Db {
    db: DatabaseConnection,
    gate: Arc<Gate>,
    projection: Projection,
}

impl Db {
    /// Runs a batch's statements, then waits at the gate until the wave's other batches are
    /// done too (whether this one succeeded or not).
    async fn batch<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let result = work.await;
        self.gate.arrive().await;
        result
    }
}

/// An integration by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntegrationKey(pub i64);
/// A user by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserKey(pub i64);
/// The groups a user is a member of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupsOfUser(pub i64);
/// The devices assigned to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevicesOfUser(pub i64);
/// The aliases of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AliasesOfUser(pub i64);

/// A count of children of one parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountKey {
    UsersOfIntegration(i64),
    GroupsOfIntegration(i64),
    MembersOfGroup(i64),
    RunsOfIntegration(i64),
}

/// The parent of a page of users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserParent {
    Integration(i64),
    Group(i64),
}

/// A page of users of one parent, with what its users are asked for beside them (read in
/// the same wave, one statement for all the wave's pages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UserPageKey(pub UserParent, pub PageArgs, pub Beside);

/// What a page of users reads beside its users: each one's devices, each one's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Beside {
    pub devices: bool,
    pub groups: bool,
}

/// What was read beside one user (`None`: not read; its fields then ask the loader).
#[derive(Debug, Clone, Default)]
pub struct Related {
    pub devices: Option<Arc<[device::Model]>>,
    pub groups: Option<Arc<[directory_group::Model]>>,
}

/// A user read with what was asked of it beside it, so its fields need no loader key of
/// their own.
#[derive(Debug, Clone)]
pub struct UserWith {
    pub user: directory_user::Model,
    pub related: Related,
}

/// A page of an integration's groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupPageKey(pub i64, pub PageArgs);
/// A page of an integration's sync runs, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunPageKey(pub i64, pub PageArgs);

type LoadResult<K, V> = Result<HashMap<K, V>, DomainError>;

fn index_by<K, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, V>
where
    K: std::hash::Hash + Eq,
{
    rows.into_iter().map(|row| (key(&row), row)).collect()
}

impl Loader<IntegrationKey> for Db {
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

impl Loader<UserKey> for Db {
    type Value = directory_user::Model;
    type Error = DomainError;

    async fn load(&self, keys: &[UserKey]) -> LoadResult<UserKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for chunk in keys.chunks(MAX_KEYS) {
                let rows = crate::directory::rows::models(
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
fn group_into<K, V>(keys: &[K], rows: impl IntoIterator<Item = (K, V)>) -> HashMap<K, Vec<V>>
where
    K: std::hash::Hash + Eq + Copy,
{
    let mut out: HashMap<K, Vec<V>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for (key, value) in rows {
        out.entry(key).or_default().push(value);
    }
    out
}

impl Loader<GroupsOfUser> for Db {
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

impl Loader<DevicesOfUser> for Db {
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
        let rows = crate::directory::rows::models(
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
pub struct Read {
    devices: Option<HashMap<i64, Arc<[device::Model]>>>,
    groups: Option<HashMap<i64, Arc<[directory_group::Model]>>>,
}

impl Read {
    /// Reads `beside` of `users` (each id once), with the request's `projection`.
    pub async fn of(
        db: &DatabaseConnection,
        projection: Projection,
        users: impl IntoIterator<Item = i64>,
        beside: Beside,
    ) -> Result<Self, DomainError> {
        if beside == Beside::default() {
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
    pub fn attach(&self, user: directory_user::Model) -> UserWith {
        fn own<T>(map: &Option<HashMap<i64, Arc<[T]>>>, id: i64) -> Option<Arc<[T]>> {
            map.as_ref()
                .map(|m| m.get(&id).cloned().unwrap_or_else(|| Arc::from(Vec::new())))
        }
        let related = Related {
            devices: own(&self.devices, user.id),
            groups: own(&self.groups, user.id),
        };
        UserWith { user, related }
    }
}

impl Loader<AliasesOfUser> for Db {
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

impl Loader<CountKey> for Db {
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

/// Splits keys by their page arguments: one statement per distinct arguments (in
/// practice one, as siblings in a response share their arguments).
fn by_args<'a, K: Copy + 'a, P: Copy + std::hash::Hash + Eq>(
    keys: impl IntoIterator<Item = &'a K>,
    split: impl Fn(K) -> (P, PageArgs),
) -> HashMap<PageArgs, Vec<P>> {
    let mut out: HashMap<PageArgs, Vec<P>> = HashMap::new();
    for key in keys {
        let (parent, args) = split(*key);
        out.entry(args).or_default().push(parent);
    }
    out
}

/// Reads a page of children for each of `parents` (`select(parent)` gives the children of the
/// parent the expression names); every parent gets a page, empty when it has no children.
async fn pages_of<E, K>(
    db: &DatabaseConnection,
    parents: &[i64],
    select: impl Fn(Expr) -> Select<E>,
    sql: (&'static str, &'static str),
    args: PageArgs,
    dir: Direction,
    key: impl Fn(i64) -> K,
) -> Result<HashMap<K, Page<E::Model>>, DomainError>
where
    E: EntityTrait,
    E::Model: FromColumns,
    K: std::hash::Hash + Eq,
{
    let per_parent = page::PerParent {
        parent_sql: sql.0,
        order_sql: sql.1,
        args,
        dir,
    };
    let mut found = page::fetch_per_parent(db, parents, select, per_parent).await?;
    Ok(parents
        .iter()
        .map(|parent| {
            let page = found.remove(parent).unwrap_or_else(Page::empty);
            (key(*parent), page)
        })
        .collect())
}

/// The members of the group `group` names (a value, or the parent column of a batch).
pub fn members_of(group: Expr) -> Select<directory_user::Entity> {
    directory_user::Entity::find()
        .join(
            JoinType::InnerJoin,
            group_membership::Relation::User.def().rev(),
        )
        .filter(Expr::col((group_membership::Entity, group_membership::Column::GroupId)).eq(group))
}

/// The parent and the order of [`members_of`]: ordered by the membership's user id (the same
/// value as the user's), so both databases read the `(group_id, user_id)` index in order.
pub const MEMBERS_SQL: (&str, &str) = (
    r#""group_memberships"."group_id""#,
    r#""group_memberships"."user_id""#,
);

impl Loader<UserPageKey> for Db {
    type Value = Page<UserWith>;
    type Error = DomainError;

    async fn load(&self, keys: &[UserPageKey]) -> LoadResult<UserPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            let asked: std::collections::HashSet<Beside> = keys.iter().map(|k| k.2).collect();
            for beside in asked {
                let keys = keys.iter().filter(|k| k.2 == beside);
                for (args, parents) in by_args(keys, |UserPageKey(parent, args, _)| (parent, args))
                {
                    let pages = self.user_pages(&parents, args).await?;
                    let users: Vec<i64> = pages
                        .values()
                        .flat_map(|p| p.items.iter().map(|u| u.id))
                        .collect();
                    let read = Read::of(&self.db, self.projection, users, beside).await?;
                    out.extend(pages.into_iter().map(|(parent, page)| {
                        let page = page.map(|user| read.attach(user));
                        (UserPageKey(parent, args, beside), page)
                    }));
                }
            }
            Ok(out)
        })
        .await
    }
}

impl Db {
    /// A page of users of each of `parents`.
    async fn user_pages(
        &self,
        parents: &[UserParent],
        args: PageArgs,
    ) -> LoadResult<UserParent, Page<directory_user::Model>> {
        let mut out = HashMap::new();
        let of_integration: Vec<i64> = parents
            .iter()
            .filter_map(|p| match p {
                UserParent::Integration(id) => Some(*id),
                UserParent::Group(_) => None,
            })
            .collect();
        let of_group: Vec<i64> = parents
            .iter()
            .filter_map(|p| match p {
                UserParent::Group(id) => Some(*id),
                UserParent::Integration(_) => None,
            })
            .collect();
        if !of_integration.is_empty() {
            out.extend(
                pages_of(
                    &self.db,
                    &of_integration,
                    |integration| {
                        project(
                            directory_user::Entity::find().filter(
                                Expr::col((
                                    directory_user::Entity,
                                    directory_user::Column::IntegrationId,
                                ))
                                .eq(integration),
                            ),
                            self.projection.users,
                        )
                    },
                    (
                        r#""directory_users"."integration_id""#,
                        r#""directory_users"."id""#,
                    ),
                    args,
                    Direction::Asc,
                    UserParent::Integration,
                )
                .await?,
            );
        }
        if !of_group.is_empty() {
            out.extend(
                pages_of(
                    &self.db,
                    &of_group,
                    |group| project(members_of(group), self.projection.users),
                    MEMBERS_SQL,
                    args,
                    Direction::Asc,
                    UserParent::Group,
                )
                .await?,
            );
        }
        Ok(out)
    }
}

impl Loader<GroupPageKey> for Db {
    type Value = Page<directory_group::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[GroupPageKey]) -> LoadResult<GroupPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for (args, parents) in by_args(keys, |GroupPageKey(parent, args)| (parent, args)) {
                out.extend(
                    pages_of(
                        &self.db,
                        &parents,
                        |integration| {
                            project(
                                directory_group::Entity::find().filter(
                                    Expr::col((
                                        directory_group::Entity,
                                        directory_group::Column::IntegrationId,
                                    ))
                                    .eq(integration),
                                ),
                                self.projection.groups,
                            )
                        },
                        (
                            r#""directory_groups"."integration_id""#,
                            r#""directory_groups"."id""#,
                        ),
                        args,
                        Direction::Asc,
                        |id| GroupPageKey(id, args),
                    )
                    .await?,
                );
            }
            Ok(out)
        })
        .await
    }
}

impl Loader<RunPageKey> for Db {
    type Value = Page<sync_run::Model>;
    type Error = DomainError;

    async fn load(&self, keys: &[RunPageKey]) -> LoadResult<RunPageKey, Self::Value> {
        self.batch(async {
            let mut out = HashMap::new();
            for (args, parents) in by_args(keys, |RunPageKey(parent, args)| (parent, args)) {
                out.extend(
                    pages_of(
                        &self.db,
                        &parents,
                        |integration| {
                            sync_run::Entity::find().filter(
                                Expr::col((sync_run::Entity, sync_run::Column::IntegrationId))
                                    .eq(integration),
                            )
                        },
                        (r#""sync_runs"."integration_id""#, r#""sync_runs"."id""#),
                        args,
                        Direction::Desc,
                        |id| RunPageKey(id, args),
                    )
                    .await?,
                );
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ConnectionTrait, Statement};

    /// SQLite's plan of a page of members of many groups: each group's arm seeks its members
    /// in the `(group_id, user_id)` index and stops at the page's end, without sorting.
    #[tokio::test]
    async fn a_page_of_members_reads_each_group_in_index_order() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let args = PageArgs {
            first: 20,
            after: Some(7),
        };
        let per_parent = page::PerParent {
            parent_sql: MEMBERS_SQL.0,
            order_sql: MEMBERS_SQL.1,
            args,
            dir: Direction::Asc,
        };
        let statement = page::per_parent_statement(&[1, 2, 3], members_of, per_parent).unwrap();
        let built = db.get_database_backend().build(&statement);
        let (sql, values) = (built.sql.clone(), built.values.clone());
        assert_eq!(
            sql.matches("LIMIT").count(),
            3,
            "one limited arm per group: {sql}"
        );
        let plan = db
            .query_all_raw(Statement::from_sql_and_values(
                db.get_database_backend(),
                format!("EXPLAIN QUERY PLAN {sql}"),
                values.unwrap(),
            ))
            .await
            .unwrap();
        let plan: Vec<String> = plan
            .iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect();
        assert!(
            plan.iter()
                .filter(|d| d.contains("group_memberships") && d.contains("INDEX"))
                .count()
                >= 3,
            "{plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.contains("TEMP B-TREE")),
            "a page sorts its group's members: {plan:?}"
        );
    }
}
