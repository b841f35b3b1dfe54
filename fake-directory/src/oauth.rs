//! OAuth 2.0: the Microsoft identity platform (`/{tenant}/oauth2/v2.0/authorize|token`) and
//! Google (`/o/oauth2/v2/auth`, `/token`), with PKCE S256, single-use codes, refresh tokens
//! (rotated by Microsoft, not by Google), consent refused for non-admins, and a consent page
//! whose Accept is a plain form. Tests skip the page with `fake_account=...&fake_decision=accept`.

use crate::{Code, Fake, Grant, Kind, random_token};
use axum::{
    Form, Json, Router,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

type Params = HashMap<String, String>;

pub(crate) fn routes() -> Router<Fake> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(ms_authorize).post(ms_decide),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(ms_token))
        .route(
            "/o/oauth2/v2/auth",
            get(google_authorize).post(google_decide),
        )
        .route("/token", post(google_token))
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Html(format!(
            "<!doctype html><title>Sign-in error</title><h1>Sign-in error</h1><p>{}</p>",
            escape(message)
        )),
    )
        .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Checks the parameters every authorization request needs.
fn check_authorize(params: &Params) -> Result<(), Response> {
    for required in [
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "scope",
    ] {
        if params.get(required).is_none_or(|v| v.is_empty()) {
            return Err(bad_request(&format!("missing parameter {required}")));
        }
    }
    if params.get("response_type").map(String::as_str) != Some("code") {
        return Err(bad_request("response_type must be code"));
    }
    if params.get("code_challenge_method").map(String::as_str) != Some("S256") {
        return Err(bad_request("code_challenge_method must be S256"));
    }
    Ok(())
}

fn consent_page(fake: &Fake, kind: Kind, action: &str, params: &Params) -> Response {
    let accounts: Vec<String> = fake
        .lock()
        .dir
        .tenants
        .values()
        .filter(|t| t.kind == kind)
        .flat_map(|t| t.admins.iter().chain(t.non_admins.iter()).cloned())
        .collect();
    let provider = match kind {
        Kind::Entra => "Microsoft",
        Kind::Google => "Google",
    };
    let hidden: String = params
        .iter()
        .filter(|(k, _)| !k.starts_with("fake_"))
        .map(|(k, v)| {
            format!(
                r#"<input type="hidden" name="{}" value="{}">"#,
                escape(k),
                escape(v)
            )
        })
        .collect();
    let options: String = accounts
        .iter()
        .map(|a| format!(r#"<option value="{0}">{0}</option>"#, escape(a)))
        .collect();
    let scopes = escape(params.get("scope").map(String::as_str).unwrap_or(""));
    Html(format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in with {provider} (fake)</title>
<style>body{{font-family:sans-serif;max-width:36em;margin:3em auto}}button{{margin-right:1em}}</style></head>
<body>
<h1>Sign in with {provider}</h1>
<p>This is dirgate's fake directory. An application asks for these permissions on behalf of your organisation:</p>
<p><code>{scopes}</code></p>
<form method="post" action="{action}">
{hidden}
<label>Account <select name="fake_account">{options}</select></label>
<p><button type="submit" name="fake_decision" value="accept">Accept</button>
<button type="submit" name="fake_decision" value="cancel">Cancel</button>
<button type="submit" name="fake_decision" value="request_approval">Request approval</button></p>
</form>
</body></html>"#
    ))
    .into_response()
}

/// Appends query parameters to a redirect URI.
fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> Response {
    let query: String = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", url_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let sep = if uri.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{uri}{sep}{query}")).into_response()
}

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// What Entra sends back after a cancel, and after a non-admin's "Request approval" in the
/// admin consent workflow: the two are the same on the wire.
fn entra_cancel(redirect_uri: &str, state: &str) -> Response {
    redirect_with(
        redirect_uri,
        &[
            ("error", "access_denied"),
            ("error_subcode", "cancel"),
            (
                "error_description",
                "AADSTS65004: User declined to consent to access the app.",
            ),
            ("state", state),
        ],
    )
}

/// Completes an authorization: a code, or the error a real provider would give.
fn decide(fake: &Fake, kind: Kind, params: &Params) -> Response {
    if let Err(response) = check_authorize(params) {
        return response;
    }
    let redirect_uri = &params["redirect_uri"];
    let state = &params["state"];
    let decision = params
        .get("fake_decision")
        .map(String::as_str)
        .unwrap_or("accept");
    let Some(account) = params
        .get("fake_account")
        .or_else(|| params.get("login_hint"))
    else {
        return bad_request("choose an account");
    };
    if !matches!(decision, "accept" | "cancel" | "request_approval") {
        return bad_request("fake_decision is accept, cancel or request_approval");
    }
    if decision == "cancel" {
        return match kind {
            Kind::Entra => entra_cancel(redirect_uri, state),
            Kind::Google => redirect_with(
                redirect_uri,
                &[("error", "access_denied"), ("state", state)],
            ),
        };
    }
    let mut guard = fake.lock();
    let Some((key, tenant)) = guard
        .dir
        .tenants
        .iter()
        .find(|(_, t)| t.kind == kind && t.has_account(account))
        .map(|(k, t)| (k.clone(), t.clone()))
    else {
        return bad_request(&format!("no such account: {account}"));
    };
    if !tenant.admins.contains(account) && !tenant.app_approved {
        if kind == Kind::Entra && decision == "request_approval" {
            // Entra's admin consent workflow: the non-admin asks for approval, then "Back to
            // app" returns exactly what a cancel returns (Microsoft Q&A 2237594).
            if let Some(t) = guard.dir.tenants.get_mut(&key) {
                t.approval_requests.push(account.clone());
            }
            drop(guard);
            return entra_cancel(redirect_uri, state);
        }
        drop(guard);
        return match kind {
            Kind::Entra => redirect_with(
                redirect_uri,
                &[
                    ("error", "consent_required"),
                    (
                        "error_description",
                        "AADSTS65001: The user or administrator has not consented to use the application. Send an interactive authorization request for this user and resource.",
                    ),
                    ("state", state),
                ],
            ),
            Kind::Google => redirect_with(
                redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "admin_policy_enforced"),
                    ("state", state),
                ],
            ),
        };
    }
    let code = random_token(24);
    let offline = match kind {
        Kind::Entra => params["scope"]
            .split_whitespace()
            .any(|s| s == "offline_access"),
        Kind::Google => {
            params.get("access_type").map(String::as_str) == Some("offline")
                && params
                    .get("prompt")
                    .is_some_and(|p| p.split_whitespace().any(|x| x == "consent"))
        }
    };
    guard.codes.insert(
        code.clone(),
        Code {
            tenant: key,
            account: account.clone(),
            client_id: params["client_id"].clone(),
            redirect_uri: redirect_uri.clone(),
            challenge: params["code_challenge"].clone(),
            scopes: params["scope"].clone(),
            offline,
            expires: Instant::now() + Duration::from_secs(600),
        },
    );
    drop(guard);
    redirect_with(redirect_uri, &[("code", &code), ("state", state)])
}

async fn ms_authorize(
    State(fake): State<Fake>,
    Path(_tenant): Path<String>,
    Query(params): Query<Params>,
    uri: axum::http::Uri,
) -> Response {
    if let Err(response) = check_authorize(&params) {
        return response;
    }
    if params.contains_key("fake_decision") {
        return decide(&fake, Kind::Entra, &params);
    }
    consent_page(&fake, Kind::Entra, uri.path(), &params)
}

async fn ms_decide(
    State(fake): State<Fake>,
    Path(_tenant): Path<String>,
    Form(params): Form<Params>,
) -> Response {
    decide(&fake, Kind::Entra, &params)
}

async fn google_authorize(State(fake): State<Fake>, Query(params): Query<Params>) -> Response {
    if let Err(response) = check_authorize(&params) {
        return response;
    }
    if params.contains_key("fake_decision") {
        return decide(&fake, Kind::Google, &params);
    }
    consent_page(&fake, Kind::Google, "/o/oauth2/v2/auth", &params)
}

async fn google_decide(State(fake): State<Fake>, Form(params): Form<Params>) -> Response {
    decide(&fake, Kind::Google, &params)
}

fn ms_error(error: &str, code: u32, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {description} Trace ID: 00000000-0000-0000-0000-000000000000"),
            "error_codes": [code],
            "timestamp": "2026-11-28 10:00:00Z",
            "trace_id": "00000000-0000-0000-0000-000000000000",
            "correlation_id": "00000000-0000-0000-0000-000000000000",
        })),
    )
        .into_response()
}

fn google_error(error: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

fn unsigned_jwt(claims: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

fn verify_pkce(verifier: &str, challenge: &str) -> bool {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// Exchanges a code: checks it exists, is fresh, was issued to this client and redirect URI,
/// and that the PKCE verifier matches. Codes are single-use.
fn take_code(fake: &Fake, params: &Params) -> Result<Code, (&'static str, u32, &'static str)> {
    let code = params.get("code").ok_or((
        "invalid_request",
        900144,
        "The request body must contain the 'code' parameter.",
    ))?;
    let found = fake.lock().codes.remove(code);
    let found = found.ok_or((
        "invalid_grant",
        70008,
        "The provided authorization code or refresh token has expired due to inactivity.",
    ))?;
    if found.expires < Instant::now() {
        return Err((
            "invalid_grant",
            70008,
            "The provided authorization code or refresh token has expired due to inactivity.",
        ));
    }
    if params.get("client_id") != Some(&found.client_id) {
        return Err((
            "invalid_client",
            700016,
            "Application with identifier was not found in the directory.",
        ));
    }
    if params.get("redirect_uri") != Some(&found.redirect_uri) {
        return Err((
            "invalid_grant",
            50148,
            "The redirect URI does not match the one used in the authorization request.",
        ));
    }
    let verifier = params
        .get("code_verifier")
        .map(String::as_str)
        .unwrap_or("");
    if !verify_pkce(verifier, &found.challenge) {
        return Err((
            "invalid_grant",
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
        ));
    }
    Ok(found)
}

fn issue(
    fake: &Fake,
    tenant: &str,
    account: &str,
    client_id: &str,
    scopes: &str,
    refresh: bool,
) -> (String, Option<String>) {
    let access = random_token(32);
    let mut state = fake.lock();
    state
        .access
        .insert(access.clone(), (tenant.to_owned(), account.to_owned()));
    let refresh = refresh.then(|| {
        let token = format!("rt.{}", random_token(32));
        state.refresh.insert(
            token.clone(),
            Grant {
                tenant: tenant.to_owned(),
                account: account.to_owned(),
                client_id: client_id.to_owned(),
                scopes: scopes.to_owned(),
            },
        );
        token
    });
    (access, refresh)
}

async fn ms_token(
    State(fake): State<Fake>,
    Path(_tenant): Path<String>,
    Form(params): Form<Params>,
) -> Response {
    match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = match take_code(&fake, &params) {
                Ok(code) => code,
                Err((error, n, message)) => return ms_error(error, n, message),
            };
            let (access, refresh) = issue(
                &fake,
                &code.tenant,
                &code.account,
                &code.client_id,
                &code.scopes,
                code.offline,
            );
            let tenant_id = fake.lock().dir.tenants[&code.tenant].id.clone();
            let id_token = unsigned_jwt(json!({
                "aud": code.client_id, "iss": format!("https://login.microsoftonline.com/{tenant_id}/v2.0"),
                "tid": tenant_id, "oid": random_token(8), "preferred_username": code.account,
                "name": "Directory Admin",
            }));
            token_response(&code.scopes, access, refresh, Some(id_token))
        }
        Some("refresh_token") => {
            let presented = params.get("refresh_token").cloned().unwrap_or_default();
            let grant = fake.lock().refresh.remove(&presented);
            let Some(grant) = grant else {
                return ms_error(
                    "invalid_grant",
                    50173,
                    "The provided grant has expired due to it being revoked, a fresh auth token is needed.",
                );
            };
            let refused = fake.lock().dir.tenants[&grant.tenant].refresh_error.clone();
            if let Some(error) = refused {
                // The token endpoint's error table: each comes with its AADSTS code.
                let (code, description) = match error.as_str() {
                    "interaction_required" => (
                        50076,
                        "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
                    ),
                    "consent_required" => (
                        65001,
                        "The user or administrator has not consented to use the application.",
                    ),
                    "login_required" => (
                        50058,
                        "A silent sign-in request was sent but no user is signed in.",
                    ),
                    _ => (50000, "There was an error issuing a token."),
                };
                fake.lock().refresh.insert(presented, grant);
                return ms_error(&error, code, description);
            }
            // Microsoft rotates: the presented refresh token is spent, a new one comes back.
            let (access, refresh) = issue(
                &fake,
                &grant.tenant,
                &grant.account,
                &grant.client_id,
                &grant.scopes,
                true,
            );
            token_response(&grant.scopes, access, refresh, None)
        }
        _ => ms_error(
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ),
    }
}

async fn google_token(State(fake): State<Fake>, Form(params): Form<Params>) -> Response {
    match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let code = match take_code(&fake, &params) {
                Ok(code) => code,
                Err(_) => return google_error("invalid_grant", "Bad Request"),
            };
            let (access, refresh) = issue(
                &fake,
                &code.tenant,
                &code.account,
                &code.client_id,
                &code.scopes,
                code.offline,
            );
            let domain = fake.lock().dir.tenants[&code.tenant].domain.clone();
            let id_token = unsigned_jwt(json!({
                "aud": code.client_id, "iss": "https://accounts.google.com",
                "sub": random_token(8), "email": code.account, "hd": domain,
            }));
            token_response(&code.scopes, access, refresh, Some(id_token))
        }
        Some("refresh_token") => {
            let presented = params.get("refresh_token").cloned().unwrap_or_default();
            let grant = fake.lock().refresh.get(&presented).cloned();
            let Some(grant) = grant else {
                return google_error("invalid_grant", "Token has been expired or revoked.");
            };
            let refused = fake.lock().dir.tenants[&grant.tenant].refresh_error.clone();
            if let Some(error) = refused {
                return google_error(
                    &error,
                    "The administrator of this Google Workspace domain no longer allows the app's access.",
                );
            }
            // Google does not rotate refresh tokens.
            let (access, _) = issue(
                &fake,
                &grant.tenant,
                &grant.account,
                &grant.client_id,
                &grant.scopes,
                false,
            );
            token_response(&grant.scopes, access, None, None)
        }
        _ => google_error("unsupported_grant_type", "Invalid grant_type"),
    }
}

fn token_response(
    scopes: &str,
    access: String,
    refresh: Option<String>,
    id_token: Option<String>,
) -> Response {
    let mut body = json!({
        "token_type": "Bearer", "scope": scopes, "expires_in": 3599, "ext_expires_in": 3599,
        "access_token": access,
    });
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    if let Some(id_token) = id_token {
        body["id_token"] = json!(id_token);
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}
