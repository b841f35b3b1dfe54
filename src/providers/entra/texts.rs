//! The synced fields Graph carries as plain text properties (`UserField::entra` in
//! `providers::fields`), read from a `user` object by name: a full page's user has each one
//! or not; a delta page's user has the ones that changed, `null` for a cleared one.

use crate::providers::{ExternalUser, fields::USER_FIELDS};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use std::sync::LazyLock;

/// The user properties read (`$select`): those the client reads itself, and every synced
/// field's Graph property.
pub fn user_select() -> &'static str {
    static SELECT: LazyLock<String> = LazyLock::new(|| {
        let mut select = String::from(
            "id,userPrincipalName,mail,displayName,accountEnabled,otherMails,proxyAddresses",
        );
        let mut properties: Vec<&str> = Vec::new();
        for property in USER_FIELDS.iter().filter_map(|f| f.entra) {
            let top = property.split('/').next().unwrap_or(property);
            if !properties.contains(&top) {
                properties.push(top);
            }
        }
        for property in properties {
            select.push(',');
            select.push_str(property);
        }
        // The manager relationship: `manager@delta` in delta pages.
        select.push_str(",manager");
        select
    });
    &SELECT
}

/// Of a Graph `user`, the synced fields' properties present in it: `(index in USER_FIELDS,
/// value)`, `None` for `null`. A property whose value is not text counts as absent (a
/// directory's odd value costs the field, never the page).
#[derive(Debug, Clone, Default)]
pub struct Texts(Vec<(usize, Option<String>)>);

impl Texts {
    /// Every Graph-carried field of a user as dirgate holds it.
    pub fn of(user: &ExternalUser) -> Self {
        Self(
            USER_FIELDS
                .iter()
                .enumerate()
                .filter(|(_, f)| f.entra.is_some())
                .map(|(at, f)| (at, (f.given)(user).map(str::to_owned)))
                .collect(),
        )
    }

    /// These values over `base`'s: what a delta carries replaces, what it lacks stays.
    pub fn over(self, mut base: Texts) -> Texts {
        for (at, value) in self.0 {
            match base.0.iter_mut().find(|(b, _)| *b == at) {
                Some(slot) => slot.1 = value,
                None => base.0.push((at, value)),
            }
        }
        base
    }

    /// Writes the values onto `user`.
    pub fn apply(self, user: &mut ExternalUser) {
        for (at, value) in self.0 {
            (USER_FIELDS[at].given_mut)(user).put(value);
        }
    }
}

impl Texts {
    /// When `key` is a synced field's Graph property, reads its value from `map` (text, or
    /// `null`; another value counts as absent) and says so; else leaves the value unread.
    pub fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: &str,
        map: &mut A,
    ) -> Result<bool, A::Error> {
        if let Some(at) = USER_FIELDS.iter().position(|f| f.entra == Some(key)) {
            match map.next_value::<serde_json::Value>()? {
                serde_json::Value::String(text) => self.0.push((at, Some(text))),
                serde_json::Value::Null => self.0.push((at, None)),
                _ => {}
            }
            return Ok(true);
        }
        // A complex property (`employeeOrgData`) whose properties feed fields
        // (`employeeOrgData/costCenter`): Graph sends it whole, so a property it lacks (or a
        // `null` object) clears its field.
        let nested_in = |entra: &'static str| {
            entra
                .strip_prefix(key)
                .and_then(|rest| rest.strip_prefix('/'))
        };
        if !USER_FIELDS
            .iter()
            .any(|f| f.entra.and_then(nested_in).is_some())
        {
            return Ok(false);
        }
        let nested: Vec<(usize, &str)> = USER_FIELDS
            .iter()
            .enumerate()
            .filter_map(|(at, f)| Some((at, f.entra.and_then(nested_in)?)))
            .collect();
        match map.next_value::<serde_json::Value>()? {
            serde_json::Value::Object(object) => {
                for (at, property) in nested {
                    let text = object.get(property).and_then(|v| v.as_str());
                    self.0.push((at, text.map(str::to_owned)));
                }
            }
            serde_json::Value::Null => self.0.extend(nested.iter().map(|(at, _)| (*at, None))),
            _ => {}
        }
        Ok(true)
    }
}

/// A property name, borrowed from the payload when it has no escapes.
pub struct Key<'de>(pub std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Name;
        impl<'de> Visitor<'de> for Name {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a property name")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(Name)
    }
}
