//! The audit log through the API: `auditEvents`, newest first, filtered by action, target and
//! time, paged, for ADMIN tokens only. On SQLite and PostgreSQL.

use crate::{
    on_both_databases,
    support::{Fixture, error_code},
};
use serde_json::json;

const EVENTS: &str = r#"query($first: Int, $after: String, $filter: AuditEventFilter) {
  auditEvents(first: $first, after: $after, filter: $filter) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id actor action targetType targetId details createdAt }
  }
}"#;

on_both_databases!(audit_events_list_every_mutation_newest_first_for_admins);

async fn audit_events_list_every_mutation_newest_first_for_admins(fx: Fixture) {
    let integration = fx.integration("Okta").create().await;
    let id = dirgate::graphql::ids::encode("Integration", integration.id);
    let admin = fx.admin().await;
    for name in ["Okta A", "Okta B"] {
        fx.ok(
            &admin,
            "mutation($id: ID!, $name: String!) { renameIntegration(input: {id: $id, name: $name}) { integration { id } userErrors { field message code } } }",
            json!({ "id": id.as_str(), "name": name }),
        )
        .await;
    }
    fx.ok(
        &admin,
        "mutation { registerDevice(input: { serialNumber: \"C02AUDIT\", name: \"Mac\", platform: MACOS }) { device { id } userErrors { field message code } } }",
        json!({}),
    )
    .await;

    // Newest first, with who, what, on what.
    let all = fx.ok(&admin, EVENTS, json!({ "first": 2 })).await;
    let page = &all["auditEvents"];
    let nodes = page["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["action"], "REGISTER_DEVICE");
    assert_eq!(nodes[0]["targetType"], "DEVICE");
    assert_eq!(nodes[1]["action"], "RENAME_INTEGRATION");
    assert_eq!(nodes[1]["targetId"], id.as_str());
    assert!(nodes[1]["actor"].as_str().unwrap().starts_with("token:"));
    assert!(nodes[1]["details"].as_str().unwrap().contains("Okta B"));
    assert!(page["totalCount"].as_i64().unwrap() >= 3);
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    // The next page goes on where the first ended.
    let next = fx
        .ok(
            &admin,
            EVENTS,
            json!({ "first": 1, "after": page["pageInfo"]["endCursor"] }),
        )
        .await;
    let next = &next["auditEvents"]["nodes"][0];
    assert_eq!(next["action"], "RENAME_INTEGRATION");
    assert!(next["details"].as_str().unwrap().contains("Okta A"));

    // Filters: action, target, time.
    let renames = fx
        .ok(
            &admin,
            EVENTS,
            json!({ "filter": { "action": "RENAME_INTEGRATION", "targetId": id.as_str() } }),
        )
        .await;
    assert_eq!(renames["auditEvents"]["totalCount"], 2);
    let later = fx
        .ok(
            &admin,
            EVENTS,
            json!({ "filter": { "since": "2999-01-01T00:00:00Z" } }),
        )
        .await;
    assert_eq!(later["auditEvents"]["totalCount"], 0);

    // Bad input is a typed error; viewers may not read the log.
    let bad = fx
        .gql(
            &admin,
            EVENTS,
            json!({ "filter": { "targetId": "not-an-id" } }),
        )
        .await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");
    let long = fx
        .gql(
            &admin,
            EVENTS,
            json!({ "filter": { "action": "x".repeat(65) } }),
        )
        .await;
    // Actions are an enum: the schema refuses one that is not.
    assert_eq!(error_code(&long), "GRAPHQL_VALIDATION_FAILED");
    let viewer = fx.viewer().await;
    let refused = fx.gql(&viewer, EVENTS, json!({})).await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
}
