//! Scopes of Google Workspace integrations (R19) and the choice of a scope before the first
//! import: a group scope reads the chosen groups' derived members (`includeDerivedMembership`)
//! and those users by id, never the tenant's list; an org unit scope reads the units' users
//! (`orgUnitPath` query, the unit and below); `directoryOrgUnits` lists the account's units
//! live; an integration added with `chooseScope` waits, AWAITING_SCOPE, imports nothing, and
//! starts with the scope the admin then sets. On SQLite and PostgreSQL, through the real
//! clients against the fake.

use crate::{
    nesting::{shape, started},
    on_both_databases,
    scope::{PREVIEW, SET, imported, set_scope, sorted},
    support::{Fixture, error_code, user_error},
    sync::{connect, connect_with, last_run},
};
use fake_directory::Kind;
use serde_json::{Value, json};

on_both_databases!(
    a_google_group_scope_reads_derived_members_not_the_tenant,
    a_big_google_group_scope_reads_the_user_list_kept_to_its_members,
    a_google_org_unit_scope_imports_the_units_and_those_below,
    an_admin_picks_org_units_from_the_directory_live,
    an_integration_added_to_choose_its_scope_waits_for_it,
);

/// The preview of `scope`, then the run that applies it: the run does what the preview said.
async fn previewed_then_set(fx: &Fixture, id: &Value, scope: Value) -> (Value, Value) {
    let admin = fx.admin().await;
    let preview = fx
        .ok(&admin, PREVIEW, json!({ "id": id, "scope": scope }))
        .await["scopePreview"]
        .clone();
    let set = set_scope(fx, id, scope).await;
    assert_eq!(set["userErrors"], json!([]), "{set}");
    let run = last_run(fx, id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        run["usersRemoved"], preview["usersToRemove"],
        "{preview} {run}"
    );
    assert_eq!(
        run["groupsRemoved"], preview["groupsToRemove"],
        "{preview} {run}"
    );
    assert_eq!(preview["exact"], true);
    (preview, run)
}

async fn a_google_group_scope_reads_derived_members_not_the_tenant(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (groups, users) = shape(&server, Kind::Google);
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    assert_eq!(imported(&fx).await.0.len(), 12, "the whole domain first");
    let listings = server.fake.requests("/admin/directory/v1/users");
    let scope = json!({ "kind": "GROUPS", "groupIds": [groups["Top"]] });
    let (preview, _) = previewed_then_set(&fx, &id, scope).await;
    assert_eq!(
        (&preview["usersInScope"], &preview["groupsInScope"]),
        (&json!(4), &json!(4)),
        "{preview}"
    );
    let (in_scope, scoped_groups) = imported(&fx).await;
    assert_eq!(
        in_scope,
        sorted(&users[..4]),
        "Top's users, through nesting"
    );
    assert_eq!(scoped_groups, ["Bottom", "Left", "Right", "Top"]);
    assert_eq!(
        server.fake.requests("/admin/directory/v1/users"),
        listings,
        "no listing of the domain's users: each user of the scope is read by id"
    );
    let by_id = format!("/admin/directory/v1/users/{}", users[3]);
    assert_eq!(
        server.fake.requests(&by_id),
        2,
        "once for the preview, once for the run"
    );
    // The memberships, nesting included, are those of the directory.
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "{ groups(first: 10, filter: {search: \"Top\"}) { nodes { displayName memberCount(transitive: true) childGroups { totalCount } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["groups"]["nodes"][0],
        json!({ "displayName": "Top", "memberCount": 4, "childGroups": { "totalCount": 2 } })
    );
}

/// Past 100 users a scope's users are found in the domain's user list (500 a call) rather
/// than read one by one (a call each).
async fn a_big_google_group_scope_reads_the_user_list_kept_to_its_members(mut fx: Fixture) {
    let server = crate::support::fake::FakeServer::start(300, 3).await;
    fx.use_providers(server.settings());
    let key = server.tenant(Kind::Google);
    let (group, members) = {
        let mut chosen = (String::new(), Vec::new());
        server.fake.edit(|d| {
            let t = d.tenants.get_mut(&key).unwrap();
            let users: Vec<String> = t.users.keys().take(150).cloned().collect();
            let group = t.groups.keys().next().unwrap().clone();
            t.members.get_mut(&group).unwrap().clear();
            for user in &users {
                assert!(t.add_member(&group, user));
            }
            chosen = (group, users);
        });
        chosen
    };
    let scope = json!({ "kind": "GROUPS", "groupIds": [group] });
    let id = connect_with(
        &fx,
        json!({ "kind": "GOOGLE_WORKSPACE", "name": "Fabrikam", "scope": scope }),
    )
    .await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersCreated"], 150, "{run}");
    assert_eq!(imported(&fx).await.0, sorted(&members));
    assert_eq!(
        server.fake.requests("/admin/directory/v1/users"),
        1,
        "the domain's 300 users in one listing page"
    );
    let by_id = format!("/admin/directory/v1/users/{}", members[0]);
    assert_eq!(server.fake.requests(&by_id), 0, "no user read by id");
    let admin = fx.admin().await;
    let preview = fx
        .ok(&admin, PREVIEW, json!({ "id": id, "scope": scope }))
        .await["scopePreview"]
        .clone();
    assert_eq!(
        (
            &preview["usersInScope"],
            &preview["usersToKeep"],
            &preview["usersToRemove"]
        ),
        (&json!(150), &json!(150), &json!(0)),
        "{preview}"
    );
}

/// Puts users[0..3] in /Sales, users[3] in /Sales/EMEA, users[4] in /Salesforce (a unit
/// whose path starts with the same letters), the rest in /Engineering.
fn place_in_units(server: &crate::support::fake::FakeServer) -> Vec<String> {
    let key = server.tenant(Kind::Google);
    let mut users = Vec::new();
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        users = t.users.keys().cloned().collect();
        for (i, id) in users.iter().enumerate() {
            let unit = match i {
                0..=2 => "/Sales",
                3 => "/Sales/EMEA",
                4 => "/Salesforce",
                _ => "/Engineering",
            };
            t.users.get_mut(id).unwrap().org_unit_path = unit.into();
        }
    });
    users
}

async fn a_google_org_unit_scope_imports_the_units_and_those_below(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let users = place_in_units(&server);
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let (all, all_groups) = imported(&fx).await;
    assert_eq!(all.len(), 12);
    let scope = json!({ "kind": "ORG_UNITS", "orgUnitPaths": ["/Sales"] });
    let (preview, run) = previewed_then_set(&fx, &id, scope).await;
    assert_eq!(preview["usersInScope"], 4, "{preview}");
    assert_eq!(run["usersRemoved"], 8, "{run}");
    let (in_scope, groups) = imported(&fx).await;
    assert_eq!(
        in_scope,
        sorted(&users[..4]),
        "/Sales and /Sales/EMEA, not /Salesforce"
    );
    assert_eq!(
        groups, all_groups,
        "groups hold no org unit: every group stays"
    );
    // Two units, one below the other, list each user once; a second unit widens.
    let scope =
        json!({ "kind": "ORG_UNITS", "orgUnitPaths": ["/Sales/EMEA", "/Sales", "/Salesforce"] });
    let (preview, run) = previewed_then_set(&fx, &id, scope).await;
    assert_eq!(
        (&preview["usersInScope"], &preview["usersToImport"]),
        (&json!(5), &json!(1)),
        "{preview}"
    );
    assert_eq!(run["usersCreated"], 1, "{run}");
    assert_eq!(imported(&fx).await.0, sorted(&users[..5]));
    // A member of a group who is outside the scope is no member here.
    let viewer = fx.viewer().await;
    let members = fx
        .ok(
            &viewer,
            "{ groups(first: 100) { nodes { members { nodes { externalId } } } } }",
            json!({}),
        )
        .await;
    for group in members["groups"]["nodes"].as_array().unwrap() {
        for member in group["members"]["nodes"].as_array().unwrap() {
            let external = member["externalId"].as_str().unwrap().to_owned();
            assert!(
                users[..5].contains(&external),
                "{external} is outside the scope"
            );
        }
    }
    // A path that is not one is a user error; an Entra integration has no org units.
    let admin = fx.admin().await;
    let refused = fx
        .gql(
            &admin,
            SET,
            json!({ "id": id, "scope": { "kind": "ORG_UNITS", "orgUnitPaths": ["Sales"] } }),
        )
        .await;
    assert_eq!(
        user_error(&refused),
        (
            "INVALID_INPUT".to_owned(),
            "input.scope.orgUnitPaths".to_owned()
        )
    );
}

const UNITS: &str = r#"query($id: ID!, $search: String, $first: Int, $after: String) {
  directoryOrgUnits(integrationId: $id, search: $search, first: $first, after: $after) {
    nodes { path name } endCursor } }"#;

async fn an_admin_picks_org_units_from_the_directory_live(fx: Fixture) {
    let (fx, server) = started(fx).await;
    place_in_units(&server);
    let google = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let admin = fx.admin().await;
    let paths = |data: &Value| -> Vec<String> {
        data["directoryOrgUnits"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["path"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = fx.ok(&admin, UNITS, json!({ "id": google })).await;
    assert_eq!(
        paths(&all),
        ["/Engineering", "/Sales", "/Sales/EMEA", "/Salesforce"]
    );
    assert_eq!(all["directoryOrgUnits"]["nodes"][2]["name"], "EMEA");
    // By name or path, a page at a time, the cursor sealed to its listing.
    let first = fx
        .ok(
            &admin,
            UNITS,
            json!({ "id": google, "search": "SALES", "first": 2 }),
        )
        .await;
    assert_eq!(paths(&first), ["/Sales", "/Sales/EMEA"]);
    let after = first["directoryOrgUnits"]["endCursor"].clone();
    let next = fx
        .ok(
            &admin,
            UNITS,
            json!({ "id": google, "search": "SALES", "first": 2, "after": after }),
        )
        .await;
    assert_eq!(paths(&next), ["/Salesforce"]);
    assert!(next["directoryOrgUnits"]["endCursor"].is_null());
    let by_name = fx
        .ok(&admin, UNITS, json!({ "id": google, "search": "emea" }))
        .await;
    assert_eq!(paths(&by_name), ["/Sales/EMEA"]);
    for (vars, field) in [
        (
            json!({ "id": google, "search": "eng", "after": after }),
            "after",
        ),
        (
            json!({ "id": google, "after": "bm90IGEgY3Vyc29y" }),
            "after",
        ),
        (json!({ "id": google, "first": 101 }), "first"),
        (json!({ "id": google, "search": "x".repeat(257) }), "search"),
    ] {
        let refused = fx.gql(&admin, UNITS, vars).await;
        assert_eq!(error_code(&refused), "INVALID_INPUT", "{refused}");
        assert_eq!(refused["errors"][0]["extensions"]["field"], field);
    }
    let entra = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let refused = fx.gql(&admin, UNITS, json!({ "id": entra })).await;
    assert_eq!(refused["errors"][0]["extensions"]["field"], "integrationId");
    let viewer = fx.viewer().await;
    let refused = fx.gql(&viewer, UNITS, json!({ "id": google })).await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
}

async fn an_integration_added_to_choose_its_scope_waits_for_it(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (groups, users) = shape(&server, Kind::Entra);
    let admin = fx.admin().await;
    // Asking both for a scope and to choose one later, or a scope of SCIM, is a user error.
    let add = "mutation($input: AddIntegrationInput!) { addIntegration(input: $input) { integration { id } userErrors { field message code } } }";
    for (input, field) in [
        (
            json!({ "kind": "ENTRA_ID", "name": "Both", "chooseScope": true,
                    "scope": { "kind": "GROUPS", "groupIds": ["g"] } }),
            "input.chooseScope",
        ),
        (
            json!({ "kind": "SCIM", "name": "Okta", "chooseScope": true }),
            "input.scope",
        ),
        (
            json!({ "kind": "ENTRA_ID", "name": "Units",
                    "scope": { "kind": "ORG_UNITS", "orgUnitPaths": ["/Sales"] } }),
            "input.scope.kind",
        ),
    ] {
        let refused = fx.gql(&admin, add, json!({ "input": input })).await;
        assert_eq!(
            user_error(&refused),
            ("INVALID_INPUT".to_owned(), field.to_owned()),
            "{refused}"
        );
    }
    let id = connect_with(
        &fx,
        json!({ "kind": "ENTRA_ID", "name": "Contoso", "chooseScope": true }),
    )
    .await;
    let state = fx
        .ok(
            &admin,
            "query($id: ID!) { integration(id: $id) { status syncRuns { totalCount } } users { totalCount } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(state["integration"]["status"], "AWAITING_SCOPE", "{state}");
    assert_eq!(
        state["integration"]["syncRuns"]["totalCount"], 0,
        "nothing is read yet"
    );
    assert_eq!(state["users"]["totalCount"], 0);
    let refused = fx
        .gql(
            &admin,
            "mutation($id: ID!) { syncIntegration(input: {id: $id}) { syncRun { id } userErrors { field code message } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        user_error(&refused),
        ("INVALID_INPUT".to_owned(), "input.id".to_owned())
    );
    // The groups can be read to choose among; the chosen scope starts the first import.
    let listed = fx
        .ok(
            &admin,
            "query($id: ID!) { directoryGroups(integrationId: $id, search: \"Left\") { nodes { externalId } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        listed["directoryGroups"]["nodes"][0]["externalId"],
        groups["Left"].as_str()
    );
    let set = set_scope(
        &fx,
        &id,
        json!({ "kind": "GROUPS", "groupIds": [groups["Left"]] }),
    )
    .await;
    assert_eq!(set["integration"]["status"], "ACTIVE", "{set}");
    assert_eq!(set["syncRun"]["trigger"], "INITIAL");
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let (in_scope, scoped_groups) = imported(&fx).await;
    assert_eq!(in_scope, sorted(&[users[1].clone(), users[3].clone()]));
    assert_eq!(scoped_groups, ["Bottom", "Left"]);

    // Added with a scope: the first import is that scope's.
    let google = connect_with(
        &fx,
        json!({ "kind": "GOOGLE_WORKSPACE", "name": "Fabrikam",
                "scope": { "kind": "ORG_UNITS", "orgUnitPaths": ["/Sales"] } }),
    )
    .await;
    let run = last_run(&fx, &google).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["trigger"], "INITIAL");
    let expected = {
        let key = server.tenant(Kind::Google);
        let d = server.fake.directory();
        d.tenants[&key]
            .users
            .values()
            .filter(|u| fake_directory::model::in_unit(&u.org_unit_path, "/Sales"))
            .count()
    };
    assert!(expected > 0);
    assert_eq!(run["usersCreated"], expected, "{run}");
}
