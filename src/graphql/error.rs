//! The one place where domain errors become GraphQL errors: `extensions.code` (and
//! `extensions.field` for input errors). Internal causes are logged, never sent.

use crate::error::DomainError;
use async_graphql::ErrorExtensions;

impl From<DomainError> for async_graphql::Error {
    fn from(err: DomainError) -> Self {
        if let DomainError::Internal(cause) = &err {
            tracing::error!(error = %cause, "internal error");
        }
        err.extend()
    }
}

impl ErrorExtensions for DomainError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, ext| {
            ext.set("code", self.code());
            if let Some(field) = self.field() {
                ext.set("field", field);
            }
        })
    }
}
