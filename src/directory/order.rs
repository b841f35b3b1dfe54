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

use super::page::{Direction, Page, PageArgs, fetch};
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
    let nullable = order.key.is_nullable();
    let mut select = select;
    if let (Some(after), Some(value)) = (args.after, after_key) {
        let present = |value: sea_orm::Value| {
            let seek = format!("({key}, {id}) {op} ({p1}, {p2})");
            // Descending, the missing values come after every present one.
            let seek = if nullable && order.dir == Direction::Desc {
                format!("({seek} OR {key} IS NULL)")
            } else {
                seek
            };
            Expr::cust_with_values(seek, [value, sea_orm::Value::from(after)])
        };
        select = select.filter(match value {
            KeyValue::Text(text) => present(text.into()),
            KeyValue::Time(time) => present(time.into()),
            // Ascending, the present values come after every missing one.
            KeyValue::Missing => Expr::cust_with_values(
                match order.dir {
                    Direction::Asc => {
                        format!("(({key} IS NULL AND {id} {op} {p1}) OR {key} IS NOT NULL)")
                    }
                    Direction::Desc => format!("({key} IS NULL AND {id} {op} {p1})"),
                },
                [sea_orm::Value::from(after)],
            ),
        });
    }
    let nulls = match order.dir {
        Direction::Asc => NullOrdering::First,
        Direction::Desc => NullOrdering::Last,
    };
    let rows = select
        .order_by_with_nulls(Expr::cust(key), dir.clone(), nulls)
        .order_by(id_col, dir)
        .limit(args.first + 1)
        .all(db)
        .await?;
    Ok(Page::from_overfetch(rows, args.first))
}
