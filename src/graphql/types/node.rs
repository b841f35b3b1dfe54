//! `Node`: every object with a global id, resolvable by `node(id:)`.

use super::{Device, Group, Integration, SyncRun, User};
use async_graphql::{ID, Interface};

/// An object with an opaque global id.
#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID", desc = "The object's global id."))]
pub enum Node {
    Integration(Integration),
    User(User),
    Group(Group),
    Device(Device),
    SyncRun(SyncRun),
}
