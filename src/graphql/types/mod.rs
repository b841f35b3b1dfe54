//! The GraphQL object types. Each wraps a database model (never exposes it directly) and
//! loads its relations through the request's loader.

mod audit;
mod device;
mod enums;
mod event;
mod group;
mod integration;
pub mod nested;
pub mod node;
mod order;
pub mod scope;
mod sync_run;
mod user;
pub mod webhook;

pub use audit::{AuditAction, AuditEvent};
pub use device::{Device, DeviceAssignment};
pub use enums::*;
pub use event::DirectoryEvent;
pub use group::Group;
pub use integration::Integration;
pub use node::Node;
pub use order::*;
pub use scope::{IntegrationScope, ScopeKind};
pub use sync_run::SyncRun;
pub use user::{User, users_page};
pub use webhook::{WebhookDelivery, WebhookEndpoint};
