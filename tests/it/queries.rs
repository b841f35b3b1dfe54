//! The read API: connections, filters, relations, ids and limits.

use crate::{
    on_both_databases,
    support::{Fixture, error_code, no_vars},
};
use entity::enums::{DirectoryKind, IntegrationStatus, UserStatus};
use serde_json::{Value, json};

on_both_databases!(
    response_fields_keep_the_selection_order,
    users_connection_pages_with_cursors_and_counts,
    users_filters_combine,
    page_size_above_the_maximum_is_invalid_input,
    ids_malformed_unknown_and_of_the_wrong_type,
    node_resolves_every_type,
    integration_shows_its_details_and_counts,
    integrations_filter_by_kind_and_status,
    relations_link_users_groups_devices_and_integrations,
    archived_detached_user_keeps_its_origin_name,
    nested_connections_page_per_parent,
);

fn ids(connection: &Value) -> Vec<String> {
    connection["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn users_connection_pages_with_cursors_and_counts(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    for i in 0..5 {
        fx.user(&contoso, &format!("u{i}@contoso.example"))
            .create()
            .await;
    }
    let admin = fx.viewer().await;
    let query = r#"query($after: String) {
      users(first: 2, after: $after) {
        totalCount
        pageInfo { hasNextPage hasPreviousPage endCursor }
        edges { cursor node { id userName } }
        nodes { id }
      }
    }"#;
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let data = fx.ok(&admin, query, json!({ "after": after })).await;
        let users = &data["users"];
        assert_eq!(users["totalCount"], 5);
        assert_eq!(users["pageInfo"]["hasPreviousPage"], !after.is_null());
        let edges = users["edges"].as_array().unwrap();
        assert_eq!(edges.len(), users["nodes"].as_array().unwrap().len());
        seen.extend(
            edges
                .iter()
                .map(|e| e["node"]["userName"].as_str().unwrap().to_owned()),
        );
        pages += 1;
        if users["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = users["pageInfo"]["endCursor"].clone();
        assert_eq!(&after, edges.last().unwrap().get("cursor").unwrap());
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..5).map(|i| format!("u{i}@contoso.example")).collect();
    assert_eq!(seen, expected, "every user once, in order");

    let bad = fx
        .gql(&admin, query, json!({ "after": "not-a-cursor" }))
        .await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");
}

async fn users_filters_combine(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let fabrikam = fx
        .integration("Fabrikam")
        .kind(DirectoryKind::GoogleWorkspace)
        .create()
        .await;
    let adele = fx
        .user(&contoso, "adele@contoso.example")
        .display_name("Adele Vance")
        .create()
        .await;
    let alex = fx
        .user(&contoso, "alex@contoso.example")
        .display_name("Alex Wilber")
        .create()
        .await;
    let megan = fx
        .user(&contoso, "megan@contoso.example")
        .display_name("Megan Bowen")
        .status(UserStatus::Suspended)
        .create()
        .await;
    let liz = fx
        .user(&fabrikam, "liz@fabrikam.example")
        .display_name("Liz 100%_Smith")
        .create()
        .await;
    let sales = fx.group(&contoso, "Sales", &[&adele, &megan]).await;
    fx.device("C02ADELE", Some(&adele)).await;
    fx.device("C02LIZ", Some(&liz)).await;
    let admin = fx.viewer().await;
    let contoso_id = fx
        .ok(&admin, "{ integrations { nodes { id name } } }", no_vars())
        .await["integrations"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "Contoso")
        .unwrap()["id"]
        .clone();
    let group_id = fx
        .ok(&admin, "{ groups { nodes { id } } }", no_vars())
        .await["groups"]["nodes"][0]["id"]
        .clone();
    let query = r#"query($filter: UserFilter) { users(filter: $filter) { totalCount nodes { userName } } }"#;
    let names = |data: &Value| -> Vec<String> {
        data["users"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["userName"].as_str().unwrap().to_owned())
            .collect()
    };
    let cases = [
        (
            json!({ "integrationId": contoso_id }),
            vec![
                "adele@contoso.example",
                "alex@contoso.example",
                "megan@contoso.example",
            ],
        ),
        (
            json!({ "groupId": group_id }),
            vec!["adele@contoso.example", "megan@contoso.example"],
        ),
        (
            json!({ "status": "SUSPENDED" }),
            vec!["megan@contoso.example"],
        ),
        (
            json!({ "assigned": true }),
            vec!["adele@contoso.example", "liz@fabrikam.example"],
        ),
        (
            json!({ "assigned": false }),
            vec!["alex@contoso.example", "megan@contoso.example"],
        ),
        (json!({ "search": "ALEX" }), vec!["alex@contoso.example"]),
        (json!({ "search": "100%_" }), vec!["liz@fabrikam.example"]),
        (json!({ "search": "%" }), vec!["liz@fabrikam.example"]),
        (
            json!({ "integrationId": contoso_id, "assigned": false, "status": "ACTIVE" }),
            vec!["alex@contoso.example"],
        ),
    ];
    for (filter, expected) in cases {
        let data = fx.ok(&admin, query, json!({ "filter": filter })).await;
        assert_eq!(names(&data), expected, "filter {filter}");
        assert_eq!(
            data["users"]["totalCount"],
            expected.len(),
            "filter {filter}"
        );
    }
    let _ = (alex, sales);
    let wrong_kind = fx
        .gql(
            &admin,
            query,
            json!({ "filter": { "groupId": contoso_id } }),
        )
        .await;
    assert_eq!(error_code(&wrong_kind), "INVALID_INPUT");
    assert_eq!(wrong_kind["errors"][0]["extensions"]["field"], "groupId");
}

async fn page_size_above_the_maximum_is_invalid_input(fx: Fixture) {
    let admin = fx.viewer().await;
    fx.integration("Contoso").create().await;
    for query in [
        "{ users(first: 501) { totalCount } }",
        "{ users(first: -1) { totalCount } }",
        "{ devices(first: 100000) { totalCount } }",
        "{ integrations { nodes { users(first: 501) { totalCount } } } }",
    ] {
        let response = fx.gql(&admin, query, no_vars()).await;
        assert_eq!(error_code(&response), "INVALID_INPUT", "{query}");
        assert_eq!(response["errors"][0]["extensions"]["field"], "first");
    }
    let ok = fx
        .ok(&admin, "{ users(first: 500) { totalCount } }", no_vars())
        .await;
    assert_eq!(ok["users"]["totalCount"], 0);
}

async fn ids_malformed_unknown_and_of_the_wrong_type(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.user(&contoso, "adele@contoso.example").create().await;
    let admin = fx.viewer().await;
    let user_id = fx.ok(&admin, "{ users { nodes { id } } }", no_vars()).await["users"]["nodes"][0]
        ["id"]
        .clone();
    let query = "query($id: ID!) { user(id: $id) { userName } }";
    let data = fx.ok(&admin, query, json!({ "id": user_id })).await;
    assert_eq!(data["user"]["userName"], "adele@contoso.example");
    // A well-formed id of nothing: null, no error.
    let unknown = dirgate::graphql::ids::encode("User", 999_999);
    let data = fx.ok(&admin, query, json!({ "id": unknown })).await;
    assert!(data["user"].is_null());
    // Malformed, or of another type: INVALID_INPUT.
    for bad in [
        json!("garbage"),
        json!(dirgate::graphql::ids::encode("Device", 1)),
    ] {
        let response = fx.gql(&admin, query, json!({ "id": bad })).await;
        assert_eq!(error_code(&response), "INVALID_INPUT", "{bad}");
    }
    let response = fx
        .gql(
            &admin,
            "query($id: ID!) { node(id: $id) { id } }",
            json!({ "id": dirgate::graphql::ids::encode("Nope", 1) }),
        )
        .await;
    assert_eq!(error_code(&response), "INVALID_INPUT");
}

async fn node_resolves_every_type(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    fx.group(&contoso, "Sales", &[&adele]).await;
    fx.device("C02NODE", Some(&adele)).await;
    let admin = fx.viewer().await;
    let data = fx
        .ok(
            &admin,
            "{ integrations { nodes { id } } users { nodes { id } } groups { nodes { id } } devices { nodes { id } } }",
            no_vars(),
        )
        .await;
    for (list, typename) in [
        ("integrations", "Integration"),
        ("users", "User"),
        ("groups", "Group"),
        ("devices", "Device"),
    ] {
        let id = data[list]["nodes"][0]["id"].clone();
        let node = fx
            .ok(
                &admin,
                "query($id: ID!) { node(id: $id) { __typename id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(node["node"]["__typename"], typename);
        assert_eq!(node["node"]["id"], id);
    }
}

async fn integration_shows_its_details_and_counts(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    fx.user(&contoso, "alex@contoso.example").create().await;
    fx.group(&contoso, "Sales", &[&adele]).await;
    let admin = fx.viewer().await;
    let data = fx
        .ok(
            &admin,
            r#"{ integrations { nodes {
                 id kind name status statusReason tenant authorizedBy grantedScopes
                 autoAssignDevices syncIntervalMinutes createdAt lastSyncedAt nextSyncAt
                 userCount groupCount syncRuns { totalCount }
            } } }"#,
            no_vars(),
        )
        .await;
    let node = &data["integrations"]["nodes"][0];
    assert_eq!(node["kind"], "ENTRA_ID");
    assert_eq!(node["name"], "Contoso");
    assert_eq!(node["status"], "ACTIVE");
    assert_eq!(node["tenant"], "contoso.example");
    assert_eq!(node["authorizedBy"], "admin@contoso.example");
    assert_eq!(
        node["grantedScopes"],
        json!(["User.Read.All", "Group.Read.All"])
    );
    assert_eq!(node["autoAssignDevices"], false);
    assert_eq!(node["userCount"], 2);
    assert_eq!(node["groupCount"], 1);
    assert_eq!(node["syncRuns"]["totalCount"], 0);
    let by_id = fx
        .ok(
            &admin,
            "query($id: ID!) { integration(id: $id) { name } }",
            json!({ "id": node["id"] }),
        )
        .await;
    assert_eq!(by_id["integration"]["name"], "Contoso");
    let _ = contoso;
}

async fn integrations_filter_by_kind_and_status(fx: Fixture) {
    fx.integration("Contoso").create().await;
    fx.integration("Fabrikam")
        .kind(DirectoryKind::GoogleWorkspace)
        .create()
        .await;
    fx.integration("Okta")
        .kind(DirectoryKind::Scim)
        .create()
        .await;
    fx.integration("Broken")
        .status(IntegrationStatus::NeedsReauth)
        .create()
        .await;
    let admin = fx.viewer().await;
    let query = "query($kind: DirectoryKind, $status: IntegrationStatus) { integrations(filter: {kind: $kind, status: $status}) { totalCount nodes { name } } }";
    let names = |data: Value| -> Vec<String> {
        data["integrations"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(fx.ok(&admin, query, json!({ "kind": "ENTRA_ID" })).await),
        ["Contoso", "Broken"]
    );
    assert_eq!(
        names(fx.ok(&admin, query, json!({ "kind": "SCIM" })).await),
        ["Okta"]
    );
    assert_eq!(
        names(
            fx.ok(&admin, query, json!({ "status": "NEEDS_REAUTH" }))
                .await
        ),
        ["Broken"]
    );
    assert_eq!(
        names(
            fx.ok(
                &admin,
                query,
                json!({ "kind": "ENTRA_ID", "status": "ACTIVE" })
            )
            .await
        ),
        ["Contoso"]
    );
    assert_eq!(
        fx.ok(&admin, query, json!({})).await["integrations"]["totalCount"],
        4
    );
}

async fn relations_link_users_groups_devices_and_integrations(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx
        .user(&contoso, "adele@contoso.example")
        .alias("adele.vance@contoso.example")
        .create()
        .await;
    let alex = fx.user(&contoso, "alex@contoso.example").create().await;
    fx.group(&contoso, "Sales", &[&adele, &alex]).await;
    fx.group(&contoso, "Retail", &[&adele]).await;
    fx.device("C02A", Some(&adele)).await;
    fx.device("C02B", Some(&adele)).await;
    fx.device("C02FREE", None).await;
    let admin = fx.viewer().await;
    let data = fx
        .ok(
            &admin,
            r#"{
              users { nodes { userName origin aliases integration { name } groups { nodes { displayName } } devices { nodes { serialNumber user { userName } } } } }
              groups { nodes { displayName memberCount members { totalCount nodes { userName } } integration { name } } }
              devices { nodes { serialNumber user { userName } assignment { source assignedAt } } }
            }"#,
            no_vars(),
        )
        .await;
    let adele_json = &data["users"]["nodes"][0];
    assert_eq!(adele_json["origin"], "Contoso");
    assert_eq!(
        adele_json["aliases"],
        json!(["adele.vance@contoso.example"])
    );
    assert_eq!(adele_json["integration"]["name"], "Contoso");
    assert_eq!(
        adele_json["groups"]["nodes"],
        json!([{ "displayName": "Sales" }, { "displayName": "Retail" }])
    );
    assert_eq!(
        adele_json["devices"]["nodes"],
        json!([
            { "serialNumber": "C02A", "user": { "userName": "adele@contoso.example" } },
            { "serialNumber": "C02B", "user": { "userName": "adele@contoso.example" } }
        ])
    );
    assert_eq!(data["users"]["nodes"][1]["devices"]["nodes"], json!([]));
    let sales = &data["groups"]["nodes"][0];
    assert_eq!(sales["memberCount"], 2);
    assert_eq!(sales["members"]["totalCount"], 2);
    assert_eq!(
        sales["members"]["nodes"],
        json!([{ "userName": "adele@contoso.example" }, { "userName": "alex@contoso.example" }])
    );
    assert_eq!(sales["integration"]["name"], "Contoso");
    let devices = data["devices"]["nodes"].as_array().unwrap();
    assert_eq!(devices[0]["assignment"]["source"], "MANUAL");
    assert!(devices[0]["assignment"]["assignedAt"].is_string());
    assert!(devices[2]["user"].is_null());
    assert!(devices[2]["assignment"].is_null());
}

async fn archived_detached_user_keeps_its_origin_name(fx: Fixture) {
    let old = fx.integration("Old Directory").create().await;
    let kept = fx.user(&old, "kept@old.example").detached().create().await;
    fx.device("C02KEPT", Some(&kept)).await;
    let admin = fx.viewer().await;
    let data = fx
        .ok(&admin, "{ users(filter: {status: ARCHIVED}) { nodes { origin status integration { name } archivedAt devices { nodes { serialNumber } } } } }", no_vars())
        .await;
    let user = &data["users"]["nodes"][0];
    assert_eq!(user["origin"], "Old Directory");
    assert_eq!(user["status"], "ARCHIVED");
    assert!(user["integration"].is_null());
    assert!(user["archivedAt"].is_string());
    assert_eq!(
        user["devices"]["nodes"],
        json!([{ "serialNumber": "C02KEPT" }])
    );
}

async fn nested_connections_page_per_parent(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let fabrikam = fx.integration("Fabrikam").create().await;
    fx.bulk(&contoso, 7, 3).await;
    fx.bulk(&fabrikam, 0, 0).await;
    let admin = fx.viewer().await;
    let query = r#"query($after: String) { integrations { nodes { name users(first: 3, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } nodes { id userName } } } } }"#;
    let data = fx.ok(&admin, query, json!({})).await;
    let nodes = data["integrations"]["nodes"].as_array().unwrap();
    let contoso_users = &nodes[0]["users"];
    assert_eq!(contoso_users["totalCount"], 7);
    assert_eq!(ids(contoso_users).len(), 3);
    assert_eq!(contoso_users["pageInfo"]["hasNextPage"], true);
    assert_eq!(nodes[1]["users"]["totalCount"], 0);
    assert_eq!(ids(&nodes[1]["users"]).len(), 0);
    assert_eq!(nodes[1]["users"]["pageInfo"]["hasNextPage"], false);
    let after = contoso_users["pageInfo"]["endCursor"].clone();
    let data = fx.ok(&admin, query, json!({ "after": after })).await;
    let next = &data["integrations"]["nodes"][0]["users"];
    assert_eq!(next["nodes"][0]["userName"], "user00003@bulk.example");
    assert_eq!(ids(next).len(), 3);
}

/// The keys of every object in `value`, in order, by path (lists walked through their first
/// item), for the objects with more than one key.
fn key_orders(value: &async_graphql::Value, path: &str, out: &mut Vec<(String, Vec<String>)>) {
    match value {
        async_graphql::Value::Object(map) => {
            if map.len() > 1 {
                out.push((path.to_owned(), map.keys().map(|k| k.to_string()).collect()));
            }
            for (key, value) in map {
                key_orders(value, &format!("{path}.{key}"), out);
            }
        }
        async_graphql::Value::List(items) => {
            if let Some(first) = items.first() {
                key_orders(first, path, out);
            }
        }
        _ => {}
    }
}

/// GraphQL §7.2.2: every object of the answer lists its fields in the order the query asked
/// for them, whether a field was read at once, through a loader (`totalCount`, counts,
/// relations) or in a fragment.
async fn response_fields_keep_the_selection_order(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    fx.bulk(&contoso, 6, 3).await;
    let viewer = fx.viewer().await;
    let query = "{
      users(first: 2) { totalCount nodes { displayName groups { nodes { displayName id } } id devices { nodes { serialNumber id } } origin } pageInfo { hasNextPage endCursor } edges { cursor node { id } } }
      groups(first: 2) { pageInfo { endCursor hasNextPage } totalCount nodes { memberCount id members(first: 2) { totalCount nodes { id displayName } pageInfo { hasNextPage } } displayName } }
      devices(first: 2) { nodes { user { id displayName } serialNumber ...D id } totalCount }
      integrations { totalCount nodes { userCount name groupCount syncRuns(first: 1) { totalCount nodes { id } } kind } }
    }
    fragment D on Device { name platform }";
    let response = fx
        .app
        .execute(async_graphql::Request::new(query), viewer)
        .await;
    assert!(response.errors.is_empty(), "{:?}", response.errors);
    let mut orders = Vec::new();
    key_orders(&response.data, "", &mut orders);
    let order = |path: &str| -> Vec<&str> {
        orders
            .iter()
            .find(|(p, _)| p == path)
            .unwrap_or_else(|| panic!("{path} is not in {orders:?}"))
            .1
            .iter()
            .map(String::as_str)
            .collect()
    };
    assert_eq!(order(""), ["users", "groups", "devices", "integrations"]);
    assert_eq!(
        order(".users"),
        ["totalCount", "nodes", "pageInfo", "edges"]
    );
    assert_eq!(
        order(".users.nodes"),
        ["displayName", "groups", "id", "devices", "origin"]
    );
    assert_eq!(order(".users.nodes.groups.nodes"), ["displayName", "id"]);
    assert_eq!(order(".users.nodes.devices.nodes"), ["serialNumber", "id"]);
    assert_eq!(order(".users.pageInfo"), ["hasNextPage", "endCursor"]);
    assert_eq!(order(".users.edges"), ["cursor", "node"]);
    assert_eq!(order(".groups"), ["pageInfo", "totalCount", "nodes"]);
    assert_eq!(
        order(".groups.nodes"),
        ["memberCount", "id", "members", "displayName"]
    );
    assert_eq!(
        order(".groups.nodes.members"),
        ["totalCount", "nodes", "pageInfo"]
    );
    assert_eq!(
        order(".devices.nodes"),
        ["user", "serialNumber", "name", "platform", "id"]
    );
    assert_eq!(order(".devices"), ["nodes", "totalCount"]);
    assert_eq!(order(".integrations"), ["totalCount", "nodes"]);
    assert_eq!(
        order(".integrations.nodes"),
        ["userCount", "name", "groupCount", "syncRuns", "kind"]
    );
}
