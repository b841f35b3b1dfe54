//! Reading only the text columns a reader shows.
//!
//! A GraphQL request names the fields it wants, and most of a user's 22 columns are text that
//! a page of `devices { user { email } }` never shows. [`Columns`] is the set of a model's
//! columns to read. [`project`] replaces each text column left out of a select with a
//! placeholder of the same shape (`''`, or `NULL` where the column is nullable), under the
//! column's own name. The row keeps its columns' positions and decodes as before
//! (`super::rows`), with nothing for the database to send or for dirgate to decode, allocate
//! and copy in the columns left out. Ids, keys, times and enums are always read.
//!
//! A model read this way holds placeholders where columns were left out: only its reader,
//! which chose the columns, may look at it (`crate::graphql::projection` chooses them from a
//! request's document). A list in an order by a text column always reads that column, since
//! its cursor is made from it ([`Projectable::sort_column`]).

use super::order::SortKey;
use crate::providers::fields::{GROUP_FIELDS, USER_FIELDS};
use entity::{device, directory_group, directory_user};
use sea_orm::{
    EntityTrait, IdenStatic, Iterable, QueryTrait, Select,
    sea_query::{Alias, Expr, IntoIden, SelectStatement},
};

/// A set of an entity's columns, by their position among the entity's columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Columns(u64);

impl Columns {
    /// Every column: the model as stored.
    pub const ALL: Columns = Columns(u64::MAX);
    /// Only the columns always read (ids, keys, times, enums).
    pub const NONE: Columns = Columns(0);

    /// These columns and `column` of `E`.
    pub fn with<E: EntityTrait>(self, column: E::Column) -> Self {
        match E::Column::iter().position(|c| c.as_str() == column.as_str()) {
            Some(at) if at < 64 => Columns(self.0 | 1 << at),
            // An entity of more than 64 columns cannot leave any out (`has` is then true).
            _ => Columns::ALL,
        }
    }

    /// With the column `key` sorts `E`'s lists by, if it has one.
    pub fn with_sort<E: Projectable>(self, key: SortKey) -> Self {
        match E::sort_column(key) {
            Some(column) => self.with::<E>(column),
            None => self,
        }
    }

    /// Whether the column at `at` (among the entity's columns) is read.
    pub fn has(self, at: usize) -> bool {
        at >= 64 || self.0 & (1 << at) != 0
    }
}

/// An entity whose text columns a reader may leave out.
pub trait Projectable: EntityTrait {
    /// What `column` reads as when it is left out; `None` for a column always read.
    fn placeholder(column: Self::Column) -> Option<&'static str>;

    /// The column a list sorted by `key` makes its cursors from.
    fn sort_column(key: SortKey) -> Option<Self::Column>;
}

/// `select` (an `E::find()`, with its columns first) reading only `keep` of `E`'s columns.
pub fn project<E: Projectable>(mut select: Select<E>, keep: Columns) -> Select<E> {
    project_at::<E>(QueryTrait::query(&mut select), 0, keep);
    select
}

/// Puts placeholders in `query`'s select list for the columns of `E` outside `keep`, where
/// `E`'s columns are the select expressions from `start` on.
pub fn project_at<E: Projectable>(query: &mut SelectStatement, start: usize, keep: Columns) {
    if keep == Columns::ALL {
        return;
    }
    let left_out = left_out::<E>(keep);
    let mut at = 0usize;
    query.exprs_mut_for_each(|select| {
        if let Some(Some((placeholder, name))) = at.checked_sub(start).and_then(|i| left_out.get(i))
        {
            select.expr = Expr::cust(*placeholder);
            if select.alias.is_none() {
                select.alias = Some(Alias::new(*name).into_iden());
            }
        }
        at += 1;
    });
}

/// The select list of `E`'s columns in `table` (an alias), reading only `keep`: for
/// statements written as SQL text.
pub fn select_list<E: Projectable>(table: &str, keep: Columns) -> String {
    E::Column::iter()
        .zip(left_out::<E>(keep))
        .map(|(column, left_out)| match left_out {
            Some((placeholder, name)) => format!(r#"{placeholder} AS "{name}""#),
            None => format!(r#""{table}"."{}""#, column.as_str()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// For each of `E`'s columns, its placeholder and name when it is left out.
fn left_out<E: Projectable>(keep: Columns) -> Vec<Option<(&'static str, &'static str)>> {
    E::Column::iter()
        .enumerate()
        .map(|(at, column)| {
            if keep.has(at) {
                return None;
            }
            E::placeholder(column).map(|p| (p, column.as_str()))
        })
        .collect()
}

/// A non-null text column's placeholder.
const EMPTY: Option<&str> = Some("''");
/// A nullable column's placeholder.
const NULL: Option<&str> = Some("NULL");

impl Projectable for directory_user::Entity {
    /// A synced field's column and its key column by the field (`providers::fields`); ids,
    /// the status and times are always read.
    fn placeholder(column: Self::Column) -> Option<&'static str> {
        use directory_user::Column as C;
        let field = USER_FIELDS.iter().find(|f| {
            f.column.as_str() == column.as_str()
                || f.key.is_some_and(|k| k.as_str() == column.as_str())
        });
        if let Some(field) = field {
            return if field.required { EMPTY } else { NULL };
        }
        match column {
            C::OriginName | C::ExternalId => EMPTY,
            C::ManagerExternalId | C::ScimResource | C::ScimExternalId => NULL,
            _ => None,
        }
    }

    fn sort_column(key: SortKey) -> Option<Self::Column> {
        match key {
            SortKey::UserDisplayName => Some(directory_user::Column::DisplayName),
            SortKey::UserEmail => Some(directory_user::Column::EmailKey),
            _ => None,
        }
    }
}

impl Projectable for device::Entity {
    fn placeholder(column: Self::Column) -> Option<&'static str> {
        use device::Column as C;
        match column {
            C::SerialNumber | C::Name => EMPTY,
            C::Model | C::OsVersion | C::EnrollmentIdentity | C::EnrollmentIdentityKey => NULL,
            C::Id
            | C::Platform
            | C::UserId
            | C::AssignmentSource
            | C::AssignedAt
            | C::CreatedAt
            | C::UpdatedAt => None,
        }
    }

    fn sort_column(key: SortKey) -> Option<Self::Column> {
        match key {
            SortKey::DeviceName => Some(device::Column::Name),
            SortKey::DeviceSerialNumber => Some(device::Column::SerialNumber),
            _ => None,
        }
    }
}

impl Projectable for directory_group::Entity {
    /// A synced field's column by the field (`providers::fields`); ids and times are always
    /// read.
    fn placeholder(column: Self::Column) -> Option<&'static str> {
        use directory_group::Column as C;
        if let Some(field) = GROUP_FIELDS
            .iter()
            .find(|f| f.column.as_str() == column.as_str())
        {
            return if field.required { EMPTY } else { NULL };
        }
        match column {
            C::ExternalId => EMPTY,
            C::ScimResource | C::ScimExternalId => NULL,
            _ => None,
        }
    }

    fn sort_column(key: SortKey) -> Option<Self::Column> {
        match key {
            SortKey::GroupDisplayName => Some(directory_group::Column::DisplayName),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, QuerySelect};

    #[test]
    fn a_left_out_column_reads_as_its_placeholder_in_its_place() {
        let keep = Columns::NONE.with::<directory_user::Entity>(directory_user::Column::Email);
        let select = project(directory_user::Entity::find(), keep).limit(1);
        let sql = DbBackend::Postgres.build(&select.into_query()).sql;
        assert!(sql.contains(r#""directory_users"."email","#), "{sql}");
        assert!(sql.contains(r#"'' AS "display_name""#), "{sql}");
        assert!(sql.contains(r#"NULL AS "department""#), "{sql}");
        assert!(sql.contains(r#""directory_users"."status""#), "{sql}");
        // Every column is still there, in its place.
        let full = DbBackend::Postgres
            .build(&directory_user::Entity::find().limit(1).into_query())
            .sql;
        assert_eq!(sql.matches(", ").count(), full.matches(", ").count());
    }

    #[test]
    fn all_columns_leave_the_select_as_it_was() {
        let full = directory_group::Entity::find();
        let projected = project(directory_group::Entity::find(), Columns::ALL);
        assert_eq!(
            DbBackend::Sqlite.build(&full.into_query()),
            DbBackend::Sqlite.build(&projected.into_query())
        );
    }

    #[test]
    fn a_sorted_list_reads_its_sort_column() {
        let keep = Columns::NONE.with_sort::<directory_user::Entity>(SortKey::UserEmail);
        let list = select_list::<directory_user::Entity>("u", keep);
        assert!(list.contains(r#""u"."email_key""#), "{list}");
        assert!(list.contains(r#"NULL AS "email""#), "{list}");
        assert!(list.starts_with(r#""u"."id", "u"."integration_id", '' AS "origin_name""#));
    }
}
