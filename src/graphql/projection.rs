//! The columns a request reads, from the fields its document names (`store::columns`).
//!
//! Each field of `User`, `Device` and `Group` that shows a text column names it below. A
//! document that names a field anywhere (in any operation, fragment or inline fragment, on any
//! type) reads its column for every model of the request; one that never names it reads a
//! placeholder there, which no resolver of the request then looks at. Reading more than a
//! request shows is always right, so a name shared by two types (`displayName`, `email`)
//! reads both columns. The test `projection::*` runs every text field of these types alone
//! and holds it to the same field read with every column.

use crate::{
    providers::fields::{GROUP_FIELDS, USER_FIELDS},
    store::columns::{Columns, Projectable},
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use entity::{device, directory_group, directory_user};
use std::collections::HashSet;

/// The columns of each projected model that one request reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Projection {
    pub users: Columns,
    pub devices: Columns,
    pub groups: Columns,
}

/// `User`'s fields that show a text column and are not synced fields (those are read from
/// `providers::fields::USER_FIELDS`), and the column.
const USER_OWN_FIELDS: &[(&str, directory_user::Column)] = &[
    ("externalId", directory_user::Column::ExternalId),
    ("origin", directory_user::Column::OriginName),
    // `manager` reads the user's reference to its manager.
    ("manager", directory_user::Column::ManagerExternalId),
];

/// `Device`'s fields that show a text column, and the column.
const DEVICE_FIELDS: &[(&str, device::Column)] = &[
    ("serialNumber", device::Column::SerialNumber),
    ("name", device::Column::Name),
    ("model", device::Column::Model),
    ("osVersion", device::Column::OsVersion),
    ("enrollmentIdentity", device::Column::EnrollmentIdentity),
];

/// `Group`'s fields that show a text column and are not synced fields (those are read from
/// `providers::fields::GROUP_FIELDS`), and the column.
const GROUP_OWN_FIELDS: &[(&str, directory_group::Column)] =
    &[("externalId", directory_group::Column::ExternalId)];

impl Projection {
    /// Every column of every model (a request whose document was not read here).
    pub const ALL: Projection = Projection {
        users: Columns::ALL,
        devices: Columns::ALL,
        groups: Columns::ALL,
    };

    /// The columns `document`'s fields show. The document has passed `limits::check_document`,
    /// which bounds its size and nesting; each selection set is read once.
    pub fn of_document(document: &ExecutableDocument) -> Self {
        let mut names = HashSet::new();
        for (_, operation) in document.operations.iter() {
            field_names(&operation.node.selection_set.node, &mut names);
        }
        for fragment in document.fragments.values() {
            field_names(&fragment.node.selection_set.node, &mut names);
        }
        Projection {
            users: columns::<directory_user::Entity>(
                USER_OWN_FIELDS
                    .iter()
                    .copied()
                    .chain(USER_FIELDS.iter().map(|f| (f.name, f.column))),
                &names,
            ),
            devices: columns::<device::Entity>(DEVICE_FIELDS.iter().copied(), &names),
            groups: columns::<directory_group::Entity>(
                GROUP_OWN_FIELDS
                    .iter()
                    .copied()
                    .chain(GROUP_FIELDS.iter().map(|f| (f.name, f.column))),
                &names,
            ),
        }
    }
}

/// Adds the name of every field in `set` and below it (not through fragment spreads: each
/// fragment is read on its own).
fn field_names<'a>(set: &'a SelectionSet, names: &mut HashSet<&'a str>) {
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                names.insert(field.node.name.node.as_str());
                field_names(&field.node.selection_set.node, names);
            }
            Selection::InlineFragment(fragment) => {
                field_names(&fragment.node.selection_set.node, names);
            }
            Selection::FragmentSpread(_) => {}
        }
    }
}

/// The columns of `E` whose fields `names` holds.
fn columns<'f, E: Projectable>(
    fields: impl Iterator<Item = (&'f str, E::Column)>,
    names: &HashSet<&str>,
) -> Columns {
    fields
        .filter(|(field, _)| names.contains(field))
        .fold(Columns::NONE, |keep, (_, column)| keep.with::<E>(column))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(query: &str) -> Projection {
        Projection::of_document(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn fields_in_fragments_and_inline_fragments_are_read() {
        let p = of(
            r#"query { devices { nodes { ...D user { ... on User { department } } } } }
               fragment D on Device { serialNumber }"#,
        );
        assert_eq!(
            p.devices,
            Columns::NONE.with::<device::Entity>(device::Column::SerialNumber)
        );
        assert_eq!(
            p.users,
            Columns::NONE.with::<directory_user::Entity>(directory_user::Column::Department)
        );
        assert_eq!(p.groups, Columns::NONE);
    }

    #[test]
    fn a_name_two_types_share_reads_both_columns_and_aliases_do_not_count() {
        let p = of("{ users { nodes { email: id } } groups { nodes { displayName } } }");
        assert_eq!(
            p.users,
            Columns::NONE.with::<directory_user::Entity>(directory_user::Column::DisplayName)
        );
        assert_eq!(
            p.groups,
            Columns::NONE.with::<directory_group::Entity>(directory_group::Column::DisplayName)
        );
    }
}
