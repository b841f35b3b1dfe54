//! dirgate's schema migrations. One migration set runs on SQLite and PostgreSQL alike;
//! `dirgate migrate` and every start of `dirgate serve` apply what is pending.

pub use sea_orm_migration::prelude::*;

mod m20261128_000001_initial;
mod m20261128_000002_one_run_in_flight;
mod m20261128_000003_scim_resources;
mod m20261129_000004_list_order;
mod m20261129_000005_audit_lookups;
mod m20261129_000006_sort_orders;
mod m20261129_000007_directory_events;
mod m20261129_000008_webhooks;
mod m20261130_000009_run_throttling;
mod m20261207_000010_run_warnings;
mod m20261207_000011_employee_type;
mod m20261207_000012_group_nesting;
mod m20261207_000013_integration_scope;
mod m20261207_000014_awaiting_scope;
mod m20261208_000015_hr_attributes;

/// The ordered list of dirgate's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261128_000001_initial::Migration),
            Box::new(m20261128_000002_one_run_in_flight::Migration),
            Box::new(m20261128_000003_scim_resources::Migration),
            Box::new(m20261129_000004_list_order::Migration),
            Box::new(m20261129_000005_audit_lookups::Migration),
            Box::new(m20261129_000006_sort_orders::Migration),
            Box::new(m20261129_000007_directory_events::Migration),
            Box::new(m20261129_000008_webhooks::Migration),
            Box::new(m20261130_000009_run_throttling::Migration),
            Box::new(m20261207_000010_run_warnings::Migration),
            Box::new(m20261207_000011_employee_type::Migration),
            Box::new(m20261207_000012_group_nesting::Migration),
            Box::new(m20261207_000013_integration_scope::Migration),
            Box::new(m20261207_000014_awaiting_scope::Migration),
            Box::new(m20261208_000015_hr_attributes::Migration),
        ]
    }
}
