//! Webhooks: endpoints that receive the directory's change events (`directory::events`),
//! signed per the Standard Webhooks spec, at least once, in order per endpoint.
//!
//! `mod.rs` manages endpoints (create with a secret shown once, update, delete, rotate the
//! secret) and checks their URLs; `deliver.rs` is the worker that delivers, retries on the
//! Standard Webhooks schedule and disables an endpoint that keeps failing.

pub mod deliver;

use crate::store::{self, Db};
use crate::{
    auth::Admin,
    crypto::SecretBox,
    directory::{audit, events, now},
    error::{DomainError, DomainResult},
};
use entity::{webhook_attempt, webhook_endpoint};
use rand::RngCore;
use sea_orm::{IntoActiveModel, Set, TransactionSession, TransactionTrait};
use std::net::IpAddr;

/// The longest URL accepted.
const MAX_URL: usize = 2048;
/// The most endpoints.
pub const MAX_ENDPOINTS: u64 = 100;

/// Whether `ip` is one a webhook may be sent to without `--webhook-allow-private-urls`: not
/// loopback, private, link-local, unique-local, unspecified, multicast or documentation.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10, shared
                || v4.octets()[0] == 0)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80) // link local
        }
    }
}

/// Checks a webhook URL: `https://` with a host (plain `http://`, loopback and private
/// addresses only when `allow_private`), no credentials, at most 2,048 bytes.
pub fn check_url(raw: &str, allow_private: bool) -> DomainResult<url::Url> {
    let invalid = |why: &str| DomainError::invalid("url", format!("the webhook URL {why}"));
    crate::text::check_len(raw, crate::text::Lines::Single, MAX_URL)
        .map_err(|_| invalid("is too long or holds control characters"))?;
    let url = url::Url::parse(raw.trim()).map_err(|_| invalid("is not a URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_private => {}
        _ => return Err(invalid("must use https://")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    let host = url.host().ok_or_else(|| invalid("has no host"))?;
    if !allow_private {
        let private = match host {
            url::Host::Ipv4(ip) => !is_public(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => !is_public(IpAddr::V6(ip)),
            url::Host::Domain(name) => {
                let name = name.trim_end_matches('.').to_ascii_lowercase();
                name == "localhost" || name.ends_with(".localhost") || !name.contains('.')
            }
        };
        if private {
            return Err(invalid("must name a public host"));
        }
    }
    Ok(url)
}

/// Checks event types: each a known one, each once.
fn check_types(types: &[String]) -> DomainResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for t in types {
        if !events::EVENT_TYPES.contains(&t.as_str()) {
            return Err(DomainError::invalid(
                "types",
                format!(
                    "`{}` is not an event type",
                    t.chars().take(40).collect::<String>()
                ),
            ));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The associated data a secret is sealed with: its endpoint.
fn secret_context(id: i64) -> String {
    format!("webhook_endpoint:{id}")
}

/// A new signing secret: `whsec_` and 32 random bytes in base64, as Standard Webhooks spells it.
fn new_secret() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The endpoint's signing secret.
pub fn secret_of(secrets: &SecretBox, m: &webhook_endpoint::Model) -> DomainResult<String> {
    let plain = secrets
        .open(&secret_context(m.id), &m.secret_enc)
        .map_err(|_| DomainError::Internal(std::sync::Arc::new(SecretUnreadable)))?;
    String::from_utf8(plain)
        .map_err(|_| DomainError::Internal(std::sync::Arc::new(SecretUnreadable)))
}

#[derive(Debug, thiserror::Error)]
#[error("a webhook secret does not open with this key")]
struct SecretUnreadable;

/// The event types an endpoint wants (empty: all).
pub fn types_of(m: &webhook_endpoint::Model) -> Vec<String> {
    serde_json::from_str(&m.event_types).unwrap_or_default()
}

/// Adds an endpoint for `types` (none: every type) that receives the events committed from
/// now on; returns it and its secret, which is shown only now.
pub async fn create<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    secrets: &SecretBox,
    allow_private: bool,
    url: &str,
    types: &[String],
) -> DomainResult<(webhook_endpoint::Model, String)> {
    let url = check_url(url, allow_private)?;
    let types = check_types(types)?;
    let txn = crate::db::begin_write(db).await?;
    let count = store::webhooks::count(&txn).await?;
    if count >= MAX_ENDPOINTS {
        return Err(DomainError::invalid(
            "url",
            format!("there are {MAX_ENDPOINTS} webhook endpoints already"),
        ));
    }
    let at = now();
    let secret = new_secret();
    let row = webhook_endpoint::ActiveModel {
        url: Set(url.to_string()),
        event_types: Set(serde_json::to_string(&types).unwrap_or_else(|_| "[]".into())),
        secret_enc: Set(Vec::new()),
        enabled: Set(true),
        disabled_reason: Set(None),
        cursor_seq: Set(events::last_seq(&txn).await?),
        attempt: Set(0),
        next_attempt_at: Set(at),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    };
    let model = store::webhooks::insert(&txn, row, |id| {
        secrets.seal(&secret_context(id), secret.as_bytes())
    })
    .await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::CreateWebhookEndpoint,
        Some(audit::Target::new("WebhookEndpoint", model.id)),
        serde_json::json!({ "url": model.url, "types": types }),
    )
    .await?;
    txn.commit().await?;
    Ok((model, secret))
}

/// What [`update`] changes; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Changes {
    pub url: Option<String>,
    pub types: Option<Vec<String>>,
    /// `true` re-enables a disabled endpoint (its next event is tried at once); `false`
    /// disables it.
    pub enabled: Option<bool>,
}

/// Changes an endpoint.
pub async fn update<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    allow_private: bool,
    id: i64,
    changes: Changes,
) -> DomainResult<webhook_endpoint::Model> {
    let url = changes
        .url
        .as_deref()
        .map(|u| check_url(u, allow_private))
        .transpose()?;
    let types = changes.types.as_deref().map(check_types).transpose()?;
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, id).await?;
    let mut active = model.into_active_model();
    if let Some(url) = &url {
        active.url = Set(url.to_string());
    }
    if let Some(types) = &types {
        active.event_types = Set(serde_json::to_string(types).unwrap_or_else(|_| "[]".into()));
    }
    match changes.enabled {
        Some(true) => {
            active.enabled = Set(true);
            active.disabled_reason = Set(None);
            active.attempt = Set(0);
            active.next_attempt_at = Set(now());
        }
        Some(false) => {
            active.enabled = Set(false);
            active.disabled_reason = Set(Some("disabled by an admin".into()));
        }
        None => {}
    }
    active.updated_at = Set(now());
    let model = store::webhooks::update(&txn, active).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::UpdateWebhookEndpoint,
        Some(audit::Target::new("WebhookEndpoint", model.id)),
        serde_json::json!({ "url": url.map(|u| u.to_string()), "types": types, "enabled": changes.enabled }),
    )
    .await?;
    txn.commit().await?;
    Ok(model)
}

/// Replaces an endpoint's secret at once; returns the endpoint and the new secret (shown only
/// now).
pub async fn rotate_secret<C: TransactionTrait>(
    db: &C,
    admin: &Admin,
    secrets: &SecretBox,
    id: i64,
) -> DomainResult<(webhook_endpoint::Model, String)> {
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, id).await?;
    let secret = new_secret();
    let mut active = model.into_active_model();
    active.secret_enc = Set(secrets.seal(&secret_context(id), secret.as_bytes()));
    active.updated_at = Set(now());
    let model = store::webhooks::update(&txn, active).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::RotateWebhookSecret,
        Some(audit::Target::new("WebhookEndpoint", id)),
        serde_json::Value::Null,
    )
    .await?;
    txn.commit().await?;
    Ok((model, secret))
}

/// Deletes an endpoint and its attempts.
pub async fn delete<C: TransactionTrait>(db: &C, admin: &Admin, id: i64) -> DomainResult<()> {
    let txn = crate::db::begin_write(db).await?;
    let model = get(&txn, id).await?;
    store::webhooks::delete(&txn, model.id).await?;
    audit::record(
        &txn,
        admin.actor(),
        crate::directory::audit::Action::DeleteWebhookEndpoint,
        Some(audit::Target::new("WebhookEndpoint", id)),
        serde_json::json!({ "url": model.url }),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// One endpoint, or `NOT_FOUND`.
pub async fn get(db: &impl Db, id: i64) -> DomainResult<webhook_endpoint::Model> {
    store::webhooks::find(db, id)
        .await?
        .ok_or(DomainError::NotFound {
            what: "webhook endpoint",
        })
}

/// Every endpoint, oldest first (there are at most [`MAX_ENDPOINTS`]).
pub async fn list(db: &impl Db) -> DomainResult<Vec<webhook_endpoint::Model>> {
    Ok(store::webhooks::list(db, MAX_ENDPOINTS).await?)
}

/// An endpoint's latest `first` attempts, newest first.
pub async fn attempts(
    db: &impl Db,
    endpoint: i64,
    first: u64,
) -> DomainResult<Vec<webhook_attempt::Model>> {
    Ok(store::webhooks::attempts(db, endpoint, first).await?)
}

/// Deletes delivery attempts made before `before` (the events' retention); returns how many.
pub async fn prune_attempts(
    db: &impl Db,
    before: chrono::DateTime<chrono::Utc>,
) -> DomainResult<u64> {
    Ok(store::webhooks::prune_attempts(db, before).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_https_and_public_unless_allowed() {
        assert!(check_url("https://hooks.example.com/dirgate", false).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://10.1.2.3/x",
            "https://192.168.0.9/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[fd00::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://localhost/x",
            "https://intranet/x",
            "https://user:pw@hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "not a url",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
        assert!(check_url("http://127.0.0.1:9/x", true).is_ok());
        assert!(
            check_url(
                &format!("https://a.example.com/{}", "x".repeat(3000)),
                false
            )
            .is_err()
        );
    }

    #[test]
    fn types_must_be_known() {
        assert_eq!(
            check_types(&["user.created".into(), "user.created".into()]).unwrap(),
            ["user.created"]
        );
        assert!(check_types(&["user.exploded".into()]).is_err());
    }

    #[test]
    fn secrets_look_like_standard_webhooks_secrets() {
        let s = new_secret();
        assert!(s.starts_with("whsec_"));
        assert!(standardwebhooks::Webhook::new(&s).is_ok());
        assert_ne!(s, new_secret());
    }
}
