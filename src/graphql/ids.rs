//! Opaque global ids (`base64url("Type:id")`) and cursors ([`Cursor`]).

use crate::{
    error::{DomainError, DomainResult},
    store::order::{KeyValue, Order, SortKey},
};
use async_graphql::{ID, connection::CursorType};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// The GraphQL type names that have global ids.
pub mod kinds {
    pub const INTEGRATION: &str = "Integration";
    pub const USER: &str = "User";
    pub const GROUP: &str = "Group";
    pub const DEVICE: &str = "Device";
    pub const SYNC_RUN: &str = "SyncRun";
    pub const AUDIT_EVENT: &str = "AuditEvent";
    pub const DIRECTORY_EVENT: &str = "DirectoryEvent";
    pub const WEBHOOK_ENDPOINT: &str = "WebhookEndpoint";
}

/// The global id of the object of type `kind` with database id `id`.
pub fn encode(kind: &str, id: i64) -> ID {
    ID(crate::directory::ids::global_id(kind, id))
}

/// Splits a global id into its type name and database id.
pub fn decode_any(id: &ID, field: &'static str) -> DomainResult<(String, i64)> {
    let malformed = || DomainError::invalid(field, format!("`{field}` is not a valid id"));
    let bytes = URL_SAFE_NO_PAD
        .decode(id.as_str())
        .map_err(|_| malformed())?;
    let text = String::from_utf8(bytes).map_err(|_| malformed())?;
    let (kind, raw) = text.split_once(':').ok_or_else(malformed)?;
    let raw: i64 = raw.parse().map_err(|_| malformed())?;
    if raw <= 0 {
        return Err(malformed());
    }
    Ok((kind.to_owned(), raw))
}

/// The database id in a global id that must name a `kind`.
pub fn decode(id: &ID, kind: &'static str, field: &'static str) -> DomainResult<i64> {
    let (found, raw) = decode_any(id, field)?;
    if found != kind {
        return Err(DomainError::invalid(
            field,
            format!("`{field}` must be the id of a {kind}"),
        ));
    }
    Ok(raw)
}

/// A position in a list: `base64url("c:<id>")` in a list by creation, and
/// `base64url("k:" + JSON [order, key, id])` in a list sorted by a key, where `order` names
/// the key and direction (a cursor only resumes the order it came from) and `key` is the
/// item's sort key (text, an RFC 3339 time, or null for a missing time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    Id(i64),
    Keyed {
        order: String,
        key: Option<String>,
        id: i64,
    },
}

/// The longest cursor decoded.
const MAX_CURSOR: usize = 2048;

impl CursorType for Cursor {
    type Error = DomainError;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let invalid = || DomainError::invalid("after", "`after` is not a valid cursor");
        if s.len() > MAX_CURSOR {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        if let Some(raw) = text.strip_prefix("c:") {
            return raw.parse::<i64>().map(Cursor::Id).map_err(|_| invalid());
        }
        let raw = text.strip_prefix("k:").ok_or_else(invalid)?;
        let (order, key, id): (String, Option<String>, i64) =
            serde_json::from_str(raw).map_err(|_| invalid())?;
        Ok(Cursor::Keyed { order, key, id })
    }

    fn encode_cursor(&self) -> String {
        match self {
            Cursor::Id(id) => URL_SAFE_NO_PAD.encode(format!("c:{id}")),
            Cursor::Keyed { order, key, id } => {
                let json = serde_json::to_string(&(order, key, id)).unwrap_or_default();
                URL_SAFE_NO_PAD.encode(format!("k:{json}"))
            }
        }
    }
}

impl Cursor {
    /// The cursor of the item `id` whose sort key under `order` is `key` (`None`: a list by
    /// creation).
    pub fn of(order: Order, key: Option<KeyValue>, id: i64) -> Self {
        match key {
            None => Cursor::Id(id),
            Some(key) => Cursor::Keyed {
                order: order_tag(order),
                key: match key {
                    KeyValue::Text(text) => Some(text),
                    KeyValue::Time(time) => Some(time.to_rfc3339()),
                    KeyValue::Missing => None,
                },
                id,
            },
        }
    }
}

fn order_tag(order: Order) -> String {
    format!("{:?}:{:?}", order.key, order.dir)
}

/// Decodes an optional `after` argument of a list by creation.
pub fn decode_after(after: Option<&str>) -> DomainResult<Option<i64>> {
    Ok(decode_sorted_after(after, Order::default())?.map(|(id, _)| id))
}

/// Decodes an optional `after` argument of a list in `order`: the id and, for a keyed
/// order, the key of the item to resume after. A cursor of another order is `INVALID_INPUT`.
pub fn decode_sorted_after(
    after: Option<&str>,
    order: Order,
) -> DomainResult<Option<(i64, Option<KeyValue>)>> {
    let Some(after) = after else {
        return Ok(None);
    };
    let other = || {
        DomainError::invalid(
            "after",
            "`after` is a cursor of a list in another order; start again without it",
        )
    };
    match Cursor::decode_cursor(after)? {
        Cursor::Id(id) if order.key == SortKey::Created => Ok(Some((id, None))),
        Cursor::Keyed {
            order: tag,
            key,
            id,
        } if order.key != SortKey::Created && tag == order_tag(order) => {
            let bad = || DomainError::invalid("after", "`after` is not a valid cursor");
            let value = match key {
                None if order.key.is_nullable() => KeyValue::Missing,
                None => return Err(bad()),
                Some(key) if order.key.is_time() => KeyValue::Time(
                    chrono::DateTime::parse_from_rfc3339(&key)
                        .map_err(|_| bad())?
                        .with_timezone(&chrono::Utc),
                ),
                Some(key) => KeyValue::Text(key),
            };
            Ok(Some((id, Some(value))))
        }
        _ => Err(other()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::page::Direction;

    #[test]
    fn global_id_round_trips_and_checks_type() {
        let id = encode(kinds::DEVICE, 42);
        assert_eq!(decode(&id, kinds::DEVICE, "id").unwrap(), 42);
        let err = decode(&id, kinds::USER, "userId").unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        assert_eq!(err.field(), Some("userId"));
    }

    #[test]
    fn global_id_refuses_garbage() {
        for bad in ["", "!!", "RGV2aWNl", &URL_SAFE_NO_PAD.encode("Device:x")] {
            assert_eq!(
                decode_any(&ID(bad.to_string()), "id").unwrap_err().code(),
                "INVALID_INPUT",
                "{bad}"
            );
        }
    }

    #[test]
    fn cursor_round_trips() {
        let c = Cursor::Id(7).encode_cursor();
        assert_eq!(Cursor::decode_cursor(&c).unwrap(), Cursor::Id(7));
        assert!(Cursor::decode_cursor("nope").is_err());
        let by_name = Order {
            key: SortKey::UserDisplayName,
            dir: Direction::Desc,
        };
        let c = Cursor::of(by_name, Some(KeyValue::Text("ada \"x\"".into())), 9).encode_cursor();
        assert_eq!(
            decode_sorted_after(Some(&c), by_name).unwrap(),
            Some((9, Some(KeyValue::Text("ada \"x\"".into()))))
        );
        let other = Order {
            dir: Direction::Asc,
            ..by_name
        };
        assert!(
            decode_sorted_after(Some(&c), other).is_err(),
            "another direction"
        );
        assert!(
            decode_sorted_after(Some(&c), Order::default()).is_err(),
            "by creation"
        );
        let id = Cursor::Id(3).encode_cursor();
        assert!(decode_sorted_after(Some(&id), by_name).is_err());
        let synced = Order {
            key: SortKey::IntegrationLastSynced,
            dir: Direction::Asc,
        };
        let never = Cursor::of(synced, Some(KeyValue::Missing), 4).encode_cursor();
        assert_eq!(
            decode_sorted_after(Some(&never), synced).unwrap(),
            Some((4, Some(KeyValue::Missing)))
        );
        let long = "a".repeat(MAX_CURSOR + 1);
        assert!(Cursor::decode_cursor(&long).is_err());
    }
}
