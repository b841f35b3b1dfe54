//! SCIM integrations (R13): added ACTIVE with a token shown once and stored as a hash, a base
//! URL of their own, rotation at once. On SQLite and PostgreSQL.

use crate::{
    on_both_databases,
    support::{Fixture, error_code},
};
use sea_orm::EntityTrait;
use serde_json::{Value, json};

on_both_databases!(
    a_scim_integration_gets_a_base_url_and_a_token_shown_once,
    rotating_a_scim_token_replaces_it,
);

const ADD_SCIM: &str = "mutation($name: String!) { addIntegration(input: { kind: SCIM, name: $name }) { authorizationUrl scimBaseUrl scimToken integration { id kind status scimBaseUrl scimTokenHint } } }";

/// Adds a SCIM integration; returns its payload.
pub(crate) async fn add_scim(fx: &Fixture, name: &str) -> Value {
    let admin = fx.admin().await;
    fx.ok(&admin, ADD_SCIM, json!({ "name": name })).await["addIntegration"].clone()
}

async fn a_scim_integration_gets_a_base_url_and_a_token_shown_once(fx: Fixture) {
    let added = add_scim(&fx, "Okta").await;
    let token = added["scimToken"].as_str().unwrap().to_owned();
    assert!(token.starts_with("dgscim_") && token.len() > 40, "{token}");
    assert!(added["authorizationUrl"].is_null());
    let integration = &added["integration"];
    assert_eq!(integration["kind"], "SCIM");
    assert_eq!(
        integration["status"], "ACTIVE",
        "a SCIM integration needs no sign-in"
    );
    let base = added["scimBaseUrl"].as_str().unwrap();
    assert_eq!(integration["scimBaseUrl"], base);
    assert!(base.contains("/scim/v2/"), "{base}");
    let hint = integration["scimTokenHint"].as_str().unwrap();
    assert!(hint.ends_with(&token[token.len() - 4..]), "{hint}");
    assert!(!hint.contains(&token[7..20]), "the hint is not the token");

    // Later reads never show the token; the database holds only a hash.
    let viewer = fx.viewer().await;
    let details = fx
        .ok(
            &viewer,
            "query($id: ID!) { integration(id: $id) { scimBaseUrl scimTokenHint } }",
            json!({ "id": integration["id"] }),
        )
        .await;
    assert!(!details.to_string().contains(&token));
    let row = entity::integration::Entity::find()
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    let stored = row.scim_token_hash.unwrap();
    assert_ne!(stored, token);
    assert!(!stored.contains(&token[7..]));

    // Names stay unique across kinds (R3).
    let admin = fx.admin().await;
    let again = fx.gql(&admin, ADD_SCIM, json!({ "name": "okta" })).await;
    assert_eq!(error_code(&again), "NAME_TAKEN");
}

async fn rotating_a_scim_token_replaces_it(fx: Fixture) {
    let added = add_scim(&fx, "Okta").await;
    let id = added["integration"]["id"].clone();
    let admin = fx.admin().await;
    const ROTATE: &str = "mutation($id: ID!) { rotateScimToken(id: $id) { scimToken integration { scimTokenHint } } }";
    let rotated = fx.ok(&admin, ROTATE, json!({ "id": id })).await["rotateScimToken"].clone();
    let token = rotated["scimToken"].as_str().unwrap();
    assert_ne!(token, added["scimToken"].as_str().unwrap());
    assert!(
        rotated["integration"]["scimTokenHint"]
            .as_str()
            .unwrap()
            .ends_with(&token[token.len() - 4..])
    );
    let viewer = fx.viewer().await;
    assert_eq!(
        error_code(&fx.gql(&viewer, ROTATE, json!({ "id": id })).await),
        "FORBIDDEN"
    );
    // Only SCIM integrations have a SCIM token.
    let entra = fx.integration("Contoso").create().await;
    let refused = fx
        .gql(
            &admin,
            ROTATE,
            json!({ "id": dirgate::graphql::ids::encode("Integration", entra.id).as_str() }),
        )
        .await;
    assert_eq!(error_code(&refused), "INVALID_INPUT");
}
