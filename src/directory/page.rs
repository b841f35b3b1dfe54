//! Keyset pagination by id, for single lists and for many parents at once.
//!
//! A page asks for `first + 1` rows to know whether another page follows. Nested pages (the
//! members of 200 groups) are read in one statement with `ROW_NUMBER() OVER (PARTITION BY ..)`,
//! so the number of statements a request runs does not grow with the number of parents.

use crate::error::{DomainError, DomainResult};
use sea_orm::{
    ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, Select,
    sea_query::{Alias, Asterisk, Expr, ExprTrait, Order, Query},
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

    pub(super) fn from_overfetch(mut items: Vec<T>, first: u64) -> Self {
        let has_next = items.len() as u64 > first;
        items.truncate(first as usize);
        Self { items, has_next }
    }
}

/// Sort direction by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    if args.first == 0 {
        return Ok(Page::empty());
    }
    let mut select = select;
    if let Some(after) = args.after {
        select = match dir {
            Direction::Asc => select.filter(Expr::col(id_col).gt(after)),
            Direction::Desc => select.filter(Expr::col(id_col).lt(after)),
        };
    }
    let select = match dir {
        Direction::Asc => select.order_by_asc(id_col),
        Direction::Desc => select.order_by_desc(id_col),
    };
    let rows = select.limit(args.first + 1).all(db).await?;
    Ok(Page::from_overfetch(rows, args.first))
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

/// Reads a page for each parent in one statement.
///
/// `select` must already be limited to the wanted parents; `parent_sql` is the SQL expression of
/// the parent id in it (a quoted column) and `order_sql` the quoted id column to order by.
pub async fn fetch_windowed<E, C>(
    db: &C,
    select: Select<E>,
    parent_sql: &'static str,
    order_sql: &'static str,
    args: PageArgs,
    dir: Direction,
) -> DomainResult<HashMap<i64, Page<E::Model>>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    if args.first == 0 {
        return Ok(HashMap::new());
    }
    let mut select = select;
    if let Some(after) = args.after {
        select = match dir {
            Direction::Asc => select.filter(Expr::cust(order_sql).gt(after)),
            Direction::Desc => select.filter(Expr::cust(order_sql).lt(after)),
        };
    }
    let dir_sql = match dir {
        Direction::Asc => "ASC",
        Direction::Desc => "DESC",
    };
    let inner = select
        .expr_as(Expr::cust(parent_sql), "dg_parent")
        .expr_as(
            Expr::cust(format!(
                "ROW_NUMBER() OVER (PARTITION BY {parent_sql} ORDER BY {order_sql} {dir_sql})"
            )),
            "dg_rn",
        )
        .into_query();
    let outer = Query::select()
        .column(Asterisk)
        .from_subquery(inner, Alias::new("dg_page"))
        .and_where(Expr::col(Alias::new("dg_rn")).lte((args.first + 1) as i64))
        .order_by(Alias::new("dg_parent"), Order::Asc)
        .order_by(Alias::new("dg_rn"), Order::Asc)
        .to_owned();
    let rows = db.query_all(&outer).await?;
    let mut grouped: HashMap<i64, Vec<E::Model>> = HashMap::new();
    for row in rows {
        let parent: i64 = row.try_get("", "dg_parent")?;
        let model = E::Model::from_query_result(&row, "")?;
        grouped.entry(parent).or_default().push(model);
    }
    Ok(grouped
        .into_iter()
        .map(|(parent, items)| (parent, Page::from_overfetch(items, args.first)))
        .collect())
}
