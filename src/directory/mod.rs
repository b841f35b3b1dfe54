//! The rules about integrations, users, groups and devices. Resolvers call these functions;
//! nothing here knows about GraphQL or HTTP.

pub mod audit;
pub mod columns;
pub mod connect;
pub mod devices;
pub mod events;
pub mod groups;
pub mod ids;
pub mod integrations;
pub mod order;
pub mod page;
pub mod prepared;
pub mod rows;
pub mod scim;
pub mod sync_runs;
pub mod tokens;
pub mod users;

pub use ids::{DeviceId, GroupId, IntegrationId, SyncRunId, UserId};

/// Lower-cases and trims an address or name for case-insensitive matching.
pub fn match_key(value: &str) -> String {
    value.trim().to_lowercase()
}

/// The current time. One function, so a later clock can replace it in one place.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
