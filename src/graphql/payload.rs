//! What every mutation answers: a nullable payload holding what it changed, and `userErrors`,
//! what the caller can correct in its input. One rule decides which errors go where:
//!
//! - refused for the input (`INVALID_INPUT`, `NOT_FOUND`, `NAME_TAKEN`, `ALREADY_EXISTS`,
//!   `CONFIRMATION_MISMATCH`, `PUSH_ONLY_INTEGRATION`, `NEEDS_REAUTH`): a `UserError` in the
//!   payload, with the path of the input field it is about; nothing was changed;
//! - refused for anything else (`UNAUTHENTICATED`, `FORBIDDEN`, `RATE_LIMITED`,
//!   `LIMIT_EXCEEDED`, `TIMEOUT`, `UNAVAILABLE`, `INTERNAL`, and a value the edge refuses
//!   before the mutation runs): a top-level error and a null payload.

use crate::error::{DomainError, DomainResult};
use async_graphql::{Enum, SimpleObject};

/// A part of a mutation's input the caller can correct: which field, what is wrong, and a
/// code to branch on. The mutation changed nothing.
#[derive(SimpleObject, Debug, Clone)]
pub struct UserError {
    /// The path of the input field at fault, from the mutation's argument (`["input",
    /// "name"]`); null when the error is about the input as a whole.
    pub field: Option<Vec<String>>,
    /// What is wrong, for a person.
    pub message: String,
    /// What is wrong, for a program.
    pub code: UserErrorCode,
}

/// Why a mutation refused its input.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum UserErrorCode {
    /// A value breaks a rule of its field (length, characters, range, format); `field`
    /// names it.
    InvalidInput,
    /// An id names nothing (or something of another type).
    NotFound,
    /// Another integration has this name (names are unique, case-insensitively).
    NameTaken,
    /// Something with this unique value exists already (a device's serial number).
    AlreadyExists,
    /// The typed confirmation is not the integration's name, exactly.
    ConfirmationMismatch,
    /// A SCIM integration is pushed to; it cannot be synced, signed in to or re-read.
    PushOnlyIntegration,
    /// The integration's grant was refused by its provider: re-authenticate it first.
    NeedsReauth,
}

impl UserError {
    /// `err` as a user error, when it is one the caller can correct.
    fn of(err: &DomainError) -> Option<Self> {
        let code = match err {
            DomainError::InvalidInput { .. } => UserErrorCode::InvalidInput,
            DomainError::NotFound { .. } => UserErrorCode::NotFound,
            DomainError::NameTaken(_) => UserErrorCode::NameTaken,
            DomainError::AlreadyExists { .. } => UserErrorCode::AlreadyExists,
            DomainError::ConfirmationMismatch => UserErrorCode::ConfirmationMismatch,
            DomainError::PushOnlyIntegration => UserErrorCode::PushOnlyIntegration,
            DomainError::NeedsReauth => UserErrorCode::NeedsReauth,
            _ => return None,
        };
        let field = err.field().or(match err {
            DomainError::NameTaken(_) => Some("name"),
            DomainError::ConfirmationMismatch => Some("confirmName"),
            DomainError::NotFound { what: "device" } => Some("deviceId"),
            DomainError::NotFound { what: "user" } => Some("userId"),
            DomainError::NotFound { .. }
            | DomainError::PushOnlyIntegration
            | DomainError::NeedsReauth => Some("id"),
            _ => None,
        });
        let field = field.map(|f| {
            std::iter::once("input".to_owned())
                .chain(f.split('.').map(str::to_owned))
                .collect()
        });
        Some(Self {
            field,
            message: err.to_string(),
            code,
        })
    }
}

/// A mutation's payload: what it changed, or why the input was refused.
pub trait Payload: Default {
    /// The payload of a refused input: nothing changed, `errors` say why.
    fn refused(errors: Vec<UserError>) -> Self;
}

/// A mutation's answer: its payload, the payload of a refused input, or a top-level error
/// for what is not the caller's input.
pub fn answer<P: Payload>(result: DomainResult<P>) -> async_graphql::Result<Option<P>> {
    match result {
        Ok(payload) => Ok(Some(payload)),
        Err(err) => match UserError::of(&err) {
            Some(user_error) => Ok(Some(P::refused(vec![user_error]))),
            None => Err(err.into()),
        },
    }
}

/// Declares a payload: its fields (each null when the input was refused) and `userErrors`.
macro_rules! payload {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident: $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(async_graphql::SimpleObject, Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: Option<$ty>,)*
            /// What the caller can correct in its input; empty when the mutation succeeded.
            pub user_errors: Vec<$crate::graphql::payload::UserError>,
        }

        impl $crate::graphql::payload::Payload for $name {
            fn refused(user_errors: Vec<$crate::graphql::payload::UserError>) -> Self {
                Self {
                    user_errors,
                    ..Default::default()
                }
            }
        }
    };
}
pub(crate) use payload;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct P(Option<u8>, Vec<UserError>);

    impl Payload for P {
        fn refused(errors: Vec<UserError>) -> Self {
            Self(None, errors)
        }
    }

    #[test]
    fn input_errors_go_in_the_payload_and_the_rest_to_the_top() {
        let refused = answer::<P>(Err(DomainError::invalid("name", "too long")))
            .unwrap()
            .unwrap();
        assert_eq!(refused.0, None);
        assert_eq!(refused.1[0].code, UserErrorCode::InvalidInput);
        assert_eq!(
            refused.1[0].field,
            Some(vec!["input".to_owned(), "name".to_owned()])
        );
        let taken = answer::<P>(Err(DomainError::NameTaken("x".into())))
            .unwrap()
            .unwrap();
        assert_eq!(taken.1[0].code, UserErrorCode::NameTaken);
        assert!(answer::<P>(Err(DomainError::Forbidden)).is_err());
        assert!(answer::<P>(Err(DomainError::RateLimited)).is_err());
        assert_eq!(
            answer(Ok(P(Some(1), Vec::new()))).unwrap().unwrap().0,
            Some(1)
        );
    }
}
