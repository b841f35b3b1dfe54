//! Every object with an id is a `Node`: `node(id:)` and `nodes(ids:)` refetch each kind, with
//! the same permissions as its list; and `viewer` says who is calling.

use crate::{
    on_both_databases,
    support::{Fixture, error_code, no_vars},
};
use serde_json::{Value, json};

const NODE: &str = "query($id: ID!) { node(id: $id) { __typename id } }";
const NODES: &str = "query($ids: [ID!]!) { nodes(ids: $ids) { __typename id } }";

on_both_databases!(
    node_resolves_every_kind_with_its_permissions,
    nodes_answer_in_order_with_null_for_missing_and_are_bounded,
    viewer_says_the_token_and_its_role,
    references_resolve_to_their_objects_while_they_exist,
    a_page_of_references_reads_one_statement_per_kind,
    nodes_of_many_kinds_are_read_together,
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

const REFERENCES: &str = r#"{
  events(first: 100) { nodes { type objectType objectId object { __typename id }
    integrationId integration { name } } }
  auditEvents(first: 100) { nodes { action targetType targetId target { __typename id } } }
}"#;

/// `DirectoryEvent.object`, `DirectoryEvent.integration` and `AuditEvent.target` are the
/// objects their ids name, while those exist; null once deleted, the ids still there.
async fn references_resolve_to_their_objects_while_they_exist(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let admin = fx.admin().await;
    let integration = dirgate::graphql::ids::encode("Integration", contoso.id).0;
    fx.ok(
        &admin,
        "mutation($id: ID!) { renameIntegration(input: {id: $id, name: \"Contoso EU\"}) { userErrors { code } } }",
        json!({ "id": integration }),
    )
    .await;
    fx.ok(
        &admin,
        "mutation { registerDevice(input: {serialNumber: \"C02REF\", name: \"Mac\", platform: MACOS}) { userErrors { code } } }",
        no_vars(),
    )
    .await;
    let data = fx.ok(&admin, REFERENCES, no_vars()).await;
    let events = data["events"]["nodes"].as_array().unwrap();
    assert!(events.len() >= 2, "{data}");
    for event in events {
        assert_eq!(event["object"]["id"], event["objectId"], "{event}");
        let kind = event["objectType"].as_str().unwrap();
        let typename = match kind {
            "INTEGRATION" => "Integration",
            "DEVICE" => "Device",
            other => panic!("unexpected {other}"),
        };
        assert_eq!(event["object"]["__typename"], typename, "{event}");
        if kind == "INTEGRATION" {
            assert_eq!(event["integrationId"], integration.as_str());
            assert_eq!(event["integration"]["name"], "Contoso EU");
        } else {
            assert!(event["integration"].is_null(), "{event}");
        }
    }
    let audit = data["auditEvents"]["nodes"].as_array().unwrap();
    let renamed = audit
        .iter()
        .find(|a| a["action"] == "RENAME_INTEGRATION")
        .expect("the rename is audited");
    assert_eq!(renamed["target"]["__typename"], "Integration");
    assert_eq!(renamed["target"]["id"], renamed["targetId"]);
    let registered = audit
        .iter()
        .find(|a| a["action"] == "REGISTER_DEVICE")
        .expect("the device is audited");
    assert_eq!(registered["target"]["__typename"], "Device");
    assert_eq!(registered["target"]["id"], registered["targetId"]);

    // Once the integration is deleted its references are null, their ids kept.
    fx.ok(
        &admin,
        "mutation($id: ID!) { deleteIntegration(input: {id: $id, confirmName: \"Contoso EU\"}) { userErrors { code } } }",
        json!({ "id": integration }),
    )
    .await;
    let data = fx.ok(&admin, REFERENCES, no_vars()).await;
    let of_integration: Vec<&serde_json::Value> = data["events"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["objectType"] == "INTEGRATION")
        .collect();
    assert!(!of_integration.is_empty());
    for event in of_integration {
        assert_eq!(event["objectId"], integration.as_str());
        assert!(event["object"].is_null(), "{event}");
        assert!(event["integration"].is_null(), "{event}");
    }
    let audit = data["auditEvents"]["nodes"].as_array().unwrap();
    let renamed = audit
        .iter()
        .find(|a| a["action"] == "RENAME_INTEGRATION")
        .unwrap();
    assert_eq!(renamed["targetId"], integration.as_str());
    assert!(renamed["target"].is_null(), "{renamed}");
}

/// The objects of a page of events are read through the loader: the statements do not grow
/// with the page. (One root list: two roots may land their keys in one wave or two, as
/// ARCHITECTURE's Batching section says.)
async fn a_page_of_references_reads_one_statement_per_kind(fx: Fixture) {
    const EVENTS: &str = "{ events(first: 100) { nodes { objectId object { __typename id } integration { name } } } }";
    let admin = fx.admin().await;
    let register = |n: usize| {
        format!(
            "mutation {{ registerDevice(input: {{serialNumber: \"C02N{n:03}\", name: \"Mac\", platform: MACOS}}) {{ userErrors {{ code }} }} }}"
        )
    };
    let mut counts = Vec::new();
    let mut made = 0;
    for total in [3, 30] {
        while made < total {
            fx.ok(&admin, &register(made), no_vars()).await;
            made += 1;
        }
        // The fewest of three runs: a statement of the request's own bookkeeping (the
        // token's `last_used_at`) may land in any of them.
        let mut fewest = usize::MAX;
        let mut data = Value::Null;
        for _ in 0..3 {
            fx.reset_statements();
            data = fx.ok(&admin, EVENTS, no_vars()).await;
            fewest = fewest.min(fx.statements());
        }
        counts.push(fewest);
        let objects = data["events"]["nodes"].as_array().unwrap();
        assert_eq!(objects.len(), total);
        assert!(
            objects
                .iter()
                .all(|e| e["object"]["__typename"] == "Device")
        );
    }
    assert_eq!(
        counts[0], counts[1],
        "statements for 3 and 30 events: {counts:?}"
    );
}

/// `nodes(ids:)` of several kinds answers each, in order, reading them together.
async fn nodes_of_many_kinds_are_read_together(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let mut ids = Vec::new();
    for n in 0..10 {
        let user = fx
            .user(&contoso, &format!("u{n}@contoso.example"))
            .create()
            .await;
        ids.push(dirgate::graphql::ids::encode("User", user.id).0);
        ids.push(dirgate::graphql::ids::encode("Integration", contoso.id).0);
    }
    let admin = fx.admin().await;
    fx.reset_statements();
    let data = fx.ok(&admin, NODES, json!({ "ids": ids })).await;
    let statements = fx.statements();
    let nodes = data["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 20);
    for (node, id) in nodes.iter().zip(&ids) {
        assert_eq!(&node["id"], id);
    }
    assert!(
        statements <= 3,
        "20 nodes of two kinds took {statements} statements"
    );
}
