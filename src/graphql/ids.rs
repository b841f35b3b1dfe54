//! Opaque global ids (`base64url("Type:id")`) and cursors (`base64url("c:id")`).

use crate::error::{DomainError, DomainResult};
use async_graphql::{ID, connection::CursorType};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

/// The GraphQL type names that have global ids.
pub mod kinds {
    pub const INTEGRATION: &str = "Integration";
    pub const USER: &str = "User";
    pub const GROUP: &str = "Group";
    pub const DEVICE: &str = "Device";
    pub const SYNC_RUN: &str = "SyncRun";
}

/// The global id of the object of type `kind` with database id `id`.
pub fn encode(kind: &str, id: i64) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{kind}:{id}")))
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

/// A position in a list ordered by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdCursor(pub i64);

impl CursorType for IdCursor {
    type Error = DomainError;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let invalid = || DomainError::invalid("after", "`after` is not a valid cursor");
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let id = text
            .strip_prefix("c:")
            .and_then(|raw| raw.parse::<i64>().ok())
            .ok_or_else(invalid)?;
        Ok(Self(id))
    }

    fn encode_cursor(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("c:{}", self.0))
    }
}

/// Decodes an optional `after` argument.
pub fn decode_after(after: Option<&str>) -> DomainResult<Option<i64>> {
    after
        .map(|s| IdCursor::decode_cursor(s).map(|c| c.0))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let c = IdCursor(7).encode_cursor();
        assert_eq!(IdCursor::decode_cursor(&c).unwrap(), IdCursor(7));
        assert!(IdCursor::decode_cursor("nope").is_err());
    }
}
