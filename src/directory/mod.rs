//! The rules about integrations, users, groups and devices. Resolvers call these functions;
//! nothing here knows about GraphQL or HTTP.

pub mod audit;
pub mod connect;
pub mod devices;
pub mod events;
pub mod groups;
pub mod integrations;
pub mod scim_tokens;
pub mod scope;
pub mod sync_runs;
pub mod tokens;
pub mod users;

pub use crate::ids::{self, DeviceId, GroupId, IntegrationId, SyncRunId, UserId};

pub use crate::text::match_key;

/// The current time. One function, so a later clock can replace it in one place.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}
