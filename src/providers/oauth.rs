//! The OAuth 2.0 authorization-code flow with PKCE S256 (the `oauth2` crate), code exchange,
//! and token refresh, for Microsoft and Google; and reading the id_token's claims.

use super::{ProviderEndpoints, ProviderError, ProviderSettings};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use entity::enums::DirectoryKind;
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet,
    EndpointSet, ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, Scope, StandardRevocableToken, StandardTokenResponse, TokenResponse,
    TokenUrl,
    basic::{
        BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
        BasicTokenIntrospectionResponse, BasicTokenType,
    },
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The delegated scopes asked of Microsoft (docs/rules.md; the providers' documented scopes).
pub const ENTRA_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "offline_access",
    "User.Read",
    "User.Read.All",
    "Group.Read.All",
    "GroupMember.Read.All",
];

/// The scopes asked of Google (docs/rules.md; the providers' documented scopes).
pub const GOOGLE_SCOPES: &[&str] = &[
    "openid",
    "email",
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
];

/// The tenant segment of Microsoft URLs before the tenant is known.
const ENTRA_FIRST_TENANT: &str = "organizations";

/// The id_token, which the token endpoint returns beside the tokens.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdTokenField {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl ExtraTokenFields for IdTokenField {}

type Tokens = StandardTokenResponse<IdTokenField, BasicTokenType>;

type Client = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn provider_name(kind: DirectoryKind) -> &'static str {
    match kind {
        DirectoryKind::GoogleWorkspace => "Google",
        _ => "Microsoft",
    }
}

fn endpoints(settings: &ProviderSettings, kind: DirectoryKind) -> &ProviderEndpoints {
    match kind {
        DirectoryKind::GoogleWorkspace => &settings.google,
        _ => &settings.entra,
    }
}

fn client(
    settings: &ProviderSettings,
    kind: DirectoryKind,
    tenant: Option<&str>,
    redirect_uri: Option<&str>,
) -> Result<Client, ProviderError> {
    let ep = endpoints(settings, kind);
    let (auth, token) = match kind {
        DirectoryKind::GoogleWorkspace => (ep.authorize.clone(), ep.token.clone()),
        _ => {
            let base = ep.authorize.trim_end_matches('/');
            let tenant = tenant.unwrap_or(ENTRA_FIRST_TENANT);
            (
                format!("{base}/{tenant}/oauth2/v2.0/authorize"),
                format!("{base}/{tenant}/oauth2/v2.0/token"),
            )
        }
    };
    let bad = |what: &str, url: &str| ProviderError::Http {
        provider: provider_name(kind),
        url: url.to_owned(),
        status: 0,
        detail: format!("the configured {what} URL is not a URL"),
    };
    let mut client = oauth2::Client::new(ClientId::new(ep.client_id.clone()))
        .set_client_secret(ClientSecret::new(ep.client_secret.clone()))
        .set_auth_type(AuthType::RequestBody)
        .set_auth_uri(AuthUrl::new(auth.clone()).map_err(|_| bad("authorize", &auth))?)
        .set_token_uri(TokenUrl::new(token.clone()).map_err(|_| bad("token", &token))?);
    if let Some(uri) = redirect_uri {
        client = client
            .set_redirect_uri(RedirectUrl::new(uri.to_owned()).map_err(|_| bad("redirect", uri))?);
    }
    Ok(client)
}

/// An authorization to send the admin to: the URL, and what to keep to finish it.
#[derive(Debug, Clone)]
pub struct AuthorizationStart {
    pub url: String,
    /// The `state` parameter (single-use; only its hash is stored).
    pub state: String,
    /// The PKCE verifier, kept until the code comes back.
    pub verifier: String,
}

/// Builds the provider's authorization URL with PKCE S256 and a random `state`.
pub fn start(
    settings: &ProviderSettings,
    kind: DirectoryKind,
    redirect_uri: &str,
) -> Result<AuthorizationStart, ProviderError> {
    let client = client(settings, kind, None, Some(redirect_uri))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let scopes = match kind {
        DirectoryKind::GoogleWorkspace => GOOGLE_SCOPES,
        _ => ENTRA_SCOPES,
    };
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(scopes.iter().map(|s| Scope::new((*s).to_owned())))
        .set_pkce_challenge(challenge);
    request = match kind {
        DirectoryKind::GoogleWorkspace => request
            .add_extra_param("access_type", "offline")
            .add_extra_param("prompt", "consent"),
        _ => request.add_extra_param("response_mode", "query"),
    };
    let (url, state) = request.url();
    Ok(AuthorizationStart {
        url: url.to_string(),
        state: state.secret().clone(),
        verifier: verifier.secret().clone(),
    })
}

/// What a completed exchange or refresh yields.
#[derive(Debug, Clone)]
pub struct Grant {
    pub access_token: String,
    pub expires_in: Option<Duration>,
    /// A new refresh token, when the provider sent one (Microsoft rotates them).
    pub refresh_token: Option<String>,
    pub scopes: Vec<String>,
    /// Entra tenant id or Google Workspace domain, from the id_token.
    pub tenant: Option<String>,
    /// The admin account (UPN or email), from the id_token.
    pub account: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    tid: Option<String>,
    preferred_username: Option<String>,
    upn: Option<String>,
    email: Option<String>,
    hd: Option<String>,
}

/// Reads the claims of an id_token received straight from the token endpoint over TLS (so,
/// per OpenID Connect Core §3.1.3.7, its signature need not be checked).
fn claims(kind: DirectoryKind, id_token: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(payload) = id_token.and_then(|t| t.split('.').nth(1)) else {
        return (None, None);
    };
    let Some(claims) = URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()
        .and_then(|raw| serde_json::from_slice::<Claims>(&raw).ok())
    else {
        return (None, None);
    };
    match kind {
        DirectoryKind::GoogleWorkspace => (claims.hd, claims.email),
        _ => (claims.tid, claims.preferred_username.or(claims.upn)),
    }
}

fn grant(kind: DirectoryKind, tokens: Tokens, requested: &[&str]) -> Grant {
    let (tenant, account) = claims(kind, tokens.extra_fields().id_token.as_deref());
    // What the provider says of the tenant and the account is shown like directory data.
    let (tenant, account) = (
        super::clean::clean_value("tenant", tenant),
        super::clean::clean_value("authorizedBy", account),
    );
    let scopes = tokens
        .scopes()
        .map(|s| {
            s.iter()
                .take(super::clean::MAX_ALIASES)
                .filter_map(|s| super::clean::clean_value("scope", Some(s.to_string())))
                .collect()
        })
        .unwrap_or_else(|| requested.iter().map(|s| (*s).to_owned()).collect());
    Grant {
        access_token: tokens.access_token().secret().clone(),
        expires_in: tokens.expires_in(),
        refresh_token: tokens.refresh_token().map(|t| t.secret().clone()),
        scopes,
        tenant,
        account,
    }
}

type TokenError = RequestTokenError<oauth2::HttpClientError<reqwest::Error>, BasicErrorResponse>;

/// Token-endpoint errors beyond `invalid_grant` that only a new sign-in clears (R16).
/// Microsoft identity platform (the token endpoint's error table; MSAL treats all three as
/// "interaction required"): `interaction_required` (MFA or a Conditional Access policy now
/// applies), `consent_required` (consent was revoked or new consent is needed),
/// `login_required`. Google's OAuth 2.0 server answers a revoked, expired or password-reset
/// grant with `invalid_grant`, and `admin_policy_enforced` when a Workspace administrator's
/// API-access policy no longer allows the scopes.
fn needs_sign_in(kind: DirectoryKind, code: &str) -> bool {
    match kind {
        DirectoryKind::EntraId => matches!(
            code,
            "interaction_required" | "consent_required" | "login_required"
        ),
        DirectoryKind::GoogleWorkspace => code == "admin_policy_enforced",
        DirectoryKind::Scim => false,
    }
}

fn map_error(kind: DirectoryKind, url: &str, err: TokenError) -> ProviderError {
    let provider = provider_name(kind);
    match err {
        RequestTokenError::ServerResponse(resp) => {
            let detail = resp
                .error_description()
                .cloned()
                .unwrap_or_else(|| resp.error().to_string());
            match resp.error() {
                BasicErrorResponseType::InvalidGrant => {
                    ProviderError::NeedsReauth { provider, detail }
                }
                BasicErrorResponseType::Extension(code) if needs_sign_in(kind, code) => {
                    ProviderError::NeedsReauth {
                        provider,
                        detail: format!("{code}: {detail}"),
                    }
                }
                other => ProviderError::Http {
                    provider,
                    url: url.to_owned(),
                    status: 400,
                    detail: format!("{other}: {detail}"),
                },
            }
        }
        RequestTokenError::Request(e) => ProviderError::Unreachable {
            provider,
            url: url.to_owned(),
            detail: e.to_string(),
        },
        RequestTokenError::Parse(e, _) => ProviderError::Malformed {
            provider,
            url: url.to_owned(),
            detail: e.to_string(),
        },
        RequestTokenError::Other(detail) => ProviderError::Http {
            provider,
            url: url.to_owned(),
            status: 0,
            detail,
        },
    }
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange(
    http: &reqwest::Client,
    settings: &ProviderSettings,
    kind: DirectoryKind,
    redirect_uri: &str,
    code: &str,
    verifier: &str,
) -> Result<Grant, ProviderError> {
    let client = client(settings, kind, None, Some(redirect_uri))?;
    let url = client.token_uri().to_string();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
        .request_async(http)
        .await
        .map_err(|e| map_error(kind, &url, e))?;
    let requested = match kind {
        DirectoryKind::GoogleWorkspace => GOOGLE_SCOPES,
        _ => ENTRA_SCOPES,
    };
    Ok(grant(kind, tokens, requested))
}

/// Trades a refresh token for a new access token (and, with Microsoft, a new refresh token).
/// `invalid_grant`, and the provider's other "sign in again" answers ([`needs_sign_in`]), are
/// [`ProviderError::NeedsReauth`].
pub async fn refresh(
    http: &reqwest::Client,
    settings: &ProviderSettings,
    kind: DirectoryKind,
    tenant: Option<&str>,
    refresh_token: &str,
) -> Result<Grant, ProviderError> {
    let tenant = match kind {
        DirectoryKind::GoogleWorkspace => None,
        _ => tenant,
    };
    let client = client(settings, kind, tenant, None)?;
    let url = client.token_uri().to_string();
    let token = RefreshToken::new(refresh_token.to_owned());
    let tokens = client
        .exchange_refresh_token(&token)
        .request_async(http)
        .await
        .map_err(|e| map_error(kind, &url, e))?;
    Ok(grant(kind, tokens, &[]))
}
