//! sea-orm models of dirgate's tables, and nothing else: no rules, no API types.
//! The tables themselves are created by the `migration` crate.

pub mod api_token;
pub mod audit_event;
pub mod device;
pub mod directory_event;
pub mod directory_group;
pub mod directory_user;
pub mod enums;
pub mod group_membership;
pub mod group_nesting;
pub mod integration;
pub mod oauth_authorization;
pub mod sync_run;
pub mod sync_run_warning;
pub mod user_alias;
pub mod webhook_attempt;
pub mod webhook_endpoint;
