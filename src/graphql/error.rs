//! The one place where errors become GraphQL errors: domain errors get `extensions.code` (and
//! `extensions.field` for input errors, `extensions.limit`/`max` for a bound), parse and
//! validation errors the codes the GraphQL ecosystem uses. Internal causes are logged, never
//! sent.

use crate::error::DomainError;
use async_graphql::{ErrorExtensions, ServerError};

/// The code of a document that does not parse.
pub const PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
/// The code of a document that parses but does not validate against the schema.
pub const VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
/// The code of an HTTP request that is not a GraphQL request (bad JSON, a batch, no query).
pub const BAD_REQUEST: &str = "BAD_REQUEST";

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
            if let DomainError::LimitExceeded { limit, max } = self {
                ext.set("limit", *limit);
                ext.set("max", *max as u64);
            }
        })
    }
}

fn with_code(mut err: ServerError, code: &str) -> ServerError {
    let has_code = err
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if !has_code {
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
    err
}

/// A parser error, coded `GRAPHQL_PARSE_FAILED`.
pub fn parse_failed(err: impl Into<ServerError>) -> ServerError {
    with_code(err.into(), PARSE_FAILED)
}

/// A validation error, coded `GRAPHQL_VALIDATION_FAILED` (async-graphql's complexity limit,
/// a validation rule of its own, is `LIMIT_EXCEEDED` like the other bounds).
pub fn validation_failed(err: ServerError) -> ServerError {
    if err.message.starts_with("Query is too complex") {
        let mut coded = request_error(
            DomainError::LimitExceeded {
                limit: "complexity",
                max: super::MAX_COMPLEXITY,
            }
            .extend(),
        );
        coded.message = err.message;
        coded.locations = err.locations;
        return coded;
    }
    with_code(err, VALIDATION_FAILED)
}

/// An argument or variable refused by the edge's text policy: `INVALID_INPUT` on `field`.
pub fn invalid_argument(field: &str, message: &str) -> ServerError {
    request_error(async_graphql::Error::new(message).extend_with(|_, ext| {
        ext.set("code", "INVALID_INPUT");
        ext.set("field", field);
    }))
}

/// `err` as a response error about the request as a whole: no `locations` (a default
/// position would claim line 0, column 0).
pub fn request_error(err: async_graphql::Error) -> ServerError {
    let mut err = err.into_server_error(Default::default());
    err.locations.clear();
    err
}

/// An error answered outside the schema (HTTP layer) with `code`.
pub fn coded(message: impl Into<String>, code: &str) -> ServerError {
    with_code(ServerError::new(message, None), code)
}

/// The code of an answer's first error (`ok` when there is none), as the metrics label it.
pub fn code_of(first: Option<&ServerError>) -> &'static str {
    let Some(first) = first else {
        return "ok";
    };
    let code = first
        .extensions
        .as_ref()
        .and_then(|ext| match ext.get("code") {
            Some(async_graphql::Value::String(code)) => Some(code.as_str()),
            _ => None,
        });
    // A label from a fixed set: a code outside it (none should exist) is counted as `other`.
    KNOWN_CODES
        .iter()
        .find(|known| Some(**known) == code)
        .copied()
        .unwrap_or("other")
}

/// Every code an answer can carry.
const KNOWN_CODES: [&str; 17] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "INVALID_INPUT",
    "ALREADY_EXISTS",
    "NAME_TAKEN",
    "CONFIRMATION_MISMATCH",
    "PUSH_ONLY_INTEGRATION",
    "NEEDS_REAUTH",
    "RATE_LIMITED",
    "LIMIT_EXCEEDED",
    "TIMEOUT",
    "UNAVAILABLE",
    PARSE_FAILED,
    VALIDATION_FAILED,
    BAD_REQUEST,
    "INTERNAL",
];
