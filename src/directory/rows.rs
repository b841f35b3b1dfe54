//! The hot read models decoded by column position.
//!
//! sea-orm's derived `FromQueryResult` finds each column by name, formats `{prefix}{column}`
//! for every column of a joined model and formats an error message for every NULL before
//! turning it into `None`: decoding a page of devices with their users spent a quarter of a
//! nested request's CPU there (perf, `read_bench`). These read the columns in the order
//! sea-orm selects them (`Column::iter()`, the entity's field order), from a given position.
//! `tests::decoding_by_position_matches_sea_orm` holds them to sea-orm's own decoding.

use entity::{device, directory_user};
use sea_orm::{DbErr, QueryResult, TryGetable};

/// Reads consecutive columns of one row.
struct Columns<'a> {
    row: &'a QueryResult,
    at: usize,
}

impl Columns<'_> {
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

/// A user whose columns start at `start`; `None` when its id is NULL (the null side of a left
/// join).
pub fn user_at(row: &QueryResult, start: usize) -> Result<Option<directory_user::Model>, DbErr> {
    if row.try_get_by_index::<Option<i64>>(start)?.is_none() {
        return Ok(None);
    }
    let mut c = Columns { row, at: start };
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
    }))
}

/// A device whose columns start at `start`.
pub fn device_at(row: &QueryResult, start: usize) -> Result<device::Model, DbErr> {
    let mut c = Columns { row, at: start };
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

/// Runs `select` (an entity's own columns first, as `Entity::find()` selects them) and decodes
/// each row with `decode`.
async fn all<E, T, C>(
    db: &C,
    select: sea_orm::Select<E>,
    decode: impl Fn(&QueryResult) -> Result<T, DbErr>,
) -> Result<Vec<T>, DbErr>
where
    E: sea_orm::EntityTrait,
    C: sea_orm::ConnectionTrait,
{
    use sea_orm::QueryTrait;
    let statement = select.build(db.get_database_backend());
    db.query_all_raw(statement)
        .await?
        .iter()
        .map(decode)
        .collect()
}

/// The users `select` finds, decoded by position.
pub async fn users<C: sea_orm::ConnectionTrait>(
    db: &C,
    select: sea_orm::Select<directory_user::Entity>,
) -> Result<Vec<directory_user::Model>, DbErr> {
    all(db, select, |row| {
        user_at(row, 0)?.ok_or_else(|| DbErr::Custom("a user row without an id".into()))
    })
    .await
}

/// The devices `select` finds, decoded by position.
pub async fn devices<C: sea_orm::ConnectionTrait>(
    db: &C,
    select: sea_orm::Select<device::Entity>,
) -> Result<Vec<device::Model>, DbErr> {
    all(db, select, |row| device_at(row, 0)).await
}
