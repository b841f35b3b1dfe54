//! What a resolver reads from the request: the caller, the database, the loaders.

use super::loaders::Loaders;
use crate::{
    auth::{Admin, Caller},
    config::Config,
    error::{DomainError, DomainResult},
};
use async_graphql::Context;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

/// The outcome of authenticating a request, put into its data by the HTTP layer.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// A valid token.
    Caller(Caller),
    /// No `Authorization` header.
    Missing,
    /// A header whose token was refused, and why.
    Refused(DomainError),
}

impl Authentication {
    /// The caller, or why there is none (`UNAUTHENTICATED`): the one answer every edge gives.
    pub fn caller(&self) -> DomainResult<&Caller> {
        match self {
            Authentication::Caller(caller) => Ok(caller),
            Authentication::Refused(err) => Err(err.clone()),
            Authentication::Missing => Err(DomainError::Unauthenticated(
                "send an API token as `Authorization: Bearer <token>`",
            )),
        }
    }
}

/// Accessors for the request data every resolver needs.
pub trait ContextExt {
    /// The authenticated caller, or `UNAUTHENTICATED`.
    fn caller(&self) -> DomainResult<&Caller>;
    /// An admin caller, or `UNAUTHENTICATED`/`FORBIDDEN`.
    fn admin(&self) -> DomainResult<Admin>;
    fn db(&self) -> &DatabaseConnection;
    fn config(&self) -> &Config;
    fn loaders(&self) -> &Arc<Loaders>;
    fn services(&self) -> &Arc<crate::services::Services>;
}

impl ContextExt for Context<'_> {
    fn caller(&self) -> DomainResult<&Caller> {
        self.data_opt::<Authentication>()
            .unwrap_or(&Authentication::Missing)
            .caller()
    }

    fn admin(&self) -> DomainResult<Admin> {
        self.caller()?.admin()
    }

    fn db(&self) -> &DatabaseConnection {
        self.data_unchecked::<DatabaseConnection>()
    }

    fn config(&self) -> &Config {
        self.data_unchecked::<Arc<Config>>()
    }

    fn loaders(&self) -> &Arc<Loaders> {
        self.data_unchecked::<Arc<Loaders>>()
    }

    fn services(&self) -> &Arc<crate::services::Services> {
        self.data_unchecked::<Arc<crate::services::Services>>()
    }
}
