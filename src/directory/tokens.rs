//! API tokens: `dg_<id>_<secret>`. Only the SHA-256 of the secret is stored; a presented
//! token is looked up by id and its hash compared in constant time.

use super::{audit, now};
use crate::store::{self, Db};
use crate::{
    auth::{
        Admin, Caller, TokenRole,
        cache::{self, TokenCache},
    },
    error::{DomainError, DomainResult},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::api_token;
use rand::RngCore;
use sea_orm::{TransactionSession, TransactionTrait};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "dg_";

/// A token just created: the only moment its secret is known.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub model: api_token::Model,
    /// The full bearer token, to hand to its user once.
    pub token: String,
}

/// SHA-256 of a secret, hex: what is stored instead of a token.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// 32 random bytes, base64url.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Creates a token with `name` and `role`.
pub async fn create<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    name: &str,
    role: TokenRole,
) -> DomainResult<NewToken> {
    let name = name.trim();
    if name.is_empty() {
        return Err(DomainError::invalid(
            "name",
            "a token name must be 1 to 64 characters",
        ));
    }
    crate::text::require("name", name, crate::text::Lines::Single, 64)?;
    let secret = random_secret();
    let txn = crate::db::begin_write(db).await?;
    let token = |id: i64| format!("{PREFIX}{id}_{secret}");
    let model = store::tokens::insert(&txn, name, role, hash_secret(&secret), now(), |id| {
        token(id).chars().take(12).collect()
    })
    .await?;
    let token = token(model.id);
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::CreateToken,
        Some(audit::Target::new("ApiToken", model.id)),
        serde_json::json!({ "name": model.name, "role": model.role }),
    )
    .await?;
    txn.commit().await?;
    Ok(NewToken { model, token })
}

/// Every token, oldest first, revoked ones included.
pub async fn list(db: &impl Db) -> DomainResult<Vec<api_token::Model>> {
    Ok(store::tokens::list(db).await?)
}

/// Revokes a token; it stops working at once. Revoking twice is harmless.
pub async fn revoke<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    id: i64,
) -> DomainResult<api_token::Model> {
    let txn = crate::db::begin_write(db).await?;
    let model = store::tokens::get(&txn, id)
        .await?
        .ok_or(DomainError::NotFound { what: "token" })?;
    if model.revoked_at.is_some() {
        return Ok(model);
    }
    let model = store::tokens::revoke(&txn, model, now()).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::RevokeToken,
        Some(audit::Target::new("ApiToken", model.id)),
        serde_json::Value::Null,
    )
    .await?;
    // Other processes hear it when this commits; this one's caches forget it before the
    // revocation returns (`auth::cache`).
    cache::announce_revocation(&txn, model.id).await?;
    txn.commit().await?;
    cache::evict_everywhere(model.id);
    Ok(model)
}

const INVALID: DomainError = DomainError::Unauthenticated("invalid API token");

/// The id and the secret's hash of a presented token.
fn parse(presented: &str) -> DomainResult<(i64, String)> {
    let rest = presented.strip_prefix(PREFIX).ok_or(INVALID)?;
    let (id, secret) = rest.split_once('_').ok_or(INVALID)?;
    let id: i64 = id.parse().map_err(|_| INVALID)?;
    Ok((id, hash_secret(secret)))
}

/// Checks a bearer token and says who is calling: from `cache` when it verified this token
/// within the minute (`auth::cache`), else from its row.
pub async fn authenticate(
    db: &impl Db,
    cache: &TokenCache,
    presented: &str,
) -> DomainResult<Caller> {
    let (id, presented_hash) = parse(presented)?;
    let ticket = match cache.get(id, &presented_hash) {
        Ok(caller) => return Ok(caller),
        Err(ticket) => ticket,
    };
    let caller = verify(db, id, &presented_hash).await?;
    cache.insert(ticket, id, presented_hash, caller.clone());
    Ok(caller)
}

/// Checks a token against its row and says who is calling.
async fn verify(db: &impl Db, id: i64, presented_hash: &str) -> DomainResult<Caller> {
    let Some(model) = store::tokens::get(db, id).await? else {
        return Err(INVALID);
    };
    let matches: bool = presented_hash
        .as_bytes()
        .ct_eq(model.secret_hash.as_bytes())
        .into();
    if !matches {
        return Err(INVALID);
    }
    if model.revoked_at.is_some() {
        return Err(DomainError::Unauthenticated("this API token was revoked"));
    }
    let now = now();
    let stale = model
        .last_used_at
        .is_none_or(|t| now - t > chrono::Duration::minutes(1));
    let caller = Caller::from_token(model.id, model.name.clone(), model.role);
    if stale {
        store::tokens::used(db, model, now).await?;
    }
    Ok(caller)
}
