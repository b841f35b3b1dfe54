//! What the API's loaders read, each for many parents in one statement: rows by id, the
//! groups, devices and aliases of users, children counted per parent, and a page of children
//! per parent (`page::fetch_per_parent`). The loaders (`graphql::loaders`) keep the keys and
//! the batching.

use super::{
    Db,
    columns::{Columns, project, select_list},
    page::{self, Direction, Page, PageArgs},
    rows::{self, FromColumns},
};
use crate::error::DomainError;
use entity::{
    device, directory_group, directory_user, group_membership, group_nesting, integration,
    sync_run, user_alias,
};
use sea_orm::{
    ColumnTrait, DbErr, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect, RelationTrait,
    Select,
    sea_query::{Expr, ExprTrait, Func},
};
use std::collections::HashMap;

/// Most keys bound in one statement, well under SQLite's and PostgreSQL's parameter limits.
pub const MAX_KEYS: usize = 5000;

/// The integrations with these ids (at most [`MAX_KEYS`]).
pub async fn integrations(db: &impl Db, ids: &[i64]) -> Result<Vec<integration::Model>, DbErr> {
    integration::Entity::find()
        .filter(integration::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// The users with these ids (at most [`MAX_KEYS`]), reading `columns` of them.
pub async fn users(
    db: &impl Db,
    ids: &[i64],
    columns: Columns,
) -> Result<Vec<directory_user::Model>, DomainError> {
    rows::models(
        db,
        project(
            directory_user::Entity::find()
                .filter(directory_user::Column::Id.is_in(ids.iter().copied())),
            columns,
        ),
    )
    .await
    .map_err(Into::into)
}

/// The rows of `E` whose `column` is one of `ids` (at most [`MAX_KEYS`]): rows by id (or by
/// sequence, for events), every column.
pub async fn rows_by<E: EntityTrait>(
    db: &impl Db,
    column: E::Column,
    ids: &[i64],
) -> Result<Vec<E::Model>, DbErr> {
    E::find()
        .filter(column.is_in(ids.iter().copied()))
        .all(db)
        .await
}

/// The groups with these ids (at most [`MAX_KEYS`]), reading `columns` of them.
pub async fn groups(
    db: &impl Db,
    ids: &[i64],
    columns: Columns,
) -> Result<Vec<directory_group::Model>, DomainError> {
    let select = directory_group::Entity::find()
        .filter(directory_group::Column::Id.is_in(ids.iter().copied()));
    Ok(rows::models(db, project(select, columns)).await?)
}

/// The devices with these ids (at most [`MAX_KEYS`]), reading `columns` of them.
pub async fn devices(
    db: &impl Db,
    ids: &[i64],
    columns: Columns,
) -> Result<Vec<device::Model>, DomainError> {
    let select = device::Entity::find().filter(device::Column::Id.is_in(ids.iter().copied()));
    Ok(rows::models(db, project(select, columns)).await?)
}

/// The aliases of these users (at most [`MAX_KEYS`]) as `(user, alias)`, in the order they
/// were stored.
pub async fn aliases_of(db: &impl Db, users: &[i64]) -> Result<Vec<(i64, String)>, DbErr> {
    Ok(user_alias::Entity::find()
        .filter(user_alias::Column::UserId.is_in(users.iter().copied()))
        .order_by_asc(user_alias::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.user_id, a.alias))
        .collect())
}

/// What [`count_by`] counts, per parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    UsersOfIntegration,
    GroupsOfIntegration,
    MembersOfGroup,
    RunsOfIntegration,
    GroupsOfUser,
    DevicesOfUser,
    /// The groups nested directly in a group.
    ChildrenOfGroup,
    /// The groups a group is nested in directly.
    ParentsOfGroup,
}

/// How many children each of `parents` (at most [`MAX_KEYS`]) has, as `(parent, count)`; a
/// parent with none is left out.
pub async fn count_by(
    db: &impl Db,
    counted: Counted,
    parents: &[i64],
) -> Result<Vec<(i64, i64)>, DbErr> {
    async fn count<E: EntityTrait>(
        db: &impl Db,
        col: E::Column,
        parents: &[i64],
    ) -> Result<Vec<(i64, i64)>, DbErr> {
        E::find()
            .select_only()
            .column(col)
            .expr_as(Expr::from(Func::count(Expr::col(col))), "n")
            .filter(col.is_in(parents.iter().copied()))
            .group_by(col)
            .into_tuple()
            .all(db)
            .await
    }
    match counted {
        Counted::UsersOfIntegration => {
            count::<directory_user::Entity>(db, directory_user::Column::IntegrationId, parents)
                .await
        }
        Counted::GroupsOfIntegration => {
            count::<directory_group::Entity>(db, directory_group::Column::IntegrationId, parents)
                .await
        }
        Counted::MembersOfGroup => {
            count::<group_membership::Entity>(db, group_membership::Column::GroupId, parents).await
        }
        Counted::RunsOfIntegration => {
            count::<sync_run::Entity>(db, sync_run::Column::IntegrationId, parents).await
        }
        Counted::GroupsOfUser => {
            count::<group_membership::Entity>(db, group_membership::Column::UserId, parents).await
        }
        Counted::DevicesOfUser => {
            count::<device::Entity>(db, device::Column::UserId, parents).await
        }
        Counted::ChildrenOfGroup => {
            count::<group_nesting::Entity>(db, group_nesting::Column::ParentId, parents).await
        }
        Counted::ParentsOfGroup => {
            count::<group_nesting::Entity>(db, group_nesting::Column::ChildId, parents).await
        }
    }
}

/// Groups `rows` into one list per key, with an empty list for keys that have none.
pub fn group_into<K, V>(keys: &[K], rows: impl IntoIterator<Item = (K, V)>) -> HashMap<K, Vec<V>>
where
    K: std::hash::Hash + Eq + Copy,
{
    let mut out: HashMap<K, Vec<V>> = keys.iter().map(|k| (*k, Vec::new())).collect();
    for (key, value) in rows {
        out.entry(key).or_default().push(value);
    }
    out
}

/// A page of the groups of each of `users` (an empty page for one in none), in `dir` order
/// of the group id, reading `columns` of them.
pub async fn groups_of_users(
    db: &impl Db,
    users: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<directory_group::Model>>, DomainError> {
    let parent_at = rows::columns_of::<directory_group::Entity>();
    let mut read = Vec::new();
    if args.first > 0 {
        for statement in
            user_groups_statements(db.get_database_backend(), users, args, dir, columns)
        {
            for row in db.query_all_raw(statement).await? {
                let user: i64 = row.try_get_by_index(parent_at)?;
                let group: i64 = row.try_get_by_index(parent_at + 1)?;
                read.push((user, group, directory_group::Model::from_columns(&row, 0)?));
            }
        }
    }
    let mut found = page::pages_of_rows(read, args.first, dir);
    Ok(users
        .iter()
        .map(|user| (*user, found.remove(user).unwrap_or_else(Page::empty)))
        .collect())
}

/// The statements of [`groups_of_users`]: rows of the group's columns (reading `columns`),
/// then the member as `dg_parent` and the group id as `dg_key`.
///
/// Each user's page walks its memberships in the `(user_id, group_id)` index, from the cursor
/// on, `first + 1` of them, and finds each one's group by primary key. On PostgreSQL the
/// users are one array parameter and the group a `LATERAL` subquery per membership (`OFFSET
/// 0` keeps the planner from flattening it into a join: its default costs would otherwise
/// hash the whole groups table for a few dozen memberships); on SQLite, which has no
/// `LATERAL`, one `UNION ALL` arm per user, [`page::PARENTS_PER_STATEMENT`] a statement.
pub fn user_groups_statements(
    backend: sea_orm::DbBackend,
    users: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Vec<sea_orm::Statement> {
    let group = select_list::<directory_group::Entity>("g", columns);
    let select =
        format!(r#"SELECT {group}, "m"."user_id" AS "dg_parent", "m"."group_id" AS "dg_key""#);
    let (op, order) = match dir {
        Direction::Asc => (">", "ASC"),
        Direction::Desc => ("<", "DESC"),
    };
    // The page's size is dirgate's own number, in the text (`prepared`); the cursor is bound.
    let limit = args.first + 1;
    if users.is_empty() {
        return Vec::new();
    }
    if backend == sea_orm::DbBackend::Postgres {
        let seek = if args.after.is_some() {
            format!(r#" AND "group_id" {op} $2"#)
        } else {
            String::new()
        };
        let mut values = vec![page::id_array(users)];
        values.extend(args.after.map(sea_orm::Value::from));
        return vec![sea_orm::Statement::from_sql_and_values(
            backend,
            format!(
                r#"{select} FROM unnest(CAST($1 AS bigint[])) AS "dg_parents"("parent") CROSS JOIN LATERAL (SELECT "user_id", "group_id" FROM "group_memberships" WHERE "user_id" = "dg_parents"."parent"{seek} ORDER BY "group_id" {order} LIMIT {limit}) AS "m" CROSS JOIN LATERAL (SELECT * FROM "directory_groups" WHERE "directory_groups"."id" = "m"."group_id" OFFSET 0) AS "g""#
            ),
            values,
        )];
    }
    let seek = if args.after.is_some() {
        format!(r#" AND "m"."group_id" {op} ?"#)
    } else {
        String::new()
    };
    let arm = format!(
        r#"SELECT * FROM ({select} FROM "group_memberships" AS "m" JOIN "directory_groups" AS "g" ON "g"."id" = "m"."group_id" WHERE "m"."user_id" = ?{seek} ORDER BY "m"."group_id" {order} LIMIT {limit})"#
    );
    users
        .chunks(page::PARENTS_PER_STATEMENT)
        .map(|chunk| {
            let sql = vec![arm.as_str(); chunk.len()].join(" UNION ALL ");
            let values = chunk.iter().flat_map(|&user| {
                std::iter::once(sea_orm::Value::from(user))
                    .chain(args.after.map(sea_orm::Value::from))
            });
            sea_orm::Statement::from_sql_and_values(backend, sql, values.collect::<Vec<_>>())
        })
        .collect()
}

/// A page of the devices of each of `users` (an empty page for one with none), in `dir`
/// order of the device id, reading `columns` of them.
pub async fn devices_of_users(
    db: &impl Db,
    users: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<device::Model>>, DomainError> {
    pages_of(
        db,
        users,
        |user| {
            project(
                device::Entity::find()
                    .filter(Expr::col((device::Entity, device::Column::UserId)).eq(user)),
                columns,
            )
        },
        (r#""devices"."user_id""#, r#""devices"."id""#),
        args,
        dir,
    )
    .await
}

/// Reads a page of children for each of `parents` (`select(parent)` gives the children of the
/// parent the expression names); every parent gets a page, empty when it has no children.
pub(super) async fn pages_of<E>(
    db: &impl Db,
    parents: &[i64],
    select: impl Fn(Expr) -> Select<E>,
    sql: (&'static str, &'static str),
    args: PageArgs,
    dir: Direction,
) -> Result<HashMap<i64, Page<E::Model>>, DomainError>
where
    E: EntityTrait,
    E::Model: FromColumns,
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
            (*parent, page)
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

/// A page of the rows of `E` of each of these integrations (in id order), reading `columns`
/// of them; `parent` is `E`'s integration column, `sql` it and the id column as SQL.
async fn of_integrations<E>(
    db: &impl Db,
    parents: &[i64],
    args: PageArgs,
    columns: Columns,
    parent: E::Column,
    sql: (&'static str, &'static str),
    dir: Direction,
) -> Result<HashMap<i64, Page<E::Model>>, DomainError>
where
    E: super::columns::Projectable,
    E::Model: FromColumns,
{
    pages_of(
        db,
        parents,
        |integration| {
            project(
                E::find().filter(Expr::col((E::default(), parent)).eq(integration)),
                columns,
            )
        },
        sql,
        args,
        dir,
    )
    .await
}

/// A page of users of each of these integrations, reading `columns` of them.
pub async fn users_of_integrations(
    db: &impl Db,
    parents: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<directory_user::Model>>, DomainError> {
    let parent = directory_user::Column::IntegrationId;
    let sql = (
        r#""directory_users"."integration_id""#,
        r#""directory_users"."id""#,
    );
    of_integrations::<directory_user::Entity>(db, parents, args, columns, parent, sql, dir).await
}

/// A page of groups of each of these integrations, reading `columns` of them.
pub async fn groups_of_integrations(
    db: &impl Db,
    parents: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<directory_group::Model>>, DomainError> {
    let parent = directory_group::Column::IntegrationId;
    let sql = (
        r#""directory_groups"."integration_id""#,
        r#""directory_groups"."id""#,
    );
    of_integrations::<directory_group::Entity>(db, parents, args, columns, parent, sql, dir).await
}

/// A page of members of each of these groups, reading `columns` of them.
pub async fn members_of_groups(
    db: &impl Db,
    parents: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<directory_user::Model>>, DomainError> {
    pages_of(
        db,
        parents,
        |group| project(members_of(group), columns),
        MEMBERS_SQL,
        args,
        dir,
    )
    .await
}

/// A page of sync runs of each of these integrations, in `dir` order of the id.
pub async fn runs_of_integrations(
    db: &impl Db,
    parents: &[i64],
    args: PageArgs,
    dir: Direction,
) -> Result<HashMap<i64, Page<sync_run::Model>>, DomainError> {
    pages_of(
        db,
        parents,
        |integration| {
            sync_run::Entity::find().filter(
                Expr::col((sync_run::Entity, sync_run::Column::IntegrationId)).eq(integration),
            )
        },
        (r#""sync_runs"."integration_id""#, r#""sync_runs"."id""#),
        args,
        dir,
    )
    .await
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
