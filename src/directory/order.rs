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
//! email sorts as the empty string; an integration never synced sorts after every synced one
//! in either direction.

use super::page::{Direction, Page, PageArgs, fetch};
use crate::error::DomainResult;
use chrono::{DateTime, Utc};
use entity::{device, directory_group, directory_user, integration};
use sea_orm::{
    ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
    sea_query::{Expr, Order as SqlOrder},
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
    /// A time that may be missing (never synced).
    Time(Option<DateTime<Utc>>),
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

    /// The key's SQL expression on `backend`, qualified by its table.
    fn sql(self, backend: DbBackend) -> &'static str {
        let pg = backend == DbBackend::Postgres;
        match self {
            SortKey::Created => "\"id\"",
            SortKey::UserDisplayName if pg => {
                "lower(\"directory_users\".\"display_name\" COLLATE \"C\")"
            }
            SortKey::UserDisplayName => "lower(\"directory_users\".\"display_name\")",
            SortKey::UserEmail => "COALESCE(\"directory_users\".\"email_key\", '')",
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
        SortKey::UserEmail => Some(KeyValue::Text(m.email_key.clone().unwrap_or_default())),
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
        SortKey::IntegrationLastSynced => Some(KeyValue::Time(m.last_synced_at)),
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
    if order.key == SortKey::Created {
        return fetch(db, select, id_col, args, order.dir).await;
    }
    if args.first == 0 {
        return Ok(Page::empty());
    }
    let backend = db.get_database_backend();
    let key = order.key.sql(backend);
    // sea-query numbers `$N` for PostgreSQL; SQLite's driver binds `?` by position (a `$N`
    // there would shift the statement's own `LIMIT ?`).
    let (p1, p2) = if backend == DbBackend::Postgres {
        ("$1", "$2")
    } else {
        ("?", "?")
    };
    let table = E::default().table_name().to_owned();
    let id = format!("\"{table}\".\"id\"");
    let (op, dir) = match order.dir {
        Direction::Asc => (">", SqlOrder::Asc),
        Direction::Desc => ("<", SqlOrder::Desc),
    };
    let mut select = select;
    if let (Some(after), Some(value)) = (args.after, after_key) {
        select = select.filter(match value {
            KeyValue::Text(text) => Expr::cust_with_values(
                format!("({key}, {id}) {op} ({p1}, {p2})"),
                [sea_orm::Value::from(text), sea_orm::Value::from(after)],
            ),
            // A missing time sorts after every present one, in both directions.
            KeyValue::Time(Some(time)) => Expr::cust_with_values(
                format!("({key} IS NULL OR ({key}, {id}) {op} ({p1}, {p2}))"),
                [sea_orm::Value::from(time), sea_orm::Value::from(after)],
            ),
            KeyValue::Time(None) => Expr::cust_with_values(
                format!("({key} IS NULL AND {id} {op} {p1})"),
                [sea_orm::Value::from(after)],
            ),
        });
    }
    if order.key.is_time() {
        select = select.order_by(Expr::cust(format!("({key} IS NULL)")), SqlOrder::Asc);
    }
    let rows = select
        .order_by(Expr::cust(key), dir.clone())
        .order_by(id_col, dir)
        .limit(args.first + 1)
        .all(db)
        .await?;
    Ok(Page::from_overfetch(rows, args.first))
}
