//! The synced fields Graph carries as plain text properties (`UserField::entra` in
//! `providers::fields`), read from a `user` object by name: a full page's user has each one
//! or not; a delta page's user has the ones that changed, `null` for a cleared one.

use crate::providers::{ExternalUser, fields::USER_FIELDS};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use std::sync::LazyLock;

/// The user properties read (`$select`): those the client reads itself, and every synced
/// field's Graph property.
pub fn user_select() -> &'static str {
    static SELECT: LazyLock<String> = LazyLock::new(|| {
        let mut select = String::from(
            "id,userPrincipalName,mail,displayName,accountEnabled,otherMails,proxyAddresses",
        );
        for property in USER_FIELDS.iter().filter_map(|f| f.entra) {
            select.push(',');
            select.push_str(property);
        }
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
            (USER_FIELDS[at].given_mut)(user).set(value.as_deref());
        }
    }
}

impl<'de> Deserialize<'de> for Texts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Properties;
        impl<'de> Visitor<'de> for Properties {
            type Value = Texts;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Graph user's properties")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Texts, A::Error> {
                let mut texts = Vec::new();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match USER_FIELDS.iter().position(|f| f.entra == Some(&*key)) {
                        Some(at) => {
                            let value = map.next_value::<serde_json::Value>()?;
                            match value {
                                serde_json::Value::String(text) => texts.push((at, Some(text))),
                                serde_json::Value::Null => texts.push((at, None)),
                                _ => {}
                            }
                        }
                        None => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Texts(texts))
            }
        }
        deserializer.deserialize_map(Properties)
    }
}
