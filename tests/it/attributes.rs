//! A synced user attribute end to end, through every source: `employeeType` (added as one
//! descriptor in `src/providers/fields.rs`, a migration and the entity's column). Entra's
//! delta read and Google's full read import it, change it (one `user.updated` naming it) and
//! clear it; a SCIM client sets it as `userType` and filters on it; GraphQL shows it.

use crate::{
    on_both_databases,
    scim::ScimClient,
    support::Fixture,
    sync::{connect, started, sync, tenant_users},
};
use fake_directory::Kind;
use serde_json::{Value, json};

on_both_databases!(
    entra_and_google_import_change_and_clear_an_attribute,
    a_scim_client_sets_and_filters_an_attribute,
);

/// Each user's `employeeType` by external id.
async fn employee_types(fx: &Fixture) -> Vec<(String, Value)> {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "{ users(first: 100) { nodes { externalId employeeType } } }",
            json!({}),
        )
        .await;
    data["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["externalId"].as_str().unwrap().to_owned(),
                u["employeeType"].clone(),
            )
        })
        .collect()
}

/// The `user.updated` events about `external` since the start, newest last.
pub(crate) async fn updates_of(fx: &Fixture, external: &str) -> Vec<Value> {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            r#"{ events(first: 100, filter: { types: [USER_UPDATED] }) {
                 edges { node { data } } pageInfo { hasNextPage } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(data["events"]["pageInfo"]["hasNextPage"], false);
    data["events"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .filter(|e| e["data"]["state"]["externalId"] == external)
        .collect()
}

async fn entra_and_google_import_change_and_clear_an_attribute(fx: Fixture) {
    let (fx, server) = started(fx, 10).await;
    for (kind, name, directory) in [
        (Kind::Entra, "ENTRA_ID", "Contoso"),
        (Kind::Google, "GOOGLE_WORKSPACE", "Fabrikam"),
    ] {
        let id = connect(&fx, name, directory, false).await;
        let users = tenant_users(&server, kind);
        let (changed, cleared) = (users[0].clone(), users[1].clone());
        let imported = employee_types(&fx).await;
        let of = |types: &[(String, Value)], external: &str| {
            types.iter().find(|(e, _)| e == external).unwrap().1.clone()
        };
        let directory_types = server.fake.directory().tenants[&server.tenant(kind)]
            .users
            .clone();
        for external in &users {
            assert_eq!(
                of(&imported, external),
                json!(directory_types[external].employee_type),
                "{name}: imported as the directory has it"
            );
        }
        assert!(of(&imported, &changed).is_string(), "the fake sets one");

        let key = server.tenant(kind);
        server.fake.edit(|d| {
            let t = d.tenants.get_mut(&key).unwrap();
            t.change_user(&changed, |u| u.employee_type = Some("Intern".into()))
                .unwrap();
            t.change_user(&cleared, |u| u.employee_type = None).unwrap();
        });
        let run = sync(&fx, &id).await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        let after = employee_types(&fx).await;
        assert_eq!(of(&after, &changed), "Intern", "{name}: changed");
        assert_eq!(of(&after, &cleared), Value::Null, "{name}: cleared");
        for external in [&changed, &cleared] {
            let updates = updates_of(&fx, external).await;
            assert_eq!(updates.len(), 1, "{name}: one update: {updates:#?}");
            assert_eq!(updates[0]["data"]["changedFields"], json!(["employeeType"]));
        }
        assert_eq!(
            updates_of(&fx, &changed).await[0]["data"]["state"]["employeeType"],
            "Intern"
        );
        assert_eq!(
            updates_of(&fx, &cleared).await[0]["data"]["state"]["employeeType"],
            Value::Null
        );
        // Unchanged: no write, no event.
        sync(&fx, &id).await;
        assert_eq!(updates_of(&fx, &changed).await.len(), 1);
    }
}

async fn a_scim_client_sets_and_filters_an_attribute(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let user = |name: &str, kind: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": name,
            "userType": kind,
        })
    };
    let (status, contractor) = scim
        .call("POST", "/Users", Some(user("c@okta.example", "Contractor")))
        .await;
    assert_eq!(status, 201, "{contractor}");
    assert_eq!(contractor["userType"], "Contractor", "rendered as sent");
    let (status, _) = scim
        .call("POST", "/Users", Some(user("e@okta.example", "Employee")))
        .await;
    assert_eq!(status, 201);
    let (status, found) = scim
        .call(
            "GET",
            "/Users?filter=userType%20eq%20%22contractor%22",
            None,
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["userName"], "c@okta.example");
    let types = employee_types(&fx).await;
    assert!(types.iter().any(|(_, t)| t == "Contractor"), "{types:?}");
    assert!(types.iter().any(|(_, t)| t == "Employee"), "{types:?}");

    let id = contractor["id"].as_str().unwrap();
    let (status, _) = scim
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{ "op": "replace", "path": "userType", "value": "Employee" }]
            })),
        )
        .await;
    assert_eq!(status, 200);
    let updates = updates_of(&fx, id).await;
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert_eq!(updates[0]["data"]["changedFields"], json!(["employeeType"]));
}
