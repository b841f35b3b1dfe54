//! The standard HR attributes (#31), end to end through the real clients against the fake:
//! Entra (plain properties, `employeeOrgData`'s, `employeeHireDate`, the `manager@delta`
//! relationship) and Google (the primary organization's, `phones`, `addresses`,
//! `languages`, `relations`) import each as the directory has it, a change read by the next
//! sync is one `user.updated` naming the fields, a cleared one is null; a SCIM client sends
//! them as Okta and Entra provisioning do (core `phoneNumbers`, `addresses`,
//! `preferredLanguage`, the enterprise extension's `organization`, `division`, `costCenter`,
//! `manager.value`), and reads them back as sent.

use crate::{
    attributes::updates_of,
    on_both_databases,
    scim::ScimClient,
    support::Fixture,
    sync::{connect, started, sync, tenant_users},
};
use fake_directory::Kind;
use serde_json::{Value, json};

on_both_databases!(
    entra_and_google_import_change_and_clear_the_hr_attributes,
    a_missing_manager_and_a_cycle,
    direct_reports_of_a_page_take_the_same_statements_for_5_and_50_users,
    a_scim_client_sends_the_enterprise_attributes,
);

const FIELDS: &str = "externalId officeLocation companyName division costCenter hireDate mobilePhone country preferredLanguage managerId";

async fn user(fx: &Fixture, external: &str) -> Value {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            &format!("{{ users(first: 100) {{ nodes {{ {FIELDS} }} }} }}"),
            json!({}),
        )
        .await;
    data["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["externalId"] == external)
        .cloned()
        .unwrap_or(Value::Null)
}

/// What dirgate should show of the fake's user `u` of a tenant of `kind`.
fn expected(t: &fake_directory::Tenant, kind: Kind, u: &fake_directory::User) -> Value {
    let hr = &u.hr;
    let entra = kind == Kind::Entra;
    let manager = match kind {
        Kind::Entra => hr.manager.clone(),
        Kind::Google => hr
            .manager
            .as_ref()
            .and_then(|m| t.users.get(m))
            .map(|m| m.user_name.clone()),
    };
    json!({
        "externalId": u.id,
        "officeLocation": hr.office_location,
        "companyName": hr.company_name,
        "division": if entra { json!(hr.division) } else { Value::Null },
        "costCenter": hr.cost_center,
        "hireDate": match (entra, &hr.hire_date) {
            (true, Some(day)) => json!(day.replace('Z', "+00:00")),
            _ => Value::Null,
        },
        "mobilePhone": hr.mobile_phone,
        "country": hr.country,
        "preferredLanguage": hr.preferred_language,
        "managerId": manager,
    })
}

async fn entra_and_google_import_change_and_clear_the_hr_attributes(fx: Fixture) {
    let (fx, server) = started(fx, 12).await;
    for (kind, name, directory) in [
        (Kind::Entra, "ENTRA_ID", "Contoso"),
        (Kind::Google, "GOOGLE_WORKSPACE", "Fabrikam"),
    ] {
        let id = connect(&fx, name, directory, false).await;
        let key = server.tenant(kind);
        let users = tenant_users(&server, kind);
        let tenant = server.fake.directory().tenants[&key].clone();
        for external in &users {
            let shown = user(&fx, external).await;
            assert_eq!(
                shown,
                expected(&tenant, kind, &tenant.users[external]),
                "{name}: imported as the directory has it"
            );
        }
        assert!(user(&fx, &users[3]).await["managerId"].is_string());
        managers_and_reports(&fx, &tenant, &users, name).await;

        let (changed, cleared) = (users[3].clone(), users[4].clone());
        server.fake.edit(|d| {
            let t = d.tenants.get_mut(&key).unwrap();
            t.change_user(&changed, |u| {
                u.hr.cost_center = Some("CC-999".into());
                u.hr.country = Some("NL".into());
                u.hr.manager = Some(users[5].clone());
            })
            .unwrap();
            t.change_user(&cleared, |u| u.hr = fake_directory::Hr::default())
                .unwrap();
        });
        let run = sync(&fx, &id).await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
        let tenant = server.fake.directory().tenants[&key].clone();
        for external in [&changed, &cleared] {
            assert_eq!(
                user(&fx, external).await,
                expected(&tenant, kind, &tenant.users[external]),
                "{name}: read again"
            );
        }
        let updates = updates_of(&fx, &changed).await;
        assert_eq!(updates.len(), 1, "{name}: one update: {updates:#?}");
        assert_eq!(
            updates[0]["data"]["changedFields"],
            json!(["costCenter", "country", "managerId"]),
            "{name}"
        );
        assert_eq!(updates[0]["data"]["state"]["costCenter"], "CC-999");
        let updates = updates_of(&fx, &cleared).await;
        assert_eq!(updates.len(), 1, "{name}: {updates:#?}");
        let cleared_user = user(&fx, &cleared).await;
        for field in ["officeLocation", "costCenter", "mobilePhone", "managerId"] {
            assert_eq!(cleared_user[field], Value::Null, "{name}: {field} cleared");
        }
        // Unchanged: no write, no event.
        sync(&fx, &id).await;
        assert_eq!(updates_of(&fx, &changed).await.len(), 1);
    }
}

async fn a_scim_client_sends_the_enterprise_attributes(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    // Okta's default mapping: core phoneNumbers, addresses and preferredLanguage; the
    // enterprise extension's organization, division, costCenter and manager.
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
        "userName": "ada@okta.example",
        "preferredLanguage": "en-GB",
        "phoneNumbers": [
            { "value": "+44 20 7946 0000", "type": "work", "primary": true },
            { "value": "+44 7700 900000", "type": "mobile" }
        ],
        "addresses": [{ "type": "work", "country": "GB", "locality": "London", "primary": true }],
        enterprise: {
            "employeeNumber": "E1", "organization": "Okta Inc", "division": "Field",
            "costCenter": "CC-7", "department": "Sales", "manager": { "value": "mgr-1" }
        }
    });
    let (status, created) = scim.call("POST", "/Users", Some(body.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["phoneNumbers"], body["phoneNumbers"],
        "rendered as sent"
    );
    assert_eq!(created[enterprise]["costCenter"], "CC-7");
    let id = created["id"].as_str().unwrap();
    let shown = user(&fx, id).await;
    assert_eq!(
        shown,
        json!({
            "externalId": id, "officeLocation": null, "companyName": "Okta Inc",
            "division": "Field", "costCenter": "CC-7", "hireDate": null,
            "mobilePhone": "+44 7700 900000", "country": "GB", "preferredLanguage": "en-GB",
            "managerId": "mgr-1",
        })
    );
    let (status, _) = scim
        .call(
            "PATCH",
            &format!("/Users/{id}"),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    { "op": "replace", "path": format!("{enterprise}:costCenter"), "value": "CC-8" },
                    { "op": "replace", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+44 7700 900001" }
                ]
            })),
        )
        .await;
    assert_eq!(status, 200);
    let updates = updates_of(&fx, id).await;
    assert_eq!(updates.len(), 1, "{updates:#?}");
    assert_eq!(
        updates[0]["data"]["changedFields"],
        json!(["costCenter", "mobilePhone"])
    );
}

/// Each user's `manager` is the user its directory names; `directReports` (and the filter)
/// are the users naming it.
async fn managers_and_reports(
    fx: &Fixture,
    tenant: &fake_directory::Tenant,
    users: &[String],
    name: &str,
) {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "{ users(first: 100) { nodes { id externalId manager { externalId } directReports(first: 100) { totalCount nodes { externalId } } } } }",
            json!({}),
        )
        .await;
    let nodes = data["users"]["nodes"].as_array().unwrap();
    for external in users {
        let node = nodes
            .iter()
            .find(|n| n["externalId"] == external.as_str())
            .unwrap();
        let fake = &tenant.users[external];
        assert_eq!(
            node["manager"]["externalId"].as_str(),
            fake.hr.manager.as_deref(),
            "{name}: {external}'s manager"
        );
        let mut reports: Vec<&str> = tenant
            .users
            .values()
            .filter(|u| u.hr.manager.as_deref() == Some(external))
            .map(|u| u.id.as_str())
            .collect();
        reports.sort();
        let mut shown: Vec<&str> = node["directReports"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["externalId"].as_str().unwrap())
            .collect();
        shown.sort();
        assert_eq!(shown, reports, "{name}: {external}'s reports");
        assert_eq!(node["directReports"]["totalCount"], reports.len());
    }
    let top = nodes
        .iter()
        .find(|n| n["externalId"] == users[0].as_str())
        .unwrap();
    let filtered = fx
        .ok(
            &viewer,
            "query($m: ID!) { users(filter: {managerId: $m}) { totalCount } }",
            json!({ "m": top["id"] }),
        )
        .await;
    assert_eq!(
        filtered["users"]["totalCount"],
        top["directReports"]["totalCount"]
    );
}

/// A manager outside the directory is null with its reference readable; a cycle in the
/// directory's data is read a hop per field, and ends where the query does.
async fn a_missing_manager_and_a_cycle(fx: Fixture) {
    let (fx, server) = started(fx, 12).await;
    let key = server.tenant(Kind::Entra);
    let users = tenant_users(&server, Kind::Entra);
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        t.users.get_mut(&users[0]).unwrap().hr.manager = Some(users[1].clone());
        t.users.get_mut(&users[1]).unwrap().hr.manager = Some(users[0].clone());
        t.users.get_mut(&users[2]).unwrap().hr.manager = Some("not-in-the-tenant".into());
    });
    connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "{ users(first: 100) { nodes { externalId managerId manager { externalId manager { externalId manager { externalId } } } } } }",
            json!({}),
        )
        .await;
    let of = |external: &str| {
        data["users"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["externalId"] == external)
            .unwrap()
            .clone()
    };
    let first = of(&users[0]);
    assert_eq!(first["manager"]["externalId"], users[1].as_str());
    assert_eq!(first["manager"]["manager"]["externalId"], users[0].as_str());
    assert_eq!(
        first["manager"]["manager"]["manager"]["externalId"],
        users[1].as_str()
    );
    let orphan = of(&users[2]);
    assert_eq!(orphan["managerId"], "not-in-the-tenant");
    assert_eq!(orphan["manager"], Value::Null);
}

/// A page of users with their managers and a page of direct reports each: the statements do
/// not grow with the page (one wave per relation, a page per manager in one statement).
async fn direct_reports_of_a_page_take_the_same_statements_for_5_and_50_users(fx: Fixture) {
    let (fx, _server) = started(fx, 120).await;
    connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let viewer = fx.viewer().await;
    let query = "query($n: Int!) { users(first: $n) { nodes { externalId manager { externalId } directReports(first: 3) { totalCount nodes { externalId } } } } }";
    fx.ok(&viewer, query, json!({ "n": 1 })).await;
    let mut counts = Vec::new();
    for n in [5, 50] {
        let mut fewest = usize::MAX;
        for _ in 0..3 {
            fx.reset_statements();
            let data = fx.ok(&viewer, query, json!({ "n": n })).await;
            fewest = fewest.min(fx.statements());
            let nodes = data["users"]["nodes"].as_array().unwrap();
            assert_eq!(nodes.len(), n);
            let with_reports = nodes
                .iter()
                .filter(|u| u["directReports"]["totalCount"].as_u64().unwrap() > 0)
                .count();
            assert!(with_reports > 0, "some of the first users manage others");
            for user in nodes {
                let shown = user["directReports"]["nodes"].as_array().unwrap().len() as u64;
                let total = user["directReports"]["totalCount"].as_u64().unwrap();
                assert_eq!(shown, total.min(3), "{user}");
            }
        }
        counts.push(fewest);
    }
    assert_eq!(
        counts[0], counts[1],
        "statements for 5 and 50 users: {counts:?}"
    );
}
