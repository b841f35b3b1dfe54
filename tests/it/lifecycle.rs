//! Deleting (R9), renaming (R3) and configuring integrations.

use crate::{
    on_both_databases,
    support::{Fixture, error_code, no_vars, user_error},
};
use entity::{audit_event, integration};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::json;

const DELETE: &str = r#"mutation($id: ID!, $name: String!) {
  deleteIntegration(input: {id: $id, confirmName: $name}) { deletedIntegrationId usersRemoved usersRetained userErrors { field message code } }
}"#;

fn gid(kind: &str, id: i64) -> String {
    dirgate::graphql::ids::encode(kind, id).0
}

on_both_databases!(
    delete_integration_refuses_a_wrong_name_and_changes_nothing,
    delete_integration_keeps_users_assigned_to_devices,
    rename_integration_updates_origins_and_refuses_taken_names,
    update_integration_settings_validates_and_resets,
);

async fn delete_integration_refuses_a_wrong_name_and_changes_nothing(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.user(&contoso, "adele@contoso.example").create().await;
    let admin = fx.admin().await;
    for typed in ["contoso", "Contos", "CONTOSO", ""] {
        let response = fx
            .gql(
                &admin,
                DELETE,
                json!({ "id": gid("Integration", contoso.id), "name": typed }),
            )
            .await;
        assert_eq!(
            user_error(&response),
            ("CONFIRMATION_MISMATCH".into(), "input.confirmName".into()),
            "{typed:?}"
        );
    }
    assert_eq!(integration::Entity::find().count(&fx.db).await.unwrap(), 1);
    let users = fx.ok(&admin, "{ users { totalCount } }", no_vars()).await;
    assert_eq!(users["users"]["totalCount"], 1);
    let viewer = fx.viewer().await;
    let response = fx
        .gql(
            &viewer,
            DELETE,
            json!({ "id": gid("Integration", contoso.id), "name": "Contoso" }),
        )
        .await;
    assert_eq!(error_code(&response), "FORBIDDEN");
}

async fn delete_integration_keeps_users_assigned_to_devices(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let other = fx.integration("Other").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    let alex = fx.user(&contoso, "alex@contoso.example").create().await;
    fx.user(&contoso, "megan@contoso.example").create().await;
    let outsider = fx.user(&other, "liz@other.example").create().await;
    fx.group(&contoso, "Sales", &[&adele, &alex]).await;
    fx.device("C02KEPT", Some(&adele)).await;
    let admin = fx.admin().await;
    let data = fx
        .ok(
            &admin,
            DELETE,
            json!({ "id": gid("Integration", contoso.id), "name": "  Contoso " }),
        )
        .await;
    let payload = &data["deleteIntegration"];
    assert_eq!(
        payload["deletedIntegrationId"],
        gid("Integration", contoso.id)
    );
    assert_eq!(payload["usersRemoved"], 2);
    assert_eq!(payload["usersRetained"], 1);
    let data = fx
        .ok(&admin, "{ users { nodes { userName status origin integration { name } devices { nodes { serialNumber } } groups { nodes { id } } } } groups { totalCount } integrations { totalCount } }", no_vars())
        .await;
    assert_eq!(
        data["users"]["nodes"],
        json!([
            { "userName": "adele@contoso.example", "status": "ARCHIVED", "origin": "Contoso", "integration": null,
              "devices": { "nodes": [{ "serialNumber": "C02KEPT" }] }, "groups": { "nodes": [] } },
            { "userName": "liz@other.example", "status": "ACTIVE", "origin": "Other", "integration": { "name": "Other" },
              "devices": { "nodes": [] }, "groups": { "nodes": [] } }
        ])
    );
    assert_eq!(data["groups"]["totalCount"], 0, "its groups went");
    assert_eq!(data["integrations"]["totalCount"], 1);
    let events = audit_event::Entity::find().all(&fx.db).await.unwrap();
    assert!(events.iter().any(|e| e.action == "deleteIntegration"));
    let _ = outsider;
}

async fn rename_integration_updates_origins_and_refuses_taken_names(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.integration("Fabrikam").create().await;
    fx.user(&contoso, "adele@contoso.example").create().await;
    let admin = fx.admin().await;
    let rename = "mutation($id: ID!, $name: String!) { renameIntegration(input: {id: $id, name: $name}) { integration { name } userErrors { field message code } } }";
    let data = fx
        .ok(
            &admin,
            rename,
            json!({ "id": gid("Integration", contoso.id), "name": " Contoso EMEA " }),
        )
        .await;
    assert_eq!(
        data["renameIntegration"]["integration"]["name"],
        "Contoso EMEA"
    );
    let users = fx
        .ok(&admin, "{ users { nodes { origin } } }", no_vars())
        .await;
    assert_eq!(users["users"]["nodes"][0]["origin"], "Contoso EMEA");
    let taken = fx
        .gql(
            &admin,
            rename,
            json!({ "id": gid("Integration", contoso.id), "name": "FABRIKAM" }),
        )
        .await;
    assert_eq!(
        user_error(&taken),
        ("NAME_TAKEN".into(), "input.name".into())
    );
    let same = fx
        .ok(
            &admin,
            rename,
            json!({ "id": gid("Integration", contoso.id), "name": "contoso emea" }),
        )
        .await;
    assert_eq!(
        same["renameIntegration"]["integration"]["name"], "contoso emea",
        "its own name in another case is fine"
    );
    let bad = fx
        .gql(
            &admin,
            rename,
            json!({ "id": gid("Integration", contoso.id), "name": "" }),
        )
        .await;
    assert_eq!(
        user_error(&bad),
        ("INVALID_INPUT".into(), "input.name".into())
    );
}

async fn update_integration_settings_validates_and_resets(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let admin = fx.admin().await;
    let update = "mutation($input: UpdateIntegrationSettingsInput!) { updateIntegrationSettings(input: $input) { integration { autoAssignDevices syncIntervalMinutes } userErrors { field message code } } }";
    let id = gid("Integration", contoso.id);
    let data = fx
        .ok(
            &admin,
            update,
            json!({ "input": { "id": id, "autoAssignDevices": true, "syncIntervalMinutes": 60 } }),
        )
        .await;
    assert_eq!(
        data["updateIntegrationSettings"]["integration"],
        json!({ "autoAssignDevices": true, "syncIntervalMinutes": 60 })
    );
    let data = fx
        .ok(&admin, update, json!({ "input": { "id": id } }))
        .await;
    assert_eq!(
        data["updateIntegrationSettings"]["integration"],
        json!({ "autoAssignDevices": true, "syncIntervalMinutes": 60 }),
        "left out: unchanged"
    );
    let data = fx
        .ok(
            &admin,
            update,
            json!({ "input": { "id": id, "syncIntervalMinutes": null } }),
        )
        .await;
    assert!(
        data["updateIntegrationSettings"]["integration"]["syncIntervalMinutes"].is_null(),
        "null: back to the default"
    );
    for minutes in [0, 14, 43_201] {
        let response = fx
            .gql(
                &admin,
                update,
                json!({ "input": { "id": id, "syncIntervalMinutes": minutes } }),
            )
            .await;
        assert_eq!(
            user_error(&response),
            ("INVALID_INPUT".into(), "input.syncIntervalMinutes".into()),
            "{minutes}"
        );
    }
}
