//! Nested groups as the API reads them (`group_nesting`), each for many parents in one
//! statement: a page of each group's child or parent groups; and the transitive reads, a page
//! of the users in a group or any group nested in it, of the groups a user is in directly or
//! through nesting, and their counts.
//!
//! A transitive read walks the edges with a recursive query whose `UNION` keeps each group
//! once: it ends on a cycle (SCIM clients can make one) and visits at most the groups
//! reachable from where it starts, at any depth. Its statements are those of a plain nested
//! page: one on PostgreSQL (a `LATERAL` subquery per parent, the walk inside it), one per
//! [`page::PARENTS_PER_STATEMENT`] parents on SQLite (a `UNION ALL` arm each).

use super::{
    Db,
    columns::{Columns, project, select_list},
    page::{self, Direction, Page, PageArgs},
    related::pages_of,
    rows::{self, FromColumns},
};
use crate::error::DomainError;
use entity::{directory_group, directory_user, group_nesting};
use sea_orm::{
    EntityTrait, JoinType, QueryFilter, QuerySelect, RelationTrait,
    sea_query::{Expr, ExprTrait},
};
use std::collections::HashMap;

/// Which way along the edges a page of groups goes from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Edge {
    /// The groups nested directly in the parent group.
    Children,
    /// The groups the parent group is nested in directly.
    Parents,
}

/// A page of each of `groups`' child or parent groups, in `dir` order of their id, reading
/// `columns` of them.
pub async fn neighbours(
    db: &impl Db,
    groups: &[i64],
    edge: Edge,
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<directory_group::Model>>, DomainError> {
    // The edge's column that names the parent, and the one that names the listed group.
    let (from, to, sql) = match edge {
        Edge::Children => (
            group_nesting::Column::ParentId,
            group_nesting::Relation::Child,
            (
                r#""group_nesting"."parent_id""#,
                r#""group_nesting"."child_id""#,
            ),
        ),
        Edge::Parents => (
            group_nesting::Column::ChildId,
            group_nesting::Relation::Parent,
            (
                r#""group_nesting"."child_id""#,
                r#""group_nesting"."parent_id""#,
            ),
        ),
    };
    let select = |parent: Expr| {
        project(
            directory_group::Entity::find()
                .join(JoinType::InnerJoin, to.def().rev())
                .filter(Expr::col((group_nesting::Entity, from)).eq(parent)),
            columns,
        )
    };
    pages_of(db, groups, select, sql, args, dir).await
}

/// One parent's select of a transitive read: `parent` is the SQL of the parent's id (used as
/// often as the select needs), `after` the SQL of the cursor's id when there is one.
type Arm<'a> = &'a dyn Fn(&str, Option<&str>) -> String;

/// The statements of a transitive read over `parents`: on PostgreSQL one, the arm a `LATERAL`
/// subquery over the parents as one array parameter (the cursor a second parameter); on SQLite
/// a `UNION ALL` of one arm per parent, ids written as numbers (dirgate's own `i64`s, never
/// text from a request).
fn statements(
    backend: sea_orm::DbBackend,
    parents: &[i64],
    after: Option<i64>,
    arm: Arm<'_>,
) -> Vec<sea_orm::Statement> {
    if parents.is_empty() {
        return Vec::new();
    }
    if backend == sea_orm::DbBackend::Postgres {
        let inner = arm(r#""dg_parents"."parent""#, after.map(|_| "$2"));
        let mut values = vec![page::id_array(parents)];
        values.extend(after.map(sea_orm::Value::from));
        let sql = format!(
            r#"SELECT "dg_page".* FROM unnest(CAST($1 AS bigint[])) AS "dg_parents"("parent") CROSS JOIN LATERAL ({inner}) AS "dg_page""#
        );
        return vec![sea_orm::Statement::from_sql_and_values(
            backend, sql, values,
        )];
    }
    let after = after.map(|a| a.to_string());
    parents
        .chunks(page::PARENTS_PER_STATEMENT)
        .map(|chunk| {
            let arms: Vec<String> = chunk
                .iter()
                .map(|p| format!("SELECT * FROM ({})", arm(&p.to_string(), after.as_deref())))
                .collect();
            sea_orm::Statement::from_string(backend, arms.join(" UNION ALL "))
        })
        .collect()
}

/// The groups reachable from the parent group, itself included, as a recursive query named
/// `dg_sub`.
fn descendants(parent: &str) -> String {
    format!(
        r#"WITH RECURSIVE "dg_sub"("id") AS (SELECT CAST({parent} AS BIGINT) UNION SELECT "n"."child_id" FROM "group_nesting" AS "n" JOIN "dg_sub" ON "n"."parent_id" = "dg_sub"."id")"#
    )
}

/// The groups the parent user is in directly or through nesting, as a recursive query named
/// `dg_sup`.
fn ancestors(user: &str) -> String {
    format!(
        r#"WITH RECURSIVE "dg_sup"("id") AS (SELECT "m"."group_id" FROM "group_memberships" AS "m" WHERE "m"."user_id" = {user} UNION SELECT "n"."parent_id" FROM "group_nesting" AS "n" JOIN "dg_sup" ON "n"."child_id" = "dg_sup"."id")"#
    )
}

/// The `WHERE` part of a page after the cursor, the order and the limit, on `key`.
fn keyset(key: &str, after: Option<&str>, args: PageArgs, dir: Direction) -> String {
    let (op, order) = match dir {
        Direction::Asc => (">", "ASC"),
        Direction::Desc => ("<", "DESC"),
    };
    let seek = after
        .map(|a| format!(" AND {key} {op} {a}"))
        .unwrap_or_default();
    format!("{seek} ORDER BY {key} {order} LIMIT {}", args.first + 1)
}

/// Reads `statements`, rows of `M`'s columns then `dg_parent` and `dg_key`, as each parent's
/// page (an empty one for a parent without rows).
async fn read_pages<M: FromColumns>(
    db: &impl Db,
    parents: &[i64],
    statements: Vec<sea_orm::Statement>,
    width: usize,
    (first, dir): (u64, Direction),
) -> Result<HashMap<i64, Page<M>>, DomainError> {
    let mut read = Vec::new();
    for statement in statements {
        for row in db.query_all_raw(statement).await? {
            let parent: i64 = row.try_get_by_index(width)?;
            let key: i64 = row.try_get_by_index(width + 1)?;
            read.push((parent, key, M::from_columns(&row, 0)?));
        }
    }
    let mut found = page::pages_of_rows(read, first, dir);
    Ok(parents
        .iter()
        .map(|p| (*p, found.remove(p).unwrap_or_else(Page::empty)))
        .collect())
}

/// A page of the users of each of `groups` and of every group nested in them, at any depth,
/// each user once, in `dir` order of the user id, reading `columns` of them.
pub async fn transitive_members(
    db: &impl Db,
    groups: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<directory_user::Model>>, DomainError> {
    if args.first == 0 {
        return Ok(groups.iter().map(|g| (*g, Page::empty())).collect());
    }
    let users = select_list::<directory_user::Entity>("u", columns);
    let arm = |parent: &str, after: Option<&str>| {
        format!(
            r#"{} SELECT {users}, {parent} AS "dg_parent", "u"."id" AS "dg_key" FROM "directory_users" AS "u" WHERE "u"."id" IN (SELECT "m"."user_id" FROM "group_memberships" AS "m" WHERE "m"."group_id" IN (SELECT "id" FROM "dg_sub")){}"#,
            descendants(parent),
            keyset(r#""u"."id""#, after, args, dir)
        )
    };
    let statements = statements(db.get_database_backend(), groups, args.after, &arm);
    let width = rows::columns_of::<directory_user::Entity>();
    read_pages(db, groups, statements, width, (args.first, dir)).await
}

/// A page of the groups each of `users` is in, directly or through nesting, each group once,
/// in `dir` order of the group id, reading `columns` of them.
pub async fn transitive_groups(
    db: &impl Db,
    users: &[i64],
    args: PageArgs,
    dir: Direction,
    columns: Columns,
) -> Result<HashMap<i64, Page<directory_group::Model>>, DomainError> {
    if args.first == 0 {
        return Ok(users.iter().map(|u| (*u, Page::empty())).collect());
    }
    let groups = select_list::<directory_group::Entity>("g", columns);
    let arm = |parent: &str, after: Option<&str>| {
        format!(
            r#"{} SELECT {groups}, {parent} AS "dg_parent", "g"."id" AS "dg_key" FROM "directory_groups" AS "g" WHERE "g"."id" IN (SELECT "id" FROM "dg_sup"){}"#,
            ancestors(parent),
            keyset(r#""g"."id""#, after, args, dir)
        )
    };
    let statements = statements(db.get_database_backend(), users, args.after, &arm);
    let width = rows::columns_of::<directory_group::Entity>();
    read_pages(db, users, statements, width, (args.first, dir)).await
}

/// What [`transitive_counts`] counts per parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transitive {
    /// The users of a group and of every group nested in it.
    MembersOfGroup,
    /// The groups a user is in, directly or through nesting.
    GroupsOfUser,
}

/// How many of `counted` each of `parents` has, as `(parent, count)`.
pub async fn transitive_counts(
    db: &impl Db,
    counted: Transitive,
    parents: &[i64],
) -> Result<Vec<(i64, i64)>, DomainError> {
    let arm = |parent: &str, _: Option<&str>| match counted {
        Transitive::MembersOfGroup => format!(
            r#"SELECT {parent} AS "dg_parent", COUNT(DISTINCT "m"."user_id") AS "n" FROM "group_memberships" AS "m" WHERE "m"."group_id" IN ({} SELECT "id" FROM "dg_sub")"#,
            descendants(parent)
        ),
        Transitive::GroupsOfUser => format!(
            r#"SELECT {parent} AS "dg_parent", COUNT(*) AS "n" FROM ({} SELECT "id" FROM "dg_sup") AS "dg_all""#,
            ancestors(parent)
        ),
    };
    let mut out = Vec::with_capacity(parents.len());
    for statement in statements(db.get_database_backend(), parents, None, &arm) {
        for row in db.query_all_raw(statement).await? {
            out.push((row.try_get_by_index(0)?, row.try_get_by_index(1)?));
        }
    }
    Ok(out)
}

/// The condition "`user` (an SQL expression of a user id) is in the group `group` or in a
/// group nested in it", for the API's filtered lists. The group id is written as a number
/// (dirgate's own `i64`), so the condition binds nothing and leaves the numbering of the
/// statement's own parameters alone.
pub fn in_group_transitively(user: &str, group: i64) -> Expr {
    Expr::cust(format!(
        r#"{user} IN (SELECT "m"."user_id" FROM "group_memberships" AS "m" WHERE "m"."group_id" IN ({} SELECT "id" FROM "dg_sub"))"#,
        descendants(&group.to_string())
    ))
}
