//! SCIM integrations (R13): added ACTIVE with a bearer token of their own, shown once and
//! stored as a SHA-256 hash (the details show a hint), rotated at once by `rotate`. The SCIM
//! endpoint itself is `crate::scim`.

use super::{
    IntegrationId, audit, integrations, now,
    tokens::{hash_secret, random_secret},
};
use crate::{
    auth::Admin,
    error::{DomainError, DomainResult},
};
use entity::{
    enums::{DirectoryKind, IntegrationStatus},
    integration,
};
use sea_orm::{Set, TransactionSession, TransactionTrait};
use subtle::ConstantTimeEq;

/// Every SCIM token starts so, to be recognisable in a secret scanner.
const PREFIX: &str = "dgscim_";

/// A new SCIM bearer token, its stored hash and its hint.
struct NewToken {
    token: String,
    hash: String,
    hint: String,
}

fn new_token() -> NewToken {
    let token = format!("{PREFIX}{}", random_secret());
    let hint = format!("{PREFIX}…{}", &token[token.len() - 4..]);
    NewToken {
        hash: hash_secret(&token),
        hint,
        token,
    }
}

/// Whether `presented` is the integration's SCIM token (constant time).
pub fn token_matches(integration: &integration::Model, presented: &str) -> bool {
    let Some(stored) = integration.scim_token_hash.as_deref() else {
        return false;
    };
    bool::from(hash_secret(presented).as_bytes().ct_eq(stored.as_bytes()))
}

/// The SCIM base URL of an integration.
pub fn base_url(public_url: &str, id: i64) -> String {
    format!("{}/scim/v2/{id}", public_url.trim_end_matches('/'))
}

/// Adds a SCIM integration, ACTIVE at once; returns it and its token (shown once).
pub async fn add<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    name: &str,
    auto_assign_devices: bool,
) -> DomainResult<(integration::Model, String)> {
    let name = integrations::validate_name(name)?;
    let token = new_token();
    let txn = crate::db::begin_write(db).await?;
    let at = now();
    let model = integrations::insert_new(
        &txn,
        name,
        integration::ActiveModel {
            awaiting_scope: sea_orm::Set(false),
            kind: Set(DirectoryKind::Scim),
            status: Set(IntegrationStatus::Active),
            auto_assign_devices: Set(auto_assign_devices),
            scim_token_hash: Set(Some(token.hash)),
            scim_token_hint: Set(Some(token.hint)),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        },
    )
    .await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::AddIntegration,
        Some(audit::Target::new("Integration", model.id)),
        serde_json::json!({ "kind": model.kind, "name": model.name }),
    )
    .await?;
    txn.commit().await?;
    Ok((model, token.token))
}

/// Replaces a SCIM integration's token at once: the old one stops working with this call.
pub async fn rotate<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    id: IntegrationId,
) -> DomainResult<(integration::Model, String)> {
    let txn = crate::db::begin_write(db).await?;
    let model = integrations::get(&txn, id).await?;
    if model.kind != DirectoryKind::Scim {
        return Err(DomainError::invalid(
            "id",
            "only a SCIM integration has a SCIM token",
        ));
    }
    let token = new_token();
    let model =
        crate::store::tokens::set_scim_token(&txn, model, token.hash, token.hint, now()).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::RotateScimToken,
        Some(audit::Target::new("Integration", model.id)),
        serde_json::json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok((model, token.token))
}
