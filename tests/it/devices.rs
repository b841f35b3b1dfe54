//! Devices: registration, manual assignment (R11) and automatic assignment (R12).

use crate::{
    on_both_databases,
    support::{Fixture, no_vars, user_error},
};
use entity::{
    device,
    enums::{DirectoryKind, UserStatus},
};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};

const REGISTER: &str = r#"mutation($input: RegisterDeviceInput!) {
  registerDevice(input: $input) { device {
    id serialNumber name platform model osVersion enrollmentIdentity
    user { userName } assignment { source }
  } userErrors { field message code } }
}"#;
const ASSIGN: &str = r#"mutation($device: ID!, $user: ID!) {
  assignDeviceUser(input: {deviceId: $device, userId: $user}) { device { id user { userName devices { nodes { serialNumber } } } assignment { source } } userErrors { field message code } }
}"#;
const UNASSIGN: &str = r#"mutation($device: ID!) {
  unassignDeviceUser(input: {deviceId: $device}) { device { id user { userName } assignment { source } } userErrors { field message code } }
}"#;

fn input(serial: &str, identity: Option<&str>) -> Value {
    json!({ "input": {
        "serialNumber": serial, "name": "Adele's Mac", "platform": "MACOS",
        "model": "Mac14,2", "osVersion": "15.1", "enrollmentIdentity": identity,
    } })
}

fn gid(kind: &str, id: i64) -> String {
    dirgate::graphql::ids::encode(kind, id).0
}

on_both_databases!(
    register_device_normalises_and_returns_it,
    register_device_with_a_taken_serial_is_refused,
    register_device_with_bad_input_changes_nothing,
    register_device_assigns_the_one_matching_user,
    register_device_matches_upn_email_and_alias_case_insensitively,
    register_device_assigns_nobody_when_the_match_is_not_unique_or_not_eligible,
    assign_device_user_sets_and_replaces_the_manual_assignment,
    assign_device_user_refuses_an_archived_user,
    assign_device_user_with_unknown_or_malformed_ids,
    unassign_device_user_clears_the_assignment,
    a_user_may_have_several_devices,
);

async fn register_device_normalises_and_returns_it(fx: Fixture) {
    let admin = fx.admin().await;
    let data = fx.ok(&admin, REGISTER, input("  c02-xyz1 ", None)).await;
    let device = &data["registerDevice"]["device"];
    assert_eq!(device["serialNumber"], "C02-XYZ1");
    assert_eq!(device["platform"], "MACOS");
    assert_eq!(device["model"], "Mac14,2");
    assert!(device["user"].is_null());
    assert!(device["assignment"].is_null());
    let listed = fx
        .ok(&admin, "{ devices { totalCount nodes { id } } }", no_vars())
        .await;
    assert_eq!(listed["devices"]["totalCount"], 1);
    assert_eq!(listed["devices"]["nodes"][0]["id"], device["id"]);
}

async fn register_device_with_a_taken_serial_is_refused(fx: Fixture) {
    let admin = fx.admin().await;
    fx.ok(&admin, REGISTER, input("C02DUP", None)).await;
    let response = fx.gql(&admin, REGISTER, input("c02dup", None)).await;
    assert_eq!(
        user_error(&response),
        ("ALREADY_EXISTS".into(), "input.serialNumber".into())
    );
    assert_eq!(device::Entity::find().count(&fx.db).await.unwrap(), 1);
}

async fn register_device_with_bad_input_changes_nothing(fx: Fixture) {
    let admin = fx.admin().await;
    let cases = [
        (input("", None), "serialNumber"),
        (input("C02 SPACE", None), "serialNumber"),
        (input(&"X".repeat(65), None), "serialNumber"),
        (input("C02OK", Some("not-an-address")), "enrollmentIdentity"),
        (input("C02OK", Some("a b@c.example")), "enrollmentIdentity"),
        (
            json!({ "input": { "serialNumber": "C02OK", "name": "   ", "platform": "IOS" } }),
            "name",
        ),
    ];
    for (vars, field) in cases {
        let response = fx.gql(&admin, REGISTER, vars.clone()).await;
        assert_eq!(
            user_error(&response),
            ("INVALID_INPUT".into(), format!("input.{field}")),
            "{vars}"
        );
    }
    // A platform outside the enum is refused by the schema itself.
    let response = fx
        .gql(
            &admin,
            REGISTER,
            json!({ "input": { "serialNumber": "C02OK", "name": "x", "platform": "BEOS" } }),
        )
        .await;
    assert!(response["errors"].as_array().is_some_and(|e| !e.is_empty()));
    assert_eq!(device::Entity::find().count(&fx.db).await.unwrap(), 0);
}

async fn register_device_assigns_the_one_matching_user(fx: Fixture) {
    let contoso = fx.integration("Contoso").auto_assign().create().await;
    fx.user(&contoso, "adele@contoso.example").create().await;
    let admin = fx.admin().await;
    let data = fx
        .ok(
            &admin,
            REGISTER,
            input("C02AUTO", Some("Adele@Contoso.example")),
        )
        .await;
    assert_eq!(
        data["registerDevice"]["device"]["user"]["userName"],
        "adele@contoso.example"
    );
    assert_eq!(
        data["registerDevice"]["device"]["assignment"]["source"],
        "AUTOMATIC"
    );
    assert_eq!(
        data["registerDevice"]["device"]["enrollmentIdentity"],
        "Adele@Contoso.example"
    );
}

async fn register_device_matches_upn_email_and_alias_case_insensitively(fx: Fixture) {
    let contoso = fx.integration("Contoso").auto_assign().create().await;
    fx.user(&contoso, "upn.only@contoso.onmicrosoft.example")
        .email(None)
        .create()
        .await;
    fx.user(&contoso, "bob@contoso.onmicrosoft.example")
        .email(Some("Bob.Mail@contoso.example"))
        .create()
        .await;
    fx.user(&contoso, "carol@contoso.example")
        .alias("CAROL.ALIAS@contoso.example")
        .create()
        .await;
    let admin = fx.admin().await;
    for (serial, identity, expected) in [
        (
            "C02UPN",
            "UPN.ONLY@contoso.onmicrosoft.example",
            "upn.only@contoso.onmicrosoft.example",
        ),
        (
            "C02MAIL",
            "bob.mail@CONTOSO.example",
            "bob@contoso.onmicrosoft.example",
        ),
        (
            "C02ALIAS",
            "carol.alias@contoso.example",
            "carol@contoso.example",
        ),
    ] {
        let data = fx.ok(&admin, REGISTER, input(serial, Some(identity))).await;
        assert_eq!(
            data["registerDevice"]["device"]["user"]["userName"], expected,
            "{identity}"
        );
        assert_eq!(
            data["registerDevice"]["device"]["assignment"]["source"],
            "AUTOMATIC"
        );
    }
}

async fn register_device_assigns_nobody_when_the_match_is_not_unique_or_not_eligible(fx: Fixture) {
    let auto_a = fx.integration("Auto A").auto_assign().create().await;
    let auto_b = fx
        .integration("Auto B")
        .kind(DirectoryKind::GoogleWorkspace)
        .auto_assign()
        .create()
        .await;
    let manual = fx.integration("Manual").create().await;
    // Two active users in two auto-assigning integrations share an address.
    fx.user(&auto_a, "twin@example.com").create().await;
    fx.user(&auto_b, "twin@example.com").create().await;
    // Only in an integration that does not assign automatically.
    fx.user(&manual, "manual@example.com").create().await;
    // Suspended.
    fx.user(&auto_a, "gone@example.com")
        .status(UserStatus::Suspended)
        .create()
        .await;
    let admin = fx.admin().await;
    for (serial, identity) in [
        ("C02TWIN", "twin@example.com"),
        ("C02MANUAL", "manual@example.com"),
        ("C02SUSP", "gone@example.com"),
        ("C02NOBODY", "nobody@example.com"),
    ] {
        let data = fx.ok(&admin, REGISTER, input(serial, Some(identity))).await;
        assert!(
            data["registerDevice"]["device"]["user"].is_null(),
            "{identity} must not be assigned"
        );
        assert!(data["registerDevice"]["device"]["assignment"].is_null());
    }
}

async fn assign_device_user_sets_and_replaces_the_manual_assignment(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    let alex = fx.user(&contoso, "alex@contoso.example").create().await;
    let mac = fx.device("C02MAC", None).await;
    let admin = fx.admin().await;
    let vars = json!({ "device": gid("Device", mac.id), "user": gid("User", adele.id) });
    let data = fx.ok(&admin, ASSIGN, vars).await;
    let device = &data["assignDeviceUser"]["device"];
    assert_eq!(device["user"]["userName"], "adele@contoso.example");
    assert_eq!(
        device["user"]["devices"]["nodes"],
        json!([{ "serialNumber": "C02MAC" }])
    );
    assert_eq!(device["assignment"]["source"], "MANUAL");
    let vars = json!({ "device": gid("Device", mac.id), "user": gid("User", alex.id) });
    let data = fx.ok(&admin, ASSIGN, vars).await;
    assert_eq!(
        data["assignDeviceUser"]["device"]["user"]["userName"],
        "alex@contoso.example"
    );
    let adele_devices = fx
        .ok(
            &admin,
            "query($id: ID!) { user(id: $id) { devices { nodes { serialNumber } } } }",
            json!({ "id": gid("User", adele.id) }),
        )
        .await;
    assert_eq!(
        adele_devices["user"]["devices"]["nodes"],
        json!([]),
        "a device has at most one user"
    );
}

async fn assign_device_user_refuses_an_archived_user(fx: Fixture) {
    let old = fx.integration("Old").create().await;
    let archived = fx
        .user(&old, "old@old.example")
        .status(UserStatus::Archived)
        .create()
        .await;
    let mac = fx.device("C02ARCH", None).await;
    let admin = fx.admin().await;
    let vars = json!({ "device": gid("Device", mac.id), "user": gid("User", archived.id) });
    let response = fx.gql(&admin, ASSIGN, vars).await;
    assert_eq!(
        user_error(&response),
        ("INVALID_INPUT".into(), "input.userId".into())
    );
    let stored = device::Entity::find_by_id(mac.id)
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, mac, "nothing changed");
}

async fn assign_device_user_with_unknown_or_malformed_ids(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    let mac = fx.device("C02IDS", None).await;
    let admin = fx.admin().await;
    let cases = [
        (
            json!({ "device": gid("Device", 9999), "user": gid("User", adele.id) }),
            ("NOT_FOUND", "input.deviceId"),
        ),
        (
            json!({ "device": gid("Device", mac.id), "user": gid("User", 9999) }),
            ("NOT_FOUND", "input.userId"),
        ),
        (
            json!({ "device": "bogus", "user": gid("User", adele.id) }),
            ("INVALID_INPUT", "input.deviceId"),
        ),
        (
            json!({ "device": gid("User", adele.id), "user": gid("User", adele.id) }),
            ("INVALID_INPUT", "input.deviceId"),
        ),
    ];
    for (vars, (code, field)) in cases {
        let response = fx.gql(&admin, ASSIGN, vars.clone()).await;
        assert_eq!(user_error(&response), (code.into(), field.into()), "{vars}");
    }
    let stored = device::Entity::find_by_id(mac.id)
        .one(&fx.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.user_id, None);
}

async fn unassign_device_user_clears_the_assignment(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    let mac = fx.device("C02UN", Some(&adele)).await;
    let admin = fx.admin().await;
    let data = fx
        .ok(&admin, UNASSIGN, json!({ "device": gid("Device", mac.id) }))
        .await;
    assert!(data["unassignDeviceUser"]["device"]["user"].is_null());
    assert!(data["unassignDeviceUser"]["device"]["assignment"].is_null());
    // Again: still fine, still unassigned.
    let data = fx
        .ok(&admin, UNASSIGN, json!({ "device": gid("Device", mac.id) }))
        .await;
    assert!(data["unassignDeviceUser"]["device"]["user"].is_null());
    let response = fx
        .gql(&admin, UNASSIGN, json!({ "device": gid("Device", 4242) }))
        .await;
    assert_eq!(
        user_error(&response),
        ("NOT_FOUND".into(), "input.deviceId".into())
    );
}

async fn a_user_may_have_several_devices(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    let admin = fx.admin().await;
    for serial in ["C02ONE", "C02TWO", "C02THREE"] {
        let mac = fx.device(serial, None).await;
        fx.ok(
            &admin,
            ASSIGN,
            json!({ "device": gid("Device", mac.id), "user": gid("User", adele.id) }),
        )
        .await;
    }
    let data = fx
        .ok(&admin, "query($id: ID!) { user(id: $id) { devices { nodes { serialNumber } } } devices(filter: {assigned: true}) { totalCount } }", json!({ "id": gid("User", adele.id) }))
        .await;
    assert_eq!(
        data["user"]["devices"]["nodes"].as_array().unwrap().len(),
        3
    );
    assert_eq!(data["devices"]["totalCount"], 3);
}
