//! API tokens, roles and the audit log (docs/rules.md, "Who may call what").

use crate::{
    on_both_databases,
    support::{Fixture, error_code, no_vars},
};
use dirgate::{
    auth::{Admin, TokenRole},
    directory::tokens,
    graphql::Authentication,
};
use entity::{api_token, audit_event, device};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

const REGISTER: &str = r#"mutation($serial: String!) {
  registerDevice(input: {serialNumber: $serial, name: "Mac", platform: MACOS}) { id serialNumber }
}"#;

on_both_databases!(
    query_without_token_is_unauthenticated,
    query_with_unknown_token_is_unauthenticated,
    revoked_token_stops_working_at_once,
    viewer_reads_but_mutation_is_forbidden_and_changes_nothing,
    tokens_are_stored_only_as_hashes,
    mutation_writes_an_audit_event,
);

async fn query_without_token_is_unauthenticated(fx: Fixture) {
    let response = fx
        .gql(
            &Authentication::Missing,
            "{ users { totalCount } }",
            no_vars(),
        )
        .await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert!(response["data"].is_null());
}

async fn query_with_unknown_token_is_unauthenticated(fx: Fixture) {
    let real = fx.token(TokenRole::Admin).await;
    // Right id, wrong secret; and a token of another shape.
    let prefix = real.splitn(3, '_').take(2).collect::<Vec<_>>().join("_");
    for presented in [
        format!("{prefix}_wrongsecret"),
        "not-a-token".to_string(),
        "dg_999_x".into(),
    ] {
        let auth = fx.app.authenticate(Some(&presented)).await;
        let response = fx.gql(&auth, "{ users { totalCount } }", no_vars()).await;
        assert_eq!(error_code(&response), "UNAUTHENTICATED", "{presented}");
    }
}

async fn revoked_token_stops_working_at_once(fx: Fixture) {
    let token = fx.token(TokenRole::Admin).await;
    let auth = fx.app.authenticate(Some(&token)).await;
    fx.ok(&auth, "{ users { totalCount } }", no_vars()).await;
    let id: i64 = token.split('_').nth(1).unwrap().parse().unwrap();
    tokens::revoke(&fx.db, &Admin::cli(), id).await.unwrap();
    let auth = fx.app.authenticate(Some(&token)).await;
    let response = fx.gql(&auth, "{ users { totalCount } }", no_vars()).await;
    assert_eq!(error_code(&response), "UNAUTHENTICATED");
    assert!(
        response["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("revoked")
    );
}

async fn viewer_reads_but_mutation_is_forbidden_and_changes_nothing(fx: Fixture) {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(&viewer, "{ devices { totalCount } }", no_vars())
        .await;
    assert_eq!(data["devices"]["totalCount"], 0);
    let response = fx
        .gql(&viewer, REGISTER, json!({"serial": "C02VIEW"}))
        .await;
    assert_eq!(error_code(&response), "FORBIDDEN");
    assert_eq!(device::Entity::find().count(&fx.db).await.unwrap(), 0);
}

async fn tokens_are_stored_only_as_hashes(fx: Fixture) {
    let token = fx.token(TokenRole::Viewer).await;
    let secret = token.splitn(3, '_').nth(2).unwrap();
    let rows = api_token::Entity::find().all(&fx.db).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].secret_hash.len(), 64, "a hex SHA-256");
    assert!(!rows[0].secret_hash.contains(secret));
    assert!(
        !rows[0].hint.contains(secret),
        "the hint must not reveal the secret"
    );
    assert!(token.starts_with(&rows[0].hint));
}

async fn mutation_writes_an_audit_event(fx: Fixture) {
    let admin = fx.admin().await;
    let before = audit_event::Entity::find().count(&fx.db).await.unwrap();
    let data = fx.ok(&admin, REGISTER, json!({"serial": "c02audit"})).await;
    assert_eq!(data["registerDevice"]["serialNumber"], "C02AUDIT");
    let events = audit_event::Entity::find().all(&fx.db).await.unwrap();
    assert_eq!(events.len() as u64, before + 1);
    let event = events.last().unwrap();
    assert_eq!(event.action, "registerDevice");
    assert_eq!(event.target_type.as_deref(), Some("Device"));
    assert!(event.actor.starts_with("token:"), "who: {}", event.actor);
    assert!(event.actor_token_id.is_some());
    assert!(event.details.as_deref().unwrap().contains("C02AUDIT"));
}
