//! Every object with an id is a `Node`: `node(id:)` and `nodes(ids:)` refetch each kind, with
//! the same permissions as its list; and `viewer` says who is calling.

use crate::{
    on_both_databases,
    support::{Fixture, error_code, no_vars},
};
use serde_json::json;

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id } }";
const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";

on_both_databases!(
    node_resolves_every_kind_with_its_permissions,
    nodes_answer_in_order_with_null_for_missing_and_are_bounded,
    viewer_says_the_token_and_its_role,
);

async fn node_resolves_every_kind_with_its_permissions(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.user(&contoso, "adele@contoso.example").create().await;
    let admin = fx.admin().await;
    let viewer = fx.viewer().await;
    let registered = fx
        .ok(
            &admin,
            "mutation { registerDevice(input: {serialNumber: \"C02NODE\", name: \"Mac\", platform: MACOS}) { device { id } userErrors { code } } }",
            no_vars(),
        )
        .await;
    let device = registered["registerDevice"]["device"]["id"].clone();
    let hook = fx
        .ok(
            &admin,
            "mutation { createWebhookEndpoint(input: {url: \"https://hooks.example.com/x\"}) { webhookEndpoint { id } userErrors { code } } }",
            no_vars(),
        )
        .await["createWebhookEndpoint"]["webhookEndpoint"]["id"]
        .clone();
    let audit = fx
        .ok(
            &admin,
            "{ auditEvents(first: 1) { nodes { id } } }",
            no_vars(),
        )
        .await["auditEvents"]["nodes"][0]["id"]
        .clone();
    let event = fx
        .ok(&admin, "{ events(first: 1) { nodes { id } } }", no_vars())
        .await["events"]["nodes"][0]["id"]
        .clone();
    for (id, kind) in [
        (&device, "Device"),
        (&hook, "WebhookEndpoint"),
        (&audit, "AuditEvent"),
        (&event, "DirectoryEvent"),
    ] {
        let data = fx.ok(&admin, NODE, json!({ "id": id })).await;
        assert_eq!(data["node"]["__typename"], kind, "{id}");
        assert_eq!(&data["node"]["id"], id);
    }
    // The audit log and webhook endpoints are ADMIN-only here as in their lists.
    for id in [&hook, &audit] {
        let refused = fx.gql(&viewer, NODE, json!({ "id": id })).await;
        assert_eq!(error_code(&refused), "FORBIDDEN", "{id}");
    }
    let data = fx.ok(&viewer, NODE, json!({ "id": event })).await;
    assert_eq!(data["node"]["__typename"], "DirectoryEvent");
    // An id that names nothing is null; a malformed one INVALID_INPUT.
    let gone = dirgate::graphql::ids::encode("AuditEvent", 999_999).0;
    assert!(fx.ok(&admin, NODE, json!({ "id": gone })).await["node"].is_null());
    let bad = fx.gql(&admin, NODE, json!({ "id": "nope" })).await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");
}

async fn nodes_answer_in_order_with_null_for_missing_and_are_bounded(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    let admin = fx.admin().await;
    let user = dirgate::graphql::ids::encode("User", adele.id).0;
    let integration = dirgate::graphql::ids::encode("Integration", contoso.id).0;
    let missing = dirgate::graphql::ids::encode("Group", 424_242).0;
    let data = fx
        .ok(
            &admin,
            NODES,
            json!({ "ids": [user, missing, integration] }),
        )
        .await;
    let nodes = data["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 3);
    assert_eq!(nodes[0]["__typename"], "User");
    assert!(nodes[1].is_null());
    assert_eq!(nodes[2]["__typename"], "Integration");
    let many: Vec<String> = (0..101).map(|_| user.clone()).collect();
    let refused = fx.gql(&admin, NODES, json!({ "ids": many })).await;
    assert_eq!(error_code(&refused), "LIMIT_EXCEEDED");
    assert_eq!(refused["errors"][0]["extensions"]["max"], 100);
}

async fn viewer_says_the_token_and_its_role(fx: Fixture) {
    let admin = fx.admin().await;
    let viewer = fx.viewer().await;
    let query = "{ viewer { tokenName role } }";
    let data = fx.ok(&admin, query, no_vars()).await;
    assert_eq!(
        data["viewer"],
        json!({ "tokenName": "test", "role": "ADMIN" })
    );
    let data = fx.ok(&viewer, query, no_vars()).await;
    assert_eq!(data["viewer"]["role"], "VIEWER");
    let anonymous = fx
        .gql(&dirgate::graphql::Authentication::Missing, query, no_vars())
        .await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
}
