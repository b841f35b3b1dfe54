//! `orderBy` on the top-level lists (`src/store/order.rs`): every order pages through
//! every item exactly once, in the order the rule gives (ASCII letters folded, ties broken by
//! creation), in both directions, with a constant number of statements per page; a cursor only
//! resumes its own order; each order has an index the query uses.

use crate::{
    on_both_databases,
    scim::ScimClient,
    support::{Backend, Fixture, error_code},
};
use entity::integration;
use sea_orm::{EntityTrait, IntoActiveModel, Set, Statement};
use serde_json::{Value, json};

on_both_databases!(
    every_order_pages_through_every_item_once_in_order,
    a_cursor_resumes_only_its_own_order,
);

/// Pages through `list` in `order` with `first` items a page; returns each node's `field`,
/// and checks the statements per page do not depend on the page size.
async fn page_through(
    fx: &Fixture,
    list: &str,
    order: Value,
    field: &str,
    first: i64,
) -> Vec<Value> {
    let viewer = fx.viewer().await;
    let query = format!(
        "query($first: Int, $after: String, $order: {}) {{ {list}(first: $first, after: $after, orderBy: $order) {{ edges {{ cursor node {{ {field} }} }} pageInfo {{ hasNextPage endCursor }} }} }}",
        order_type(list)
    );
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut statements = Vec::new();
    loop {
        fx.reset_statements();
        let data = fx
            .ok(
                &viewer,
                &query,
                json!({ "first": first, "after": after, "order": order }),
            )
            .await;
        statements.push(fx.statements());
        let conn = &data[list];
        for edge in conn["edges"].as_array().unwrap() {
            seen.push(edge["node"][field].clone());
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = conn["pageInfo"]["endCursor"].clone();
        assert!(seen.len() < 1000, "paging does not end");
    }
    statements.sort_unstable();
    assert!(
        statements.last().unwrap() - statements.first().unwrap() <= 1,
        "statements per page vary: {statements:?}"
    );
    seen
}

fn order_type(list: &str) -> &'static str {
    match list {
        "users" => "UserOrder",
        "groups" => "GroupOrder",
        "devices" => "DeviceOrder",
        _ => "IntegrationOrder",
    }
}

/// `values` sorted by ASCII-folded text, ties in creation order (`values` is in creation
/// order), reversed whole for descending.
fn expected(values: &[&str], fold: bool, desc: bool) -> Vec<Value> {
    let mut indexed: Vec<(String, usize, &str)> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            (
                if fold {
                    v.to_ascii_lowercase()
                } else {
                    (*v).to_owned()
                },
                i,
                *v,
            )
        })
        .collect();
    indexed.sort();
    if desc {
        indexed.reverse();
    }
    indexed.into_iter().map(|(_, _, v)| json!(v)).collect()
}

const NAMES: [&str; 11] = [
    "bob", "Alice", "alice", "Émile", "zed", "Bob", "carol", "BOB", "Zed", "alice", "dave",
];

async fn every_order_pages_through_every_item_once_in_order(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    for (i, name) in NAMES.iter().enumerate() {
        // Every third user has no email: they sort as the empty string.
        let mut user = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": format!("u{i}@okta.example"),
            "displayName": name,
            "active": true
        });
        if i % 3 != 0 {
            user["emails"] = json!([{ "value": format!("{}{i}@okta.example", name.to_lowercase()), "primary": true }]);
        }
        let (status, body) = scim.call("POST", "/Users", Some(user)).await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = scim
            .call(
                "POST",
                "/Groups",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": name
                })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let admin = fx.admin().await;
    for (i, name) in NAMES.iter().enumerate() {
        fx.ok(
            &admin,
            "mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) { device { id } userErrors { field message code } } }",
            json!({ "input": { "serialNumber": format!("SN{:02}", 20 - i), "name": name, "platform": "MACOS" } }),
        )
        .await;
    }

    for desc in [false, true] {
        let dir = if desc { "DESC" } else { "ASC" };
        for (list, field, order_field, first) in [
            ("users", "displayName", "DISPLAY_NAME", 3),
            ("groups", "displayName", "DISPLAY_NAME", 4),
            ("devices", "name", "NAME", 2),
        ] {
            let order = json!({ "field": order_field, "direction": dir });
            let seen = page_through(&fx, list, order.clone(), field, first).await;
            assert_eq!(seen, expected(&NAMES, true, desc), "{list} by {order}");
            let whole = page_through(&fx, list, order, field, 50).await;
            assert_eq!(seen, whole, "page size does not change the order");
        }
        let serials: Vec<String> = (0..NAMES.len())
            .map(|i| format!("SN{:02}", 20 - i))
            .collect();
        let serials: Vec<&str> = serials.iter().map(String::as_str).collect();
        let seen = page_through(
            &fx,
            "devices",
            json!({ "field": "SERIAL_NUMBER", "direction": dir }),
            "serialNumber",
            4,
        )
        .await;
        assert_eq!(seen, expected(&serials, false, desc));
        // Emails: a missing one sorts before every present one.
        let seen = page_through(
            &fx,
            "users",
            json!({ "field": "EMAIL", "direction": dir }),
            "email",
            3,
        )
        .await;
        let emails: Vec<String> = NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| {
                if i % 3 != 0 {
                    format!("{}{i}@okta.example", n.to_lowercase())
                } else {
                    String::new()
                }
            })
            .collect();
        let emails: Vec<&str> = emails.iter().map(String::as_str).collect();
        let want: Vec<Value> = expected(&emails, true, desc)
            .into_iter()
            .map(|v| if v == "" { Value::Null } else { v })
            .collect();
        assert_eq!(seen, want, "users by email {dir}");
        // By creation, newest first.
        let seen = page_through(
            &fx,
            "devices",
            json!({ "field": "CREATED_AT", "direction": dir }),
            "name",
            4,
        )
        .await;
        let mut created: Vec<Value> = NAMES.iter().map(|n| json!(n)).collect();
        if desc {
            created.reverse();
        }
        assert_eq!(seen, created);
    }

    // Integrations by last sync: never synced ones first ascending, last descending.
    let mut names = vec!["Okta".to_owned()];
    for name in ["b-directory", "A-directory", "c-directory"] {
        crate::scim::add_scim(&fx, name).await;
        names.push(name.to_owned());
    }
    let rows = integration::Entity::find().all(&fx.db).await.unwrap();
    for row in rows {
        let when = match row.name.as_str() {
            "b-directory" => Some("2026-01-02T00:00:00Z"),
            "c-directory" => Some("2026-01-01T00:00:00Z"),
            _ => None,
        };
        let mut active = row.into_active_model();
        active.last_synced_at = Set(when.map(|w| w.parse().unwrap()));
        sea_orm::ActiveModelTrait::update(active, &fx.db)
            .await
            .unwrap();
    }
    let by_sync = |dir: &str| json!({ "field": "LAST_SYNCED_AT", "direction": dir });
    let seen = page_through(&fx, "integrations", by_sync("ASC"), "name", 1).await;
    assert_eq!(
        seen,
        json!(["Okta", "A-directory", "c-directory", "b-directory"])
            .as_array()
            .unwrap()
            .clone()
    );
    let seen = page_through(&fx, "integrations", by_sync("DESC"), "name", 1).await;
    assert_eq!(
        seen,
        json!(["b-directory", "c-directory", "A-directory", "Okta"])
            .as_array()
            .unwrap()
            .clone()
    );
    let seen = page_through(&fx, "integrations", json!({ "field": "NAME" }), "name", 2).await;
    assert_eq!(
        seen,
        json!(["A-directory", "b-directory", "c-directory", "Okta"])
            .as_array()
            .unwrap()
            .clone()
    );

    // Each order's query uses its index (SQLite's plan names it).
    if fx.backend == Backend::Sqlite {
        for (sql, index) in [
            (
                "SELECT id FROM directory_users ORDER BY lower(\"directory_users\".\"display_name\"), id LIMIT 3",
                "ix_directory_users_display_name_order",
            ),
            (
                "SELECT id FROM directory_users ORDER BY \"directory_users\".\"email_key\" DESC NULLS LAST, id DESC LIMIT 3",
                "ix_directory_users_email_key",
            ),
            (
                "SELECT id FROM directory_groups ORDER BY lower(\"directory_groups\".\"display_name\"), id LIMIT 3",
                "ix_directory_groups_display_name_order",
            ),
            (
                "SELECT id FROM devices ORDER BY lower(\"devices\".\"name\"), id LIMIT 3",
                "ix_devices_name_order",
            ),
            (
                "SELECT id FROM devices ORDER BY \"devices\".\"serial_number\", id LIMIT 3",
                "ix_devices_serial_number_order",
            ),
        ] {
            let plan = fx
                .sqlite_plan(Statement::from_string(fx.db.get_database_backend(), sql))
                .await;
            assert!(plan.iter().any(|d| d.contains(index)), "{sql}: {plan:?}");
            assert!(
                !plan.iter().any(|d| d.contains("TEMP B-TREE")),
                "{sql} sorts: {plan:?}"
            );
        }
    }
}

async fn a_cursor_resumes_only_its_own_order(fx: Fixture) {
    let admin = fx.admin().await;
    for i in 0..3 {
        fx.ok(
            &admin,
            "mutation($input: RegisterDeviceInput!) { registerDevice(input: $input) { device { id } userErrors { field message code } } }",
            json!({ "input": { "serialNumber": format!("C{i}"), "name": format!("d{i}"), "platform": "IOS" } }),
        )
        .await;
    }
    let query = "query($order: DeviceOrder, $after: String) { devices(first: 1, orderBy: $order, after: $after) { pageInfo { endCursor } nodes { name } } }";
    let by_name = json!({ "field": "NAME", "direction": "DESC" });
    let data = fx.ok(&admin, query, json!({ "order": by_name })).await;
    let cursor = data["devices"]["pageInfo"]["endCursor"].clone();
    assert_eq!(data["devices"]["nodes"][0]["name"], "d2");
    let data = fx
        .ok(&admin, query, json!({ "order": by_name, "after": cursor }))
        .await;
    assert_eq!(data["devices"]["nodes"][0]["name"], "d1");
    for other in [
        json!({ "field": "NAME", "direction": "ASC" }),
        json!({ "field": "SERIAL_NUMBER", "direction": "DESC" }),
        Value::Null,
    ] {
        let res = fx
            .gql(&admin, query, json!({ "order": other, "after": cursor }))
            .await;
        assert_eq!(error_code(&res), "INVALID_INPUT", "{other}: {res}");
        assert_eq!(res["errors"][0]["extensions"]["field"], "after");
    }
    let plain = fx.ok(&admin, query, json!({})).await;
    let id_cursor = plain["devices"]["pageInfo"]["endCursor"].clone();
    let res = fx
        .gql(
            &admin,
            query,
            json!({ "order": by_name, "after": id_cursor }),
        )
        .await;
    assert_eq!(error_code(&res), "INVALID_INPUT");
    // A forged keyed cursor is refused, never an error of the database.
    use base64::Engine;
    for forged in [
        r#"k:["DeviceName:Desc",null,1]"#,
        r#"k:["DeviceName:Desc","x"]"#,
        r#"k:["DeviceName:Desc",7,1]"#,
        r#"k:{"a":1}"#,
    ] {
        let after = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
        let res = fx
            .gql(&admin, query, json!({ "order": by_name, "after": after }))
            .await;
        assert_eq!(error_code(&res), "INVALID_INPUT", "{forged}: {res}");
    }
}
