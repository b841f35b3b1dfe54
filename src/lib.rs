//! dirgate: the directory-integration service of an endpoint-management product.
//!
//! `ARCHITECTURE.md` at the top of the repository lists the modules and the path of a request.

// A panic in the server is a 500 or a dead task: outside tests, `unwrap` and `expect` are
// refused; the few invariants that hold by construction say so in an `#[allow]` with the
// reason beside it.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod directory;
pub mod error;
pub mod files;
pub mod graphql;
pub mod http;
pub mod ids;
pub mod memory;
pub mod metrics;
pub mod output;
pub mod providers;
pub mod ratelimit;
pub mod scim;
pub mod scim_filter;
pub mod services;
pub mod storage;
pub mod store;
pub mod sync;
pub mod text;
pub mod webhooks;

pub use app::{App, Core};
pub use config::Config;
pub use error::DomainError;
