//! dirgate's integration tests, in one binary so they link once. Database-facing tests run on
//! SQLite and on PostgreSQL (`NAME::sqlite`, `NAME::postgres`).

mod support;

mod abuse;
mod architecture;
mod attributes;
mod audit;
mod auth;
mod cli;
mod concurrency;
mod connect;
mod constraints;
mod contract;
mod delta;
mod devices;
mod edge;
mod events;
mod graphql_http;
mod hr_attributes;
mod http;
mod lifecycle;
mod loaders;
mod metrics;
mod nested_lists;
mod nesting;
mod nodes;
mod parallel_reads;
mod processes;
mod projection;
mod provider_data;
mod providers;
mod queries;
mod run_state;
mod scim;
mod scim_lists;
mod scope;
mod scope_delta;
mod scope_google;
mod sorting;
mod sync;
mod webhooks;
