//! Who is calling, and what they may do. A resolver gets an [`Admin`] only from
//! [`Caller::admin`], and every service function that changes something takes one, so a code
//! path that never checked the role cannot call it.

pub mod cache;

use crate::error::{DomainError, DomainResult};
pub use entity::enums::TokenRole;

/// The token of a `Bearer <token>` header value (scheme case-insensitive), for the GraphQL
/// and SCIM edges alike.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whoever performed an action, as written to the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    token_id: Option<i64>,
    name: String,
}

impl Actor {
    /// The operator at the command line.
    pub fn cli() -> Self {
        Self {
            token_id: None,
            name: "cli".into(),
        }
    }

    /// The provider's browser redirect to `/oauth/callback`, authorised by its `state`.
    pub fn oauth_callback() -> Self {
        Self {
            token_id: None,
            name: "oauth-callback".into(),
        }
    }

    /// The sync engine, applying what a directory says.
    pub fn sync() -> Self {
        Self {
            token_id: None,
            name: "sync".into(),
        }
    }

    /// The label stored in the audit log.
    pub fn label(&self) -> String {
        match self.token_id {
            Some(id) => format!("token:{id}:{}", self.name),
            None => self.name.clone(),
        }
    }

    /// The API token that acted, if any.
    pub fn token_id(&self) -> Option<i64> {
        self.token_id
    }

    /// The token's name (or the internal actor's: `cli`, `sync`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// Left on a response (as an extension) whose request carried a valid token, so the edge
/// that serves the connection knows it for one of a known client's (the HTTP server then
/// never closes it to make room for a newcomer).
#[derive(Debug, Clone, Copy)]
pub struct Proven;

/// An authenticated API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    actor: Actor,
    role: TokenRole,
}

impl Caller {
    pub(crate) fn from_token(id: i64, name: String, role: TokenRole) -> Self {
        Self {
            actor: Actor {
                token_id: Some(id),
                name,
            },
            role,
        }
    }

    /// The caller's role.
    pub fn role(&self) -> TokenRole {
        self.role
    }

    /// Who the caller is, for the audit log.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    /// Proof that the caller may change things, or `FORBIDDEN`.
    pub fn admin(&self) -> DomainResult<Admin> {
        match self.role {
            TokenRole::Admin => Ok(Admin {
                actor: self.actor.clone(),
            }),
            TokenRole::Viewer => Err(DomainError::Forbidden),
        }
    }
}

/// Proof that the holder may perform admin actions. Only [`Caller::admin`] and
/// [`Admin::cli`] make one.
#[derive(Debug, Clone)]
pub struct Admin {
    actor: Actor,
}

impl Admin {
    /// The operator at the command line, who has the machine and so every right.
    pub fn cli() -> Self {
        Self {
            actor: Actor::cli(),
        }
    }

    /// Who is acting, for the audit log.
    pub fn actor(&self) -> &Actor {
        &self.actor
    }
}
