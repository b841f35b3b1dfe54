//! The database's side of dirgate: the statements it runs and the toolkit they are built
//! with. `page` (keyset pages, and a page per parent for nested lists), `order` (the
//! `orderBy` orders as SQL sort keys, the same on both databases), `columns` (reading only the
//! text columns a request shows), `rows` (hot models decoded by column position), `prepared`
//! (a page's size in its statement's text), `batch` (multi-row statements sized by the bind
//! limit, and writing a batch so one refused record costs only itself). The table families:
//! `users` (`directory_users`, `user_aliases`), `groups` (`directory_groups`), `memberships`
//! (`group_memberships`), `devices` (automatic assignment's reads and writes), `webhooks` (the delivery worker's
//! leases and a batch's end), `runs` (sync runs' leases), `events` (the
//! change-event outbox).
//!
//! Every statement dirgate runs lives here, one module per table family: code above the
//! store passes a connection or transaction along as [`Db`] and calls typed functions; the
//! architecture test fails on a statement, an entity query or a query-building trait
//! anywhere else in `src/`.

pub mod audit;
pub mod authorizations;
pub mod batch;
pub mod columns;
pub mod devices;
pub mod events;
pub mod groups;
pub mod integrations;
pub mod memberships;
pub mod nesting;
pub mod notices;
pub mod order;
pub mod page;
pub mod prepared;
pub mod related;
pub mod reports;
pub mod rows;
pub mod runs;
pub mod scim;
pub mod tokens;
pub mod users;
pub mod webhooks;

/// A connection or a transaction: what the store's functions run on. Code above the store
/// holds one and passes it along; it never runs a statement on it itself.
pub trait Db: sea_orm::ConnectionTrait {}

impl<T: sea_orm::ConnectionTrait> Db for T {}

/// Which database `db` is: the few rules that differ between them ask this.
pub fn backend(db: &impl Db) -> sea_orm::DatabaseBackend {
    db.get_database_backend()
}

/// Whether the database answers (readiness): `SELECT 1`.
pub async fn ping(db: &impl Db) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared("SELECT 1").await.map(drop)
}
