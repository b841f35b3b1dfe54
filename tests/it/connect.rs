//! Connecting Entra ID and Google Workspace: the OAuth flow end to end against the fake
//! directory (R4, R8), through the GraphQL API and the `/oauth/callback` route.

use crate::{
    on_both_databases,
    support::{
        Fixture, error_code,
        fake::{FakeServer, authorize, authorize_with, param},
        user_error,
    },
};
use dirgate::directory::connect::open_refresh_token;
use entity::{audit_event, integration, oauth_authorization};
use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, PaginatorTrait, Set};
use serde_json::{Value, json};

const ADD: &str = r#"mutation($input: AddIntegrationInput!) {
  addIntegration(input: $input) { authorizationUrl integration { id name kind status } userErrors { field message code } }
}"#;
const COMPLETE: &str = r#"mutation($input: CompleteAuthorizationInput!) {
  completeAuthorization(input: $input) { integration { id name status statusReason tenant authorizedBy grantedScopes } userErrors { field message code } }
}"#;
const REAUTH: &str = r#"mutation($id: ID!) {
  reauthenticateIntegration(input: {id: $id}) { authorizationUrl integration { status } userErrors { field message code } }
}"#;

async fn connected(fx: &mut Fixture) -> FakeServer {
    let server = FakeServer::start(20, 2).await;
    fx.use_providers(server.settings());
    server
}

/// Adds an integration and returns its id and authorization URL.
async fn add(fx: &Fixture, kind: &str, name: &str) -> (Value, String) {
    let admin = fx.admin().await;
    let data = fx
        .ok(
            &admin,
            ADD,
            json!({ "input": { "kind": kind, "name": name } }),
        )
        .await;
    let payload = &data["addIntegration"];
    assert_eq!(payload["integration"]["status"], "AWAITING_CONSENT");
    (
        payload["integration"]["id"].clone(),
        payload["authorizationUrl"].as_str().unwrap().to_owned(),
    )
}

/// Completes the flow the way a front end would, with what the provider redirected with.
async fn complete(fx: &Fixture, back: &url::Url) -> Value {
    let admin = fx.admin().await;
    let input = json!({
        "state": param(back, "state"),
        "code": param(back, "code"),
        "error": param(back, "error"),
        "errorDescription": param(back, "error_description"),
        "errorSubcode": param(back, "error_subcode"),
    });
    fx.gql(&admin, COMPLETE, json!({ "input": input })).await
}

async fn stored(fx: &Fixture, id: &Value) -> integration::Model {
    let raw = dirgate::graphql::ids::decode(
        &async_graphql::ID(id.as_str().unwrap().into()),
        "Integration",
        "id",
    )
    .unwrap();
    integration::Entity::find_by_id(raw)
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap()
}

on_both_databases!(
    entra_sign_in_makes_the_integration_active,
    consent_refused_waits_for_admin_approval_then_completes,
    cancelled_sign_in_waits_for_approval_and_says_both,
    entra_approval_request_waits_for_the_admin_then_completes,
    state_is_single_use_and_expires,
    a_code_for_another_redirect_is_refused_and_changes_nothing,
    add_integration_refuses_bad_input,
    reauthentication_swaps_the_grant_only_on_success,
);

async fn entra_sign_in_makes_the_integration_active(mut fx: Fixture) {
    let server = connected(&mut fx).await;
    let (id, url) = add(&fx, "ENTRA_ID", "Contoso").await;
    let back = authorize(&url, "admin@contoso.example", true).await;
    assert_eq!(back.path(), "/oauth/callback");
    let response = complete(&fx, &back).await;
    let it = &response["data"]["completeAuthorization"]["integration"];
    assert_eq!(it["status"], "ACTIVE", "{response}");
    assert_eq!(it["tenant"], server.tenant(fake_directory::Kind::Entra));
    assert_eq!(it["authorizedBy"], "admin@contoso.example");
    assert!(
        it["grantedScopes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "GroupMember.Read.All")
    );
    let row = stored(&fx, &id).await;
    let sealed = row
        .refresh_token_enc
        .clone()
        .expect("a refresh token is stored");
    assert!(
        !String::from_utf8_lossy(&sealed).contains("rt."),
        "stored encrypted"
    );
    let plain = open_refresh_token(&fx.app.services.secrets, &row).unwrap();
    assert!(plain.starts_with("rt."));
    let actions: Vec<String> = audit_event::Entity::find()
        .all(&fx.db)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"addIntegration".to_owned())
            && actions.contains(&"completeAuthorization".to_owned())
    );
}

async fn consent_refused_waits_for_admin_approval_then_completes(mut fx: Fixture) {
    let server = connected(&mut fx).await;
    let (id, url) = add(&fx, "ENTRA_ID", "Contoso").await;
    let back = authorize(&url, "user@contoso.example", true).await;
    assert_eq!(param(&back, "error").as_deref(), Some("consent_required"));
    let response = complete(&fx, &back).await;
    let it = &response["data"]["completeAuthorization"]["integration"];
    assert_eq!(it["status"], "AWAITING_ADMIN_APPROVAL");
    assert!(it["statusReason"].as_str().unwrap().contains("AADSTS65001"));
    assert!(stored(&fx, &id).await.refresh_token_enc.is_none());
    // A Global Administrator approves the app; the same account signs in again.
    server
        .fake
        .edit(|d| d.tenants.values_mut().for_each(|t| t.app_approved = true));
    let admin = fx.admin().await;
    let data = fx.ok(&admin, REAUTH, json!({ "id": id })).await;
    let url = data["reauthenticateIntegration"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = authorize(&url, "user@contoso.example", true).await;
    let response = complete(&fx, &back).await;
    let it = &response["data"]["completeAuthorization"]["integration"];
    assert_eq!(it["status"], "ACTIVE", "{response}");
    assert_eq!(
        it["authorizedBy"], "user@contoso.example",
        "the account that authorised it is recorded"
    );
    assert!(it["statusReason"].is_null());
}

async fn cancelled_sign_in_waits_for_approval_and_says_both(mut fx: Fixture) {
    let _server = connected(&mut fx).await;
    let (_, url) = add(&fx, "GOOGLE_WORKSPACE", "Fabrikam").await;
    let back = authorize(&url, "admin@fabrikam.example", false).await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    // Google sends no subcode: a refusal is a consent problem for the admin to sort out.
    let response = complete(&fx, &back).await;
    assert_eq!(
        response["data"]["completeAuthorization"]["integration"]["status"],
        "AWAITING_ADMIN_APPROVAL"
    );
    // Entra's cancel is what its admin-consent workflow's "Request approval" also sends.
    let (_, url) = add(&fx, "ENTRA_ID", "Contoso").await;
    let back = authorize(&url, "admin@contoso.example", false).await;
    assert_eq!(param(&back, "error_subcode").as_deref(), Some("cancel"));
    let response = complete(&fx, &back).await;
    let it = &response["data"]["completeAuthorization"]["integration"];
    assert_eq!(it["status"], "AWAITING_ADMIN_APPROVAL");
    let reason = it["statusReason"].as_str().unwrap();
    assert!(
        reason.contains("cancelled") && reason.contains("approval"),
        "{reason}"
    );
    assert!(reason.contains("AADSTS65004"), "{reason}");
}

async fn entra_approval_request_waits_for_the_admin_then_completes(mut fx: Fixture) {
    let server = connected(&mut fx).await;
    let (id, url) = add(&fx, "ENTRA_ID", "Contoso").await;
    // A non-admin clicks "Request approval", then "Back to app".
    let back = authorize_with(&url, "user@contoso.example", "request_approval").await;
    assert_eq!(param(&back, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&back, "error_subcode").as_deref(), Some("cancel"));
    let response = complete(&fx, &back).await;
    let it = &response["data"]["completeAuthorization"]["integration"];
    assert_eq!(it["status"], "AWAITING_ADMIN_APPROVAL", "{response}");
    assert!(
        it["statusReason"]
            .as_str()
            .unwrap()
            .contains("once an administrator approves the app, sign in again")
    );
    assert!(stored(&fx, &id).await.refresh_token_enc.is_none());
    let requests = server
        .fake
        .directory()
        .tenants
        .into_values()
        .flat_map(|t| t.approval_requests);
    assert_eq!(requests.collect::<Vec<_>>(), ["user@contoso.example"]);
    // Later, a Global Administrator approves; the admin of dirgate finishes the sign-in.
    server
        .fake
        .edit(|d| d.tenants.values_mut().for_each(|t| t.app_approved = true));
    let admin = fx.admin().await;
    let data = fx.ok(&admin, REAUTH, json!({ "id": id })).await;
    let url = data["reauthenticateIntegration"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = authorize(&url, "user@contoso.example", true).await;
    let it = complete(&fx, &back).await["data"]["completeAuthorization"]["integration"].clone();
    assert_eq!(it["status"], "ACTIVE");
    assert!(it["statusReason"].is_null());
}

async fn state_is_single_use_and_expires(mut fx: Fixture) {
    let _server = connected(&mut fx).await;
    let (id, url) = add(&fx, "ENTRA_ID", "Contoso").await;
    let back = authorize(&url, "admin@contoso.example", true).await;
    assert_eq!(
        complete(&fx, &back).await["data"]["completeAuthorization"]["integration"]["status"],
        "ACTIVE"
    );
    fx.settle_syncs().await;
    let spent = oauth_authorization::Entity::find()
        .all(&fx.db)
        .await
        .unwrap();
    assert_eq!(spent.len(), 1);
    assert!(spent[0].consumed_at.is_some());
    assert_eq!(
        spent[0].code_verifier, "",
        "a spent authorization keeps no verifier"
    );
    let before = stored(&fx, &id).await;
    let replay = complete(&fx, &back).await;
    assert_eq!(
        user_error(&replay),
        ("INVALID_INPUT".into(), "input.state".into())
    );
    assert_eq!(stored(&fx, &id).await, before, "a replay changes nothing");

    let (id, url) = add(&fx, "ENTRA_ID", "Contoso Two").await;
    let back = authorize(&url, "admin@contoso.example", true).await;
    for pending in oauth_authorization::Entity::find()
        .all(&fx.db)
        .await
        .unwrap()
    {
        let mut row = pending.into_active_model();
        row.expires_at = Set(chrono::Utc::now() - chrono::Duration::seconds(1));
        row.update(&fx.db).await.unwrap();
    }
    let expired = complete(&fx, &back).await;
    assert_eq!(
        user_error(&expired),
        ("INVALID_INPUT".into(), "input.state".into())
    );
    let forgotten = dirgate::directory::connect::forget_spent_verifiers(&fx.db)
        .await
        .unwrap();
    assert_eq!(forgotten, 1, "the expired authorization's verifier");
    for row in oauth_authorization::Entity::find()
        .all(&fx.db)
        .await
        .unwrap()
    {
        assert_eq!(
            row.code_verifier, "",
            "an expired authorization keeps no verifier"
        );
    }
    assert_eq!(
        stored(&fx, &id).await.status,
        entity::enums::IntegrationStatus::AwaitingConsent
    );

    let mut unknown = back.clone();
    unknown
        .query_pairs_mut()
        .clear()
        .append_pair("state", "made-up")
        .append_pair("code", "x");
    assert_eq!(
        user_error(&complete(&fx, &unknown).await),
        ("INVALID_INPUT".into(), "input.state".into())
    );
}

async fn a_code_for_another_redirect_is_refused_and_changes_nothing(mut fx: Fixture) {
    let _server = connected(&mut fx).await;
    let (id, url) = add(&fx, "ENTRA_ID", "Contoso").await;
    let mut other = url::Url::parse(&url).unwrap();
    let pairs: Vec<(String, String)> = other
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "redirect_uri" {
                "https://evil.example/cb".to_string()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    other.query_pairs_mut().clear().extend_pairs(pairs);
    let back = authorize(other.as_str(), "admin@contoso.example", true).await;
    assert_eq!(back.host_str(), Some("evil.example"));
    let response = complete(&fx, &back).await;
    assert_eq!(
        user_error(&response),
        ("INVALID_INPUT".into(), "input.code".into())
    );
    assert!(
        response["data"]["completeAuthorization"]["userErrors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("redirect")
    );
    let row = stored(&fx, &id).await;
    assert_eq!(
        row.status,
        entity::enums::IntegrationStatus::AwaitingConsent
    );
    assert!(row.refresh_token_enc.is_none());
}

async fn add_integration_refuses_bad_input(mut fx: Fixture) {
    let _server = connected(&mut fx).await;
    add(&fx, "ENTRA_ID", "Contoso").await;
    let admin = fx.admin().await;
    let cases = [
        (
            json!({ "kind": "GOOGLE_WORKSPACE", "name": "  CONTOSO " }),
            ("NAME_TAKEN", "input.name"),
        ),
        (
            json!({ "kind": "ENTRA_ID", "name": "   " }),
            ("INVALID_INPUT", "input.name"),
        ),
        (
            json!({ "kind": "ENTRA_ID", "name": "x".repeat(65) }),
            ("INVALID_INPUT", "input.name"),
        ),
        (
            json!({ "kind": "ENTRA_ID", "name": "Fast", "syncIntervalMinutes": 1 }),
            ("INVALID_INPUT", "input.syncIntervalMinutes"),
        ),
        (
            json!({ "kind": "SCIM", "name": "  " }),
            ("INVALID_INPUT", "input.name"),
        ),
    ];
    for (input, (code, field)) in cases {
        let response = fx.gql(&admin, ADD, json!({ "input": input })).await;
        assert_eq!(
            user_error(&response),
            (code.into(), field.into()),
            "{input}"
        );
    }
    let viewer = fx.viewer().await;
    let response = fx
        .gql(
            &viewer,
            ADD,
            json!({ "input": { "kind": "ENTRA_ID", "name": "Viewer's" } }),
        )
        .await;
    assert_eq!(error_code(&response), "FORBIDDEN");
    assert_eq!(
        integration::Entity::find().count(&fx.db).await.unwrap(),
        1,
        "nothing else was added"
    );

    // A deployment without an OAuth client for the provider says so.
    fx.use_providers(dirgate::Config::defaults().provider_settings());
    let response = fx
        .gql(
            &admin,
            ADD,
            json!({ "input": { "kind": "ENTRA_ID", "name": "Unconfigured" } }),
        )
        .await;
    assert_eq!(
        user_error(&response),
        ("INVALID_INPUT".into(), "input.kind".into())
    );
    assert!(
        response["data"]["addIntegration"]["userErrors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("DIRGATE_ENTRA_CLIENT_ID")
    );
}

async fn reauthentication_swaps_the_grant_only_on_success(mut fx: Fixture) {
    let _server = connected(&mut fx).await;
    let (id, url) = add(&fx, "ENTRA_ID", "Contoso").await;
    let back = authorize(&url, "admin@contoso.example", true).await;
    complete(&fx, &back).await;
    fx.settle_syncs().await;
    let row = stored(&fx, &id).await;
    let user = fx.user(&row, "adele@contoso.example").create().await;
    fx.device("C02REAUTH", Some(&user)).await;
    let first_grant = row.refresh_token_enc.clone().unwrap();
    let admin = fx.admin().await;

    // A failed re-authentication: nothing changes.
    let data = fx.ok(&admin, REAUTH, json!({ "id": id })).await;
    assert_eq!(
        data["reauthenticateIntegration"]["integration"]["status"],
        "ACTIVE"
    );
    let url = data["reauthenticateIntegration"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = authorize(&url, "admin@contoso.example", false).await;
    assert_eq!(
        user_error(&complete(&fx, &back).await),
        ("INVALID_INPUT".into(), "input.error".into())
    );
    fx.settle_syncs().await;
    let after_failure = stored(&fx, &id).await;
    assert_eq!(
        after_failure.status,
        entity::enums::IntegrationStatus::Active
    );
    assert_eq!(after_failure.refresh_token_enc.as_ref(), Some(&first_grant));

    // A successful one: a new grant, same users and devices.
    let data = fx.ok(&admin, REAUTH, json!({ "id": id })).await;
    let url = data["reauthenticateIntegration"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    let back = authorize(&url, "admin@contoso.example", true).await;
    assert_eq!(
        complete(&fx, &back).await["data"]["completeAuthorization"]["integration"]["status"],
        "ACTIVE"
    );
    fx.settle_syncs().await;
    let after = stored(&fx, &id).await;
    let mut before = after.clone();
    before.refresh_token_enc = Some(first_grant.clone());
    let secrets = &fx.app.services.secrets;
    assert_ne!(
        open_refresh_token(secrets, &after).unwrap(),
        open_refresh_token(secrets, &before).unwrap()
    );
    let data = fx
        .ok(
            &admin,
            r#"{ users(filter: {search: "adele@contoso.example"}) { nodes { userName devices { nodes { serialNumber } } } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data["users"]["nodes"],
        json!([{ "userName": "adele@contoso.example", "devices": { "nodes": [{ "serialNumber": "C02REAUTH" }] } }]),
        "the user and its device stay"
    );
}

#[tokio::test]
async fn google_sign_in_through_the_callback_route() {
    let mut fx = Fixture::sqlite().await;
    let _server = connected(&mut fx).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(dirgate::http::serve(
        fx.app.clone(),
        listener,
        std::future::pending(),
    ));
    let (id, url) = add(&fx, "GOOGLE_WORKSPACE", "Fabrikam").await;
    let back = authorize(&url, "admin@fabrikam.example", true).await;
    // The browser follows the redirect to dirgate (here on its test port).
    let callback = format!("http://{addr}{}?{}", back.path(), back.query().unwrap());
    let page = reqwest::get(&callback).await.unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("ACTIVE") && text.contains("fabrikam.example"),
        "{text}"
    );
    let row = stored(&fx, &id).await;
    assert_eq!(row.status, entity::enums::IntegrationStatus::Active);
    assert_eq!(row.authorized_by.as_deref(), Some("admin@fabrikam.example"));
    // Following the same link again is refused.
    let again = reqwest::get(&callback).await.unwrap();
    assert_eq!(again.status(), 400);
}
