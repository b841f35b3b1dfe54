//! The orders of the top-level lists (`users`, `groups`, `devices`, `integrations`) and
//! keyset pages over them.
//!
//! Each order is a key and a direction; the id breaks ties in the same direction, so
//! `(key, id)` is a total order and a position in it (the last item's key and id) resumes a
//! list exactly, whatever rows share a key or arrive meanwhile. One statement per page, seeking
//! with a row-value comparison `(key, id) > (?, ?)` that an index on `(key, id)` serves (one
//! per order: migration `m20261129_000006_sort_orders`).
//!
//! Text keys fold ASCII letters only (`lower(x)` on SQLite, `lower(x COLLATE "C")` on
//! PostgreSQL) and compare by code point, so both databases give the same order. A missing
//! value (a user without an email, an integration never synced) sorts before every present
//! one: first ascending, last descending (`NULLS FIRST`/`NULLS LAST`, spelled out, since the
//! two databases' defaults differ).

use super::page::{Direction, Page, PageArgs, fetch_with};
use crate::error::DomainResult;
use chrono::{DateTime, Utc};
use entity::{device, directory_group, directory_user, integration};
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    sea_query::{Expr, NullOrdering, Order as SqlOrder},
};

/// What a list is sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// Creation (the id).
    Created,
    UserDisplayName,
    UserEmail,
    GroupDisplayName,
    DeviceName,
    DeviceSerialNumber,
    IntegrationName,
    IntegrationLastSynced,
}

/// A key and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub key: SortKey,
    pub dir: Direction,
}

impl Default for Order {
    fn default() -> Self {
        Self {
            key: SortKey::Created,
            dir: Direction::Asc,
        }
    }
}

/// The value of a row's sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyValue {
    Text(String),
    Time(DateTime<Utc>),
    /// No value (no email, never synced): before every present one.
    Missing,
}

/// ASCII letters folded, everything else as it is: what `lower()` gives on both databases.
fn fold(s: &str) -> String {
    s.to_ascii_lowercase()
}

impl SortKey {
    /// Whether the key's values are times (else text).
    pub fn is_time(self) -> bool {
        self == SortKey::IntegrationLastSynced
    }

    /// Whether a row may have no value for the key.
    pub fn is_nullable(self) -> bool {
        matches!(self, SortKey::UserEmail | SortKey::IntegrationLastSynced)
    }

    /// The key's SQL expression on `backend`, qualified by its table.
    fn sql(self, backend: DbBackend) -> &'static str {
        let pg = backend == DbBackend::Postgres;
        match self {
            SortKey::Created => "\"id\"",
            SortKey::UserDisplayName if pg => {
                "lower(\"directory_users\".\"display_name\" COLLATE \"C\")"
            }
            SortKey::UserDisplayName => "lower(\"directory_users\".\"display_name\")",
            SortKey::UserEmail => "\"directory_users\".\"email_key\"",
            SortKey::GroupDisplayName if pg => {
                "lower(\"directory_groups\".\"display_name\" COLLATE \"C\")"
            }
            SortKey::GroupDisplayName => "lower(\"directory_groups\".\"display_name\")",
            SortKey::DeviceName if pg => "lower(\"devices\".\"name\" COLLATE \"C\")",
            SortKey::DeviceName => "lower(\"devices\".\"name\")",
            SortKey::DeviceSerialNumber => "\"devices\".\"serial_number\"",
            SortKey::IntegrationName => "\"integrations\".\"name_key\"",
            SortKey::IntegrationLastSynced => "\"integrations\".\"last_synced_at\"",
        }
    }
}

/// The sort key of a user under `key`.
pub fn user_key(key: SortKey, m: &directory_user::Model) -> Option<KeyValue> {
    match key {
        SortKey::UserDisplayName => Some(KeyValue::Text(fold(&m.display_name))),
        SortKey::UserEmail => Some(
            m.email_key
                .clone()
                .map_or(KeyValue::Missing, KeyValue::Text),
        ),
        _ => None,
    }
}

/// The sort key of a group under `key`.
pub fn group_key(key: SortKey, m: &directory_group::Model) -> Option<KeyValue> {
    match key {
        SortKey::GroupDisplayName => Some(KeyValue::Text(fold(&m.display_name))),
        _ => None,
    }
}

/// The sort key of a device under `key`.
pub fn device_key(key: SortKey, m: &device::Model) -> Option<KeyValue> {
    match key {
        SortKey::DeviceName => Some(KeyValue::Text(fold(&m.name))),
        SortKey::DeviceSerialNumber => Some(KeyValue::Text(m.serial_number.clone())),
        _ => None,
    }
}

/// The sort key of an integration under `key`.
pub fn integration_key(key: SortKey, m: &integration::Model) -> Option<KeyValue> {
    match key {
        SortKey::IntegrationName => Some(KeyValue::Text(m.name_key.clone())),
        SortKey::IntegrationLastSynced => {
            Some(m.last_synced_at.map_or(KeyValue::Missing, KeyValue::Time))
        }
        _ => None,
    }
}

/// Reads one page of `select` in `order`, after the row at (`after_key`, `args.after`).
///
/// `after_key` is the key of the row `args.after` names (from the cursor); an order by
/// creation needs none. A keyed order without it starts from the beginning.
pub async fn fetch_sorted<E, C>(
    db: &C,
    select: Select<E>,
    id_col: E::Column,
    args: PageArgs,
    order: Order,
    after_key: Option<KeyValue>,
) -> DomainResult<Page<E::Model>>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    fetch_sorted_with(db, select, id_col, args, order, after_key, |s| {
        super::page::all(db, s)
    })
    .await
}

/// [`fetch_sorted`], with `run` reading the rows of each finished select (so a caller can
/// read joined rows beside them in the same statement).
pub async fn fetch_sorted_with<E, C, R, F>(
    db: &C,
    select: Select<E>,
    id_col: E::Column,
    args: PageArgs,
    order: Order,
    after_key: Option<KeyValue>,
    run: R,
) -> DomainResult<Page<E::Model>>
where
    E: EntityTrait,
    C: ConnectionTrait,
    R: Fn(Select<E>) -> F,
    F: std::future::Future<Output = Result<Vec<E::Model>, sea_orm::DbErr>>,
{
    if order.key == SortKey::Created {
        return fetch_with(select, id_col, args, order.dir, run).await;
    }
    if args.first == 0 {
        return Ok(Page::empty());
    }
    let backend = db.get_database_backend();
    let key = order.key.sql(backend);
    let table = E::default().table_name().to_owned();
    let id = format!("\"{table}\".\"id\"");
    let dir = match order.dir {
        Direction::Asc => SqlOrder::Asc,
        Direction::Desc => SqlOrder::Desc,
    };
    let nulls = match order.dir {
        Direction::Asc => NullOrdering::First,
        Direction::Desc => NullOrdering::Last,
    };
    let ordered = |select: Select<E>| {
        select
            .order_by_with_nulls(Expr::cust(key), dir.clone(), nulls)
            .order_by(id_col, dir.clone())
    };
    let (first_part, rest) = seek(backend, order, key, &id, args.after, after_key);
    let start = match first_part {
        Some(seek) => select.clone().filter(seek),
        None => select.clone(),
    };
    let mut rows = run(ordered(start).limit(args.first + 1)).await?;
    if let Some(rest) = rest {
        let wanted = args.first + 1 - rows.len() as u64;
        if wanted > 0 {
            rows.extend(run(ordered(select.filter(rest)).limit(wanted)).await?);
        }
    }
    Ok(Page::from_overfetch(rows, args.first))
}

/// Where a page in a keyed `order` starts after the row (`after_key`, `after`): the seek to
/// the page's start; and, when it may run on from the present values into the missing ones
/// (descending) or from the missing into the present (ascending), where the rest starts.
/// Each part is one seek an index serves: an `OR` of the two would make the database filter
/// the rows it scans instead. `key` and `id` are the sort key's and the id's SQL.
fn seek(
    backend: DbBackend,
    order: Order,
    key: &str,
    id: &str,
    after: Option<i64>,
    after_key: Option<KeyValue>,
) -> (Option<Expr>, Option<Expr>) {
    // sea-query numbers `$N` for PostgreSQL; SQLite's driver binds `?` by position (a `$N`
    // there would shift the statement's own `LIMIT ?`).
    let (p1, p2) = if backend == DbBackend::Postgres {
        ("$1", "$2")
    } else {
        ("?", "?")
    };
    let op = match order.dir {
        Direction::Asc => ">",
        Direction::Desc => "<",
    };
    match (after, after_key) {
        (Some(after), Some(KeyValue::Missing)) => (
            Some(Expr::cust_with_values(
                format!("({key} IS NULL AND {id} {op} {p1})"),
                [sea_orm::Value::from(after)],
            )),
            (order.dir == Direction::Asc).then(|| Expr::cust(format!("{key} IS NOT NULL"))),
        ),
        (Some(after), Some(value)) => {
            let value = match value {
                KeyValue::Text(text) => sea_orm::Value::from(text),
                KeyValue::Time(time) => sea_orm::Value::from(time),
                KeyValue::Missing => unreachable!("matched above"),
            };
            (
                Some(Expr::cust_with_values(
                    format!("({key}, {id}) {op} ({p1}, {p2})"),
                    [value, sea_orm::Value::from(after)],
                )),
                (order.key.is_nullable() && order.dir == Direction::Desc)
                    .then(|| Expr::cust(format!("{key} IS NULL"))),
            )
        }
        _ => (None, None),
    }
}
