//! Connecting Entra ID and Google Workspace integrations: adding one starts an OAuth
//! authorization (R4); completing it records the tenant, the admin account, the scopes and
//! the encrypted refresh token and makes the integration ACTIVE; a consent error makes it
//! AWAITING_ADMIN_APPROVAL; re-authenticating swaps the grant only when the new flow succeeds
//! (R8). A `state` is single-use and lives ten minutes.

use super::{IntegrationId, audit, integrations, now};
use crate::store::{self, Db};
use crate::{
    auth::{Actor, Admin},
    crypto::SecretBox,
    error::{DomainError, DomainResult},
    providers::{ProviderError, ProviderSettings, oauth},
};
use entity::{
    enums::{AuthorizationPurpose, DirectoryKind, IntegrationStatus},
    integration, oauth_authorization,
};
use sea_orm::{IntoActiveModel, Set, TransactionSession, TransactionTrait};
use sha2::{Digest, Sha256};

/// How long an authorization may take.
pub const STATE_LIFETIME: chrono::Duration = chrono::Duration::minutes(10);

/// What an admin gives to add an integration.
#[derive(Debug, Clone)]
pub struct NewIntegration {
    pub kind: DirectoryKind,
    pub name: String,
    pub auto_assign_devices: bool,
    pub sync_interval_minutes: Option<i32>,
    /// What it imports (R19); checked for its kind.
    pub scope: crate::providers::scope::Scope,
    /// Wait, after the sign-in, for an admin to choose the scope (AWAITING_SCOPE).
    pub choose_scope: bool,
}

/// What the OAuth parts of the flow need.
pub struct OAuthContext<'a> {
    pub settings: &'a ProviderSettings,
    pub http: &'a reqwest::Client,
    pub secrets: &'a SecretBox,
    pub redirect_uri: &'a str,
}

fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// Where the refresh token of integration `id` is sealed.
fn refresh_token_context(id: i64) -> String {
    format!("integration:{id}:refresh_token")
}

/// Seals a refresh token for integration `id`, bound to that row.
pub fn seal_refresh_token(secrets: &SecretBox, id: i64, token: &str) -> Vec<u8> {
    secrets.seal(&refresh_token_context(id), token.as_bytes())
}

/// The refresh token an integration holds: `INVALID_INPUT` when it holds none (never signed
/// in), `INTERNAL` when it does not decrypt (a wrong key).
pub fn open_refresh_token(secrets: &SecretBox, model: &integration::Model) -> DomainResult<String> {
    let sealed = model
        .refresh_token_enc
        .as_deref()
        .ok_or_else(|| DomainError::invalid("id", "the integration holds no grant"))?;
    secrets
        .open(&refresh_token_context(model.id), sealed)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| DomainError::internal(crate::crypto::DecryptError))
}

fn verifier_context(state_hash: &str) -> String {
    format!("oauth_authorization:{state_hash}:code_verifier")
}

fn check_configured(settings: &ProviderSettings, kind: DirectoryKind) -> DomainResult<()> {
    let (id, var) = match kind {
        DirectoryKind::EntraId => (&settings.entra.client_id, "DIRGATE_ENTRA_CLIENT_ID"),
        DirectoryKind::GoogleWorkspace => (&settings.google.client_id, "DIRGATE_GOOGLE_CLIENT_ID"),
        DirectoryKind::Scim => return Ok(()),
    };
    if id.is_empty() {
        return Err(DomainError::invalid(
            "kind",
            format!("this deployment has no OAuth client for {kind:?}: set {var} and its secret"),
        ));
    }
    Ok(())
}

/// Erases the PKCE verifier of every authorization that expired unused (a spent one loses it
/// when it is spent): a row that can no longer complete keeps no secret. Called whenever an
/// authorization starts and on every scheduler tick.
pub async fn forget_spent_verifiers(db: &impl Db) -> DomainResult<u64> {
    Ok(store::authorizations::forget_expired_verifiers(db, now()).await?)
}

/// Starts an authorization for `integration` and stores what finishing it needs.
async fn begin(
    db: &impl Db,
    oauth_ctx: &OAuthContext<'_>,
    integration: &integration::Model,
    purpose: AuthorizationPurpose,
) -> DomainResult<String> {
    let start = oauth::start(oauth_ctx.settings, integration.kind, oauth_ctx.redirect_uri)
        .map_err(DomainError::internal)?;
    let hash = state_hash(&start.state);
    let sealed = oauth_ctx
        .secrets
        .seal(&verifier_context(&hash), start.verifier.as_bytes());
    let at = now();
    forget_spent_verifiers(db).await?;
    let row = oauth_authorization::ActiveModel {
        integration_id: Set(integration.id),
        state_hash: Set(hash),
        code_verifier: Set(base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            sealed,
        )),
        purpose: Set(purpose),
        redirect_uri: Set(oauth_ctx.redirect_uri.to_owned()),
        created_at: Set(at),
        expires_at: Set(at + STATE_LIFETIME),
        ..Default::default()
    };
    store::authorizations::insert(db, row).await?;
    Ok(start.url)
}

/// Adds an Entra ID or Google Workspace integration, AWAITING_CONSENT, and returns it with
/// the URL to send the directory admin to (R4).
pub async fn add<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    oauth_ctx: &OAuthContext<'_>,
    new: NewIntegration,
) -> DomainResult<(integration::Model, String)> {
    let name = integrations::validate_name(&new.name)?;
    if new.kind == DirectoryKind::Scim {
        return Err(DomainError::invalid(
            "kind",
            "SCIM integrations cannot be added yet: push provisioning is not built",
        ));
    }
    check_configured(oauth_ctx.settings, new.kind)?;
    if let Some(minutes) = new.sync_interval_minutes {
        integrations::check_sync_interval(minutes)?;
    }
    let scope = super::scope::check(new.kind, new.scope)?;
    if new.choose_scope && scope != crate::providers::scope::Scope::All {
        return Err(DomainError::invalid(
            "chooseScope",
            "give a scope, or ask to choose it after the sign-in, not both",
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    let at = now();
    let model = integrations::insert_new(
        &txn,
        name,
        integration::ActiveModel {
            kind: Set(new.kind),
            status: Set(IntegrationStatus::AwaitingConsent),
            auto_assign_devices: Set(new.auto_assign_devices),
            sync_interval_minutes: Set(new.sync_interval_minutes),
            scope: Set(scope.to_stored()),
            awaiting_scope: Set(new.choose_scope),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        },
    )
    .await?;
    let url = begin(&txn, oauth_ctx, &model, AuthorizationPurpose::Connect).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::AddIntegration,
        Some(audit::Target::new("Integration", model.id)),
        serde_json::json!({
            "kind": model.kind, "name": model.name, "scope": scope,
            "chooseScope": new.choose_scope,
        }),
    )
    .await?;
    txn.commit().await?;
    Ok((model, url))
}

/// Starts a new OAuth flow for an existing integration (R8). Nothing changes until it
/// completes.
pub async fn reauthenticate<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    oauth_ctx: &OAuthContext<'_>,
    id: IntegrationId,
) -> DomainResult<(integration::Model, String)> {
    let txn = crate::db::begin_write(db).await?;
    let model = integrations::get(&txn, id).await?;
    if model.kind == DirectoryKind::Scim {
        return Err(DomainError::PushOnlyIntegration);
    }
    check_configured(oauth_ctx.settings, model.kind)?;
    let url = begin(&txn, oauth_ctx, &model, AuthorizationPurpose::Reauth).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::ReauthenticateIntegration,
        Some(audit::Target::new("Integration", model.id)),
        serde_json::Value::Null,
    )
    .await?;
    txn.commit().await?;
    Ok((model, url))
}

/// What the provider sent back to the redirect URI.
#[derive(Debug, Clone, Default)]
pub struct Callback {
    pub state: String,
    pub code: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    pub error_subcode: Option<String>,
}

/// Finishes an authorization. The `state` must be one dirgate issued, unused and younger than
/// ten minutes; it is spent whatever happens next. A code is exchanged and the grant stored
/// (ACTIVE); a consent error makes a new integration AWAITING_ADMIN_APPROVAL (R4); a failed
/// re-authentication leaves the integration and its grant as they were (R8).
pub async fn complete<C: TransactionTrait + Db>(
    db: &C,
    actor: &Actor,
    oauth_ctx: &OAuthContext<'_>,
    callback: Callback,
) -> DomainResult<integration::Model> {
    let (pending, hash) = spend_state(db, &callback.state).await?;
    let integration = integrations::get(db, IntegrationId(pending.integration_id)).await?;
    let reauth = pending.purpose == AuthorizationPurpose::Reauth;
    if let Some(error) = callback.error.as_deref() {
        return refused(db, actor, integration, reauth, error, &callback).await;
    }
    let code = callback
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            DomainError::invalid("code", "the callback carries neither a code nor an error")
        })?;
    let verifier = open_verifier(oauth_ctx.secrets, &pending, &hash)?;
    let grant = oauth::exchange(
        oauth_ctx.http,
        oauth_ctx.settings,
        integration.kind,
        &pending.redirect_uri,
        code,
        &verifier,
    )
    .await
    .map_err(|err| match err {
        ProviderError::NeedsReauth { detail, .. } | ProviderError::Http { detail, .. } => {
            DomainError::invalid(
                "code",
                format!("the provider refused the authorization code: {detail}"),
            )
        }
        other => DomainError::internal(other),
    })?;
    granted(db, actor, oauth_ctx.secrets, integration, reauth, grant).await
}

/// The authorization `state` names, spent now (atomically: of two requests with it, one goes
/// on; its verifier leaves the row at the same moment), and the state's hash.
async fn spend_state(
    db: &impl Db,
    state: &str,
) -> DomainResult<(oauth_authorization::Model, String)> {
    let invalid_state = || {
        DomainError::invalid(
            "state",
            "this sign-in link is unknown, was already used, or expired; start again",
        )
    };
    let hash = state_hash(state);
    let pending = store::authorizations::by_state(db, &hash)
        .await?
        .ok_or_else(invalid_state)?;
    if pending.consumed_at.is_some() || pending.expires_at < now() {
        return Err(invalid_state());
    }
    if !store::authorizations::spend(db, pending.id, now()).await? {
        return Err(invalid_state());
    }
    Ok((pending, hash))
}

/// The PKCE verifier `pending` held when it was spent.
fn open_verifier(
    secrets: &SecretBox,
    pending: &oauth_authorization::Model,
    hash: &str,
) -> DomainResult<String> {
    base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &pending.code_verifier,
    )
    .ok()
    .and_then(|sealed| secrets.open(&verifier_context(hash), &sealed).ok())
    .and_then(|raw| String::from_utf8(raw).ok())
    .ok_or_else(|| DomainError::internal(crate::crypto::DecryptError))
}

/// The provider answered with `error`: a re-authentication fails and changes nothing (R8); a
/// new integration waits for an administrator's approval (R4).
async fn refused<C: TransactionTrait + Db>(
    db: &C,
    actor: &Actor,
    integration: integration::Model,
    reauth: bool,
    error: &str,
    callback: &Callback,
) -> DomainResult<integration::Model> {
    let description = callback
        .error_description
        .clone()
        .unwrap_or_else(|| error.to_owned());
    let cancelled = callback.error_subcode.as_deref() == Some("cancel");
    if reauth {
        record(
            db,
            actor,
            &integration,
            crate::directory::audit::Action::CompleteAuthorization,
            serde_json::json!({ "error": error, "reauthentication": true }),
        )
        .await?;
        return Err(DomainError::invalid(
            "error",
            format!(
                "the re-authentication did not complete ({description}); the integration keeps its current grant"
            ),
        ));
    }
    // Entra ends both a cancelled sign-in and a non-admin's "Request approval" (the
    // admin-consent workflow) with `access_denied` + `error_subcode=cancel` (AADSTS65004):
    // the two cannot be told apart, so the integration waits for an approval and says both.
    let reason = if cancelled {
        format!(
            "the sign-in was cancelled, or an administrator's approval was requested; once an administrator approves the app, sign in again ({description})"
        )
    } else {
        format!("an administrator must approve the app, then sign in again ({description})")
    };
    let txn = crate::db::begin_write(db).await?;
    let mut active = integration.into_active_model();
    active.status = Set(IntegrationStatus::AwaitingAdminApproval);
    active.status_reason = Set(Some(reason));
    active.updated_at = Set(now());
    let model = store::integrations::update(&txn, active).await?;
    record(
        &txn,
        actor,
        &model,
        crate::directory::audit::Action::CompleteAuthorization,
        serde_json::json!({ "error": error }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// The provider granted access: the grant is stored and the integration made ACTIVE, unless a
/// re-authentication signed in to another tenant (R8: nothing changes then).
async fn granted<C: TransactionTrait + Db>(
    db: &C,
    actor: &Actor,
    secrets: &SecretBox,
    integration: integration::Model,
    reauth: bool,
    grant: oauth::Grant,
) -> DomainResult<integration::Model> {
    let refresh_token = grant.refresh_token.clone().ok_or_else(|| {
        DomainError::invalid(
            "code",
            "the provider granted no refresh token (offline access was not granted)",
        )
    })?;
    if reauth
        && let (Some(old), Some(new)) = (integration.tenant.as_deref(), grant.tenant.as_deref())
        && !old.eq_ignore_ascii_case(new)
    {
        return Err(DomainError::invalid(
            "code",
            format!(
                "the account signed in to {new}, but this integration reads {old}; nothing was changed"
            ),
        ));
    }
    let txn = crate::db::begin_write(db).await?;
    let id = integration.id;
    // An admin who asked to choose the scope first chooses it now (R19).
    let status = if integration.awaiting_scope {
        IntegrationStatus::AwaitingScope
    } else {
        IntegrationStatus::Active
    };
    let mut active = integration.into_active_model();
    active.status = Set(status);
    active.status_reason = Set(None);
    active.tenant = Set(grant.tenant.clone());
    active.authorized_by = Set(grant.account.clone());
    active.granted_scopes = Set(Some(grant.scopes.join(" ")));
    active.refresh_token_enc = Set(Some(seal_refresh_token(secrets, id, &refresh_token)));
    active.updated_at = Set(now());
    let model = store::integrations::update(&txn, active).await?;
    record(
        &txn,
        actor,
        &model,
        crate::directory::audit::Action::CompleteAuthorization,
        serde_json::json!({ "tenant": model.tenant, "authorizedBy": model.authorized_by, "reauthentication": reauth }),
    )
    .await?;
    super::events::record(
        &txn,
        vec![super::events::NewEvent::integration(
            "integration.authorized",
            &model,
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

async fn record(
    db: &impl Db,
    actor: &Actor,
    model: &integration::Model,
    action: audit::Action,
    details: serde_json::Value,
) -> DomainResult<()> {
    audit::record(
        db,
        actor,
        action,
        Some(audit::Target::new("Integration", model.id)),
        details,
    )
    .await
}
