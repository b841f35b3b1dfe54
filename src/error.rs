//! The domain's one error type. Every failure a caller can see is one of these; the GraphQL
//! layer maps each to an `extensions.code` in exactly one place (`graphql::error`).

use std::sync::Arc;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DomainError {
    /// No valid API token came with the request.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The token is valid but its role may not do this.
    #[error("this operation needs an ADMIN token")]
    Forbidden,
    /// The object does not exist (or the id names another type).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// An argument is malformed or breaks a rule; nothing was changed.
    #[error("{message}")]
    InvalidInput {
        field: &'static str,
        message: String,
    },
    /// Another integration already has this name (R3).
    #[error("an integration named \"{0}\" already exists")]
    NameTaken(String),
    /// Another object already holds this unique value (a device serial number).
    #[error("{what} already exists")]
    AlreadyExists { field: &'static str, what: String },
    /// The typed name does not match the integration's name (R9).
    #[error("the confirmation does not match the integration's name")]
    ConfirmationMismatch,
    /// SCIM integrations receive data by push and cannot be synced on demand (R6).
    #[error("SCIM integrations receive their data by push; there is nothing to sync")]
    PushOnlyIntegration,
    /// The provider refused the grant; the integration needs re-authentication (R16).
    #[error("the integration needs to be re-authenticated")]
    NeedsReauth,
    /// Too many requests; try again later.
    #[error("too many requests, retry later")]
    RateLimited,
    /// A request is over one of the edge's bounds (document size, nesting, fields, ...).
    #[error("the request exceeds the {limit} limit of {max}")]
    LimitExceeded { limit: &'static str, max: usize },
    /// The request ran past its wall-clock budget and was dropped.
    #[error("the request took longer than {seconds} s and was stopped")]
    Timeout { seconds: u64 },
    /// The database's storage refuses writes (a full disk, a read-only database): nothing
    /// was changed; try again later.
    #[error("{0}; nothing was changed, retry later")]
    Unavailable(&'static str),
    /// Anything else. The cause is logged, never shown.
    #[error("internal error")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync>),
}

impl DomainError {
    /// The stable code of this error, as sent in `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::NotFound { .. } => "NOT_FOUND",
            Self::InvalidInput { .. } => "INVALID_INPUT",
            Self::NameTaken(_) => "NAME_TAKEN",
            Self::AlreadyExists { .. } => "ALREADY_EXISTS",
            Self::ConfirmationMismatch => "CONFIRMATION_MISMATCH",
            Self::PushOnlyIntegration => "PUSH_ONLY_INTEGRATION",
            Self::NeedsReauth => "NEEDS_REAUTH",
            Self::RateLimited => "RATE_LIMITED",
            Self::LimitExceeded { .. } => "LIMIT_EXCEEDED",
            Self::Timeout { .. } => "TIMEOUT",
            Self::Unavailable(_) => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The input field at fault, when there is one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidInput { field, .. } | Self::AlreadyExists { field, .. } => Some(field),
            _ => None,
        }
    }

    /// Shorthand for [`DomainError::InvalidInput`].
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            field,
            message: message.into(),
        }
    }

    /// The database's error behind this one, if it is one.
    pub fn db_error(&self) -> Option<&sea_orm::DbErr> {
        match self {
            Self::Internal(cause) => cause.downcast_ref::<sea_orm::DbErr>(),
            _ => None,
        }
    }

    /// Wraps any unexpected failure.
    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Arc::new(err))
    }
}

impl From<sea_orm::DbErr> for DomainError {
    fn from(err: sea_orm::DbErr) -> Self {
        match crate::storage::trouble(&err) {
            Some(cause) => {
                tracing::debug!(error = %err, "the database refuses writes");
                crate::storage::observed(cause);
                Self::Unavailable(cause)
            }
            None => Self::internal(err),
        }
    }
}

impl From<sea_orm::TransactionError<DomainError>> for DomainError {
    fn from(err: sea_orm::TransactionError<DomainError>) -> Self {
        match err {
            sea_orm::TransactionError::Connection(e) => e.into(),
            sea_orm::TransactionError::Transaction(e) => e,
        }
    }
}

impl From<Arc<sea_orm::DbErr>> for DomainError {
    fn from(err: Arc<sea_orm::DbErr>) -> Self {
        match crate::storage::trouble(&err) {
            Some(cause) => {
                crate::storage::observed(cause);
                Self::Unavailable(cause)
            }
            None => Self::Internal(err),
        }
    }
}

/// A background worker's failures, logged once per change of cause, and its recovery once: a
/// worker that fails every few seconds for the same reason (a full disk) says so once.
#[derive(Debug, Default)]
pub struct FailureLog {
    last: Option<String>,
}

impl FailureLog {
    /// `what` failed with `err`: logged when the cause differs from the last one.
    pub fn failed(&mut self, what: &'static str, err: &DomainError) {
        let text = match err {
            DomainError::Internal(cause) => cause.to_string(),
            other => other.to_string(),
        };
        if self.last.as_deref() != Some(text.as_str()) {
            tracing::warn!(error = %text, "{what}");
            self.last = Some(text);
        }
    }

    /// `what` worked: logged once after failures.
    pub fn succeeded(&mut self, what: &'static str) {
        if self.last.take().is_some() {
            tracing::info!("{what}: working again");
        }
    }
}

/// The result type of the domain.
pub type DomainResult<T> = Result<T, DomainError>;
