//! The hot read models decoded by column position.
//!
//! sea-orm's derived `FromQueryResult` finds each column by name, formats `{prefix}{column}`
//! for every column of a joined model and formats an error message for every NULL before
//! turning it into `None`: decoding a page of devices with their users spent a quarter of a
//! nested request's CPU there (perf, `read_bench`). These read the columns in the order
//! sea-orm selects them (`Column::iter()`, the entity's field order), from a given position.
//! The integration tests `loaders::*_decoded_by_position_equal_sea_orms_own_decoding` hold them
//! to sea-orm's own decoding on both databases.

use entity::{device, directory_group, directory_user, sync_run};
use sea_orm::{DbErr, QueryResult, TryGetable};

/// Reads consecutive columns of one row.
struct ColumnReader<'a> {
    row: &'a QueryResult,
    at: usize,
}

impl ColumnReader<'_> {
    fn next<T: TryGetable>(&mut self) -> Result<T, DbErr> {
        let value = self.row.try_get_by_index(self.at);
        self.at += 1;
        value
    }
}

/// The number of columns of `E`, as sea-orm selects them.
pub fn columns_of<E: sea_orm::EntityTrait>() -> usize {
    use sea_orm::Iterable;
    E::Column::iter().count()
}

/// A model read from consecutive columns of a row, in the order sea-orm selects its entity's
/// columns.
pub trait FromColumns: Sized {
    /// The model whose first column is at `start`.
    fn from_columns(row: &QueryResult, start: usize) -> Result<Self, DbErr>;
}

impl FromColumns for directory_user::Model {
    fn from_columns(row: &QueryResult, start: usize) -> Result<Self, DbErr> {
        user_at(row, start)?.ok_or_else(|| DbErr::Custom("a user row without an id".into()))
    }
}

impl FromColumns for device::Model {
    fn from_columns(row: &QueryResult, start: usize) -> Result<Self, DbErr> {
        device_at(row, start)
    }
}

impl FromColumns for directory_group::Model {
    fn from_columns(row: &QueryResult, start: usize) -> Result<Self, DbErr> {
        let mut c = ColumnReader { row, at: start };
        Ok(directory_group::Model {
            id: c.next()?,
            integration_id: c.next()?,
            external_id: c.next()?,
            display_name: c.next()?,
            email: c.next()?,
            description: c.next()?,
            created_at: c.next()?,
            updated_at: c.next()?,
            last_seen_run_id: c.next()?,
            scim_resource: c.next()?,
            scim_external_id: c.next()?,
        })
    }
}

/// A cold model (an integration's runs, a page at a time) keeps sea-orm's decoding by name,
/// which finds its columns wherever they are.
impl FromColumns for sync_run::Model {
    fn from_columns(row: &QueryResult, _start: usize) -> Result<Self, DbErr> {
        sea_orm::FromQueryResult::from_query_result(row, "")
    }
}

/// A user whose columns start at `start`; `None` when its id is NULL (the null side of a left
/// join).
pub fn user_at(row: &QueryResult, start: usize) -> Result<Option<directory_user::Model>, DbErr> {
    if row.try_get_by_index::<Option<i64>>(start)?.is_none() {
        return Ok(None);
    }
    let mut c = ColumnReader { row, at: start };
    Ok(Some(directory_user::Model {
        id: c.next()?,
        integration_id: c.next()?,
        origin_name: c.next()?,
        external_id: c.next()?,
        user_name: c.next()?,
        user_name_key: c.next()?,
        email: c.next()?,
        email_key: c.next()?,
        display_name: c.next()?,
        given_name: c.next()?,
        family_name: c.next()?,
        job_title: c.next()?,
        department: c.next()?,
        employee_id: c.next()?,
        manager_external_id: c.next()?,
        status: c.next()?,
        created_at: c.next()?,
        updated_at: c.next()?,
        archived_at: c.next()?,
        last_seen_run_id: c.next()?,
        scim_resource: c.next()?,
        scim_external_id: c.next()?,
        employee_type: c.next()?,
        office_location: c.next()?,
        company_name: c.next()?,
        division: c.next()?,
        cost_center: c.next()?,
        hire_date: c.next()?,
        mobile_phone: c.next()?,
        country: c.next()?,
        preferred_language: c.next()?,
    }))
}

/// A device whose columns start at `start`.
pub fn device_at(row: &QueryResult, start: usize) -> Result<device::Model, DbErr> {
    let mut c = ColumnReader { row, at: start };
    Ok(device::Model {
        id: c.next()?,
        serial_number: c.next()?,
        name: c.next()?,
        platform: c.next()?,
        model: c.next()?,
        os_version: c.next()?,
        enrollment_identity: c.next()?,
        enrollment_identity_key: c.next()?,
        user_id: c.next()?,
        assignment_source: c.next()?,
        assigned_at: c.next()?,
        created_at: c.next()?,
        updated_at: c.next()?,
    })
}

/// The models `select` finds (an entity's own columns, as `Entity::find()` selects them),
/// decoded by position; a page's `LIMIT` is written into the text (`prepared::statement`).
pub async fn models<E, C>(db: &C, select: sea_orm::Select<E>) -> Result<Vec<E::Model>, DbErr>
where
    E: sea_orm::EntityTrait,
    E::Model: FromColumns,
    C: sea_orm::ConnectionTrait,
{
    let statement = super::prepared::statement(db.get_database_backend(), select);
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(|row| E::Model::from_columns(row, 0))
        .collect()
}
