//! Keyset pagination by id, for single lists and for many parents at once.
//!
//! A page asks for `first + 1` rows to know whether another page follows. Nested pages (the
//! members of 200 groups) are read in one statement, a `UNION ALL` of one limited arm per
//! parent ([`fetch_per_parent`]), so the number of statements a request runs does not grow
//! with the page size and the rows read do not grow with the size of a parent.

use crate::error::{DomainError, DomainResult};
use sea_orm::{
    ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    Select,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query, UnionType},
};
use std::collections::HashMap;

/// Default page size when a caller gives no `first`.
pub const DEFAULT_PAGE_SIZE: u64 = 50;

/// Which slice of an ordered list to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageArgs {
    /// How many items at most.
    pub first: u64,
    /// Start after the item with this id.
    pub after: Option<i64>,
}

impl PageArgs {
    /// Checks `first` against the limits: negative, or above `max`, is `INVALID_INPUT`.
    pub fn new(first: Option<i32>, after: Option<i64>, max: u64) -> DomainResult<Self> {
        let first = match first {
            None => std::cmp::min(DEFAULT_PAGE_SIZE, max),
            Some(n) if n < 0 => {
                return Err(DomainError::invalid(
                    "first",
                    "`first` must not be negative",
                ));
            }
            Some(n) if n as u64 > max => {
                return Err(DomainError::invalid(
                    "first",
                    format!("`first` must be at most {max}"),
                ));
            }
            Some(n) => n as u64,
        };
        Ok(Self { first, after })
    }
}

/// One page of items, in order.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
}

impl<T> Page<T> {
    /// An empty last page.
    pub fn empty() -> Self {
        Self {
            items: Vec::new(),
            has_next: false,
        }
    }

    /// The same page of `f` of each item.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            has_next: self.has_next,
        }
    }

    pub(super) fn from_overfetch(mut items: Vec<T>, first: u64) -> Self {
        let has_next = items.len() as u64 > first;
        items.truncate(first as usize);
        Self { items, has_next }
    }
}

/// Sort direction by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// Reads one page of `select`, ordered by `id_col`.
pub async fn fetch<E, C>(
    db: &C,
    select: Select<E>,
    id_col: E::Column,
    args: PageArgs,
    dir: Direction,
) -> DomainResult<Page<E::Model>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    fetch_with(select, id_col, args, dir, |s| all(db, s)).await
}

/// The models `select` finds, decoded by sea-orm, its `LIMIT` written into the text
/// ([`super::prepared::statement`]).
pub async fn all<E, C>(db: &C, select: Select<E>) -> Result<Vec<E::Model>, sea_orm::DbErr>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let statement = super::prepared::statement(db.get_database_backend(), select);
    E::find().from_raw_sql(statement).all(db).await
}

/// [`fetch`], with `run` reading the rows of the finished select (so a caller can read
/// joined rows beside them in the same statement).
pub async fn fetch_with<E, R, F>(
    select: Select<E>,
    id_col: E::Column,
    args: PageArgs,
    dir: Direction,
    run: R,
) -> DomainResult<Page<E::Model>>
where
    E: EntityTrait,
    R: FnOnce(Select<E>) -> F,
    F: std::future::Future<Output = Result<Vec<E::Model>, sea_orm::DbErr>>,
{
    if args.first == 0 {
        return Ok(Page::empty());
    }
    let rows = run(keyset(select, Expr::col((E::default(), id_col)), args, dir)).await?;
    Ok(Page::from_overfetch(rows, args.first))
}

/// `select` after the row keyed `args.after`, in `dir` order of `key`, `first + 1` rows (one
/// more than the page, to know whether another follows).
fn keyset<E: EntityTrait>(
    select: Select<E>,
    key: Expr,
    args: PageArgs,
    dir: Direction,
) -> Select<E> {
    let (select, order) = match (dir, args.after) {
        (Direction::Asc, Some(after)) => (select.filter(key.clone().gt(after)), Order::Asc),
        (Direction::Desc, Some(after)) => (select.filter(key.clone().lt(after)), Order::Desc),
        (Direction::Asc, None) => (select, Order::Asc),
        (Direction::Desc, None) => (select, Order::Desc),
    };
    select.order_by(key, order).limit(args.first + 1)
}

/// Counts the rows of `select`.
pub async fn count<E, C>(db: &C, select: Select<E>) -> DomainResult<u64>
where
    E: EntityTrait,
    E::Model: Sync,
    C: ConnectionTrait,
{
    Ok(select.count(db).await?)
}

/// How [`fetch_per_parent`] reads each parent's page.
#[derive(Debug, Clone, Copy)]
pub struct PerParent {
    /// The SQL expression of the parent id in the children's select (a quoted column).
    pub parent_sql: &'static str,
    /// The quoted id column to order by (the keyset).
    pub order_sql: &'static str,
    pub args: PageArgs,
    pub dir: Direction,
}

/// Parents whose pages one statement reads, at most: each is an arm of a `UNION ALL`, and
/// SQLite allows 500 arms in a compound statement.
pub const PARENTS_PER_STATEMENT: usize = 250;

/// Reads a page for each parent: on PostgreSQL in one statement, a `LATERAL` subquery per
/// parent of an array (one statement text whatever the number of parents, so its plan is
/// prepared once); on SQLite, which has no `LATERAL`, in one statement per
/// [`PARENTS_PER_STATEMENT`] parents, a `UNION ALL` of one arm per parent.
///
/// `select(parent)` is the children of the parent the expression names (a bound value, or the
/// parent column of the array); `page` names the parent and order columns and the page. Each
/// parent's page has its own `ORDER BY .. LIMIT`, so the
/// database reads at most `first + 1` rows of each parent through the index, however many
/// children the parent has (a window over all of a group's members would read all 100,000 of
/// an "Everyone" group to return 20).
pub async fn fetch_per_parent<E, C>(
    db: &C,
    parents: &[i64],
    select: impl Fn(Expr) -> Select<E>,
    page: PerParent,
) -> DomainResult<HashMap<i64, Page<E::Model>>>
where
    E: EntityTrait,
    E::Model: super::rows::FromColumns,
    C: ConnectionTrait,
{
    use super::rows::FromColumns;
    if page.args.first == 0 {
        return Ok(HashMap::new());
    }
    // The rows are the entity's columns, then `dg_parent` and `dg_key` (`one_page`).
    let parent_at = super::rows::columns_of::<E>();
    let mut rows = Vec::new();
    let backend = db.get_database_backend();
    let statements = per_parent_statements(backend, parents, &select, page);
    for statement in statements {
        for row in db.query_all_raw(statement).await? {
            let parent: i64 = row.try_get_by_index(parent_at)?;
            let key: i64 = row.try_get_by_index(parent_at + 1)?;
            rows.push((parent, key, E::Model::from_columns(&row, 0)?));
        }
    }
    Ok(pages_of_rows(rows, page.args.first, page.dir))
}

/// Rows of many parents' pages, each `(parent, key, model)` with `first + 1` at most per
/// parent, as each parent's page in `dir` order of the key.
pub fn pages_of_rows<M>(
    rows: Vec<(i64, i64, M)>,
    first: u64,
    dir: Direction,
) -> HashMap<i64, Page<M>> {
    let mut grouped: HashMap<i64, Vec<(i64, M)>> = HashMap::new();
    for (parent, key, model) in rows {
        grouped.entry(parent).or_default().push((key, model));
    }
    grouped
        .into_iter()
        .map(|(parent, mut rows)| {
            // Neither a UNION ALL nor a LATERAL join promises the order of the rows it returns.
            match dir {
                Direction::Asc => rows.sort_unstable_by_key(|(key, _)| *key),
                Direction::Desc => rows.sort_unstable_by_key(|(key, _)| std::cmp::Reverse(*key)),
            }
            let items = rows.into_iter().map(|(_, model)| model).collect();
            (parent, Page::from_overfetch(items, first))
        })
        .collect()
}

/// The statements [`fetch_per_parent`] runs on `backend` (none for no parents).
pub fn per_parent_statements<E: EntityTrait>(
    backend: sea_orm::DbBackend,
    parents: &[i64],
    select: impl Fn(Expr) -> Select<E>,
    page: PerParent,
) -> Vec<sea_orm::Statement> {
    if backend == sea_orm::DbBackend::Postgres {
        lateral_statement(parents, &select, page)
            .into_iter()
            .collect()
    } else {
        parents
            .chunks(PARENTS_PER_STATEMENT)
            .filter_map(|chunk| {
                per_parent_statement(chunk, &select, page).map(|s| backend.build(&s))
            })
            .collect()
    }
}

/// SQLite's statement of [`fetch_per_parent`] for `parents` (`None` for none): one arm per parent,
/// each ordered and limited on its own, with the parent as `dg_parent` and the order key as
/// `dg_key`.
pub fn per_parent_statement<E: EntityTrait>(
    parents: &[i64],
    select: impl Fn(Expr) -> Select<E>,
    page: PerParent,
) -> Option<sea_orm::sea_query::SelectStatement> {
    let mut arms = parents.iter().enumerate().map(|(n, parent)| {
        let inner = one_page(select(Expr::val(*parent)), page);
        Query::select()
            .column(Asterisk)
            .from_subquery(inner, Alias::new(format!("dg_p{n}")))
            .to_owned()
    });
    let mut statement = arms.next()?;
    statement.unions(arms.map(|arm| (UnionType::All, arm)));
    Some(statement)
}

/// PostgreSQL's statement of [`fetch_per_parent`]: the parents as one array parameter, each
/// one's page a `LATERAL` subquery.
fn lateral_statement<E: EntityTrait>(
    parents: &[i64],
    select: impl Fn(Expr) -> Select<E>,
    page: PerParent,
) -> Option<sea_orm::Statement> {
    if parents.is_empty() {
        return None;
    }
    let parent = Expr::cust(r#""dg_parents"."parent""#);
    let inner = one_page(select(parent), page);
    let built = super::prepared::inline_limit(sea_orm::DbBackend::Postgres.build(&inner));
    let mut values = built.values.map(|v| v.0).unwrap_or_default();
    values.push(id_array(parents));
    let sql = format!(
        r#"SELECT "dg_page".* FROM unnest(CAST(${} AS bigint[])) AS "dg_parents"("parent") CROSS JOIN LATERAL ({}) AS "dg_page""#,
        values.len(),
        built.sql
    );
    Some(sea_orm::Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        sql,
        values,
    ))
}

/// `ids` as one PostgreSQL parameter, to bind where the statement says `CAST($n AS bigint[])`:
/// one statement text for any number of ids, so its plan is prepared once.
pub fn id_array(ids: &[i64]) -> sea_orm::Value {
    let list: Vec<String> = ids.iter().map(i64::to_string).collect();
    sea_orm::Value::from(format!("{{{}}}", list.join(",")))
}

/// `values` as one PostgreSQL `text[]` parameter (bind where the statement says
/// `CAST($n AS text[])`): each element quoted, `"` and `\\` escaped, `None` as `NULL`.
pub fn text_array<S: AsRef<str>>(values: impl IntoIterator<Item = Option<S>>) -> String {
    let mut out = String::from("{");
    for (i, value) in values.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match value {
            None => out.push_str("NULL"),
            Some(text) => {
                out.push('"');
                for c in text.as_ref().chars() {
                    if c == '"' || c == '\\' {
                        out.push('\\');
                    }
                    out.push(c);
                }
                out.push('"');
            }
        }
    }
    out.push('}');
    out
}

/// One parent's page: `select` after the cursor, in order, `first + 1` rows, with the parent
/// as `dg_parent` and the order key as `dg_key`.
fn one_page<E: EntityTrait>(
    select: Select<E>,
    page: PerParent,
) -> sea_orm::sea_query::SelectStatement {
    let with_keys = select
        .expr_as(Expr::cust(page.parent_sql), "dg_parent")
        .expr_as(Expr::cust(page.order_sql), "dg_key");
    keyset(with_keys, Expr::cust(page.order_sql), page.args, page.dir).into_query()
}
