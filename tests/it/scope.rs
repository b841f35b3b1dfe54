//! What an integration imports (R19): an Entra integration scoped to chosen groups imports
//! their users (directly or through nesting), those groups and the groups nested in them;
//! narrowing the scope removes or archives the users left outside (held past the threshold,
//! applied on confirm), widening imports the newcomers; a bad scope is a user error that
//! changes nothing. On SQLite and PostgreSQL, through the real Graph client against the fake.

use crate::{
    nesting::{shape, started},
    on_both_databases,
    support::{Fixture, user_error},
    sync::{connect, last_run},
};
use fake_directory::Kind;
use serde_json::{Value, json};

on_both_databases!(
    a_group_scope_imports_its_groups_users_and_narrowing_removes_the_rest,
    narrowing_past_the_threshold_is_held_until_confirmed,
    a_bad_scope_is_a_user_error_and_changes_nothing,
    an_admin_picks_groups_from_the_directory_live,
    a_preview_counts_what_the_run_then_does,
);

pub(crate) const PREVIEW: &str = r#"query($id: ID!, $scope: ScopeInput!) { scopePreview(integrationId: $id, scope: $scope) {
  usersInScope usersToImport usersToKeep usersToRemove usersToArchive
  groupsInScope groupsToImport groupsToKeep groupsToRemove exact } }"#;

/// `scopePreview` counts, without writing, what the run that applies the scope then does.
async fn a_preview_counts_what_the_run_then_does(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (groups, users) = shape(&server, Kind::Entra);
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let keeper = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entity::directory_user::Entity::find()
            .filter(entity::directory_user::Column::ExternalId.eq(users[4].as_str()))
            .one(&fx.db)
            .await
            .unwrap()
            .unwrap()
    };
    fx.device("C02PREVIEW", Some(&keeper)).await;
    let admin = fx.admin().await;
    let top = json!({ "kind": "GROUPS", "groupIds": [groups["Top"]] });
    let preview = fx
        .ok(&admin, PREVIEW, json!({ "id": id, "scope": top }))
        .await["scopePreview"]
        .clone();
    assert_eq!(
        preview,
        json!({ "usersInScope": 4, "usersToImport": 0, "usersToKeep": 4, "usersToRemove": 7,
                "usersToArchive": 1, "groupsInScope": 4, "groupsToImport": 0, "groupsToKeep": 4,
                "groupsToRemove": 2, "exact": true })
    );
    assert_eq!(imported(&fx).await.0.len(), 12, "a preview writes nothing");
    set_scope(&fx, &id, top).await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["usersRemoved"], preview["usersToRemove"], "{run}");
    assert_eq!(run["usersArchived"], preview["usersToArchive"]);
    assert_eq!(run["groupsRemoved"], preview["groupsToRemove"]);
    // Back to everything: the removed and the archived come in, the rest stay.
    let all = fx
        .ok(
            &admin,
            PREVIEW,
            json!({ "id": id, "scope": { "kind": "ALL" } }),
        )
        .await["scopePreview"]
        .clone();
    assert_eq!(
        (
            &all["usersToImport"],
            &all["usersToKeep"],
            &all["usersToRemove"],
            &all["groupsToImport"]
        ),
        (&json!(8), &json!(4), &json!(0), &json!(2)),
        "{all}"
    );
    set_scope(&fx, &id, json!({ "kind": "ALL" })).await;
    let run = last_run(&fx, &id).await;
    let brought = run["usersCreated"].as_i64().unwrap() + run["usersRestored"].as_i64().unwrap();
    assert_eq!(json!(brought), all["usersToImport"], "{run}");
    // Refused like the mutation, as top-level errors (a query has no payload).
    let scim = crate::scim::add_scim(&fx, "Okta").await["integration"]["id"].clone();
    let refused = fx
        .gql(
            &admin,
            PREVIEW,
            json!({ "id": scim, "scope": { "kind": "ALL" } }),
        )
        .await;
    assert_eq!(crate::support::error_code(&refused), "INVALID_INPUT");
    let refused = fx
        .gql(
            &admin,
            PREVIEW,
            json!({ "id": id, "scope": { "kind": "GROUPS" } }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["field"],
        "scope.groupIds"
    );
    let viewer = fx.viewer().await;
    let refused = fx
        .gql(
            &viewer,
            PREVIEW,
            json!({ "id": id, "scope": { "kind": "ALL" } }),
        )
        .await;
    assert_eq!(crate::support::error_code(&refused), "FORBIDDEN");
}

const PICK: &str = r#"query($id: ID!, $search: String, $first: Int, $after: String) {
  directoryGroups(integrationId: $id, search: $search, first: $first, after: $after) {
    nodes { externalId displayName } endCursor } }"#;

/// `directoryGroups` reads the directory's groups live (Entra `$filter=startswith`, Google
/// `query=name:'..'*`), a page at a time with a cursor sealed to its listing.
async fn an_admin_picks_groups_from_the_directory_live(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (groups, _) = shape(&server, Kind::Entra);
    shape(&server, Kind::Google);
    let entra = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let google = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let admin = fx.admin().await;
    for id in [&entra, &google] {
        let names = |data: &Value| -> Vec<String> {
            data["directoryGroups"]["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["displayName"].as_str().unwrap().to_owned())
                .collect()
        };
        let all = fx.ok(&admin, PICK, json!({ "id": id })).await;
        assert_eq!(names(&all).len(), 6, "{all}");
        assert!(all["directoryGroups"]["endCursor"].is_null());
        let first = fx
            .ok(
                &admin,
                PICK,
                json!({ "id": id, "search": "cyc", "first": 1 }),
            )
            .await;
        assert_eq!(names(&first), ["Cyc1"]);
        let after = first["directoryGroups"]["endCursor"].clone();
        assert!(after.is_string(), "{first}");
        let next = fx
            .ok(
                &admin,
                PICK,
                json!({ "id": id, "search": "cyc", "first": 1, "after": after }),
            )
            .await;
        assert_eq!(names(&next), ["Cyc2"]);
        assert!(next["directoryGroups"]["endCursor"].is_null(), "{next}");
        // A cursor works only for the listing that issued it; a made-up one is refused.
        for (search, cursor) in [
            ("to", after.clone()),
            ("cyc", json!("AAAA")),
            ("cyc", json!("http://evil.example/")),
        ] {
            let refused = fx
                .gql(
                    &admin,
                    PICK,
                    json!({ "id": id, "search": search, "first": 1, "after": cursor }),
                )
                .await;
            assert_eq!(
                crate::support::error_code(&refused),
                "INVALID_INPUT",
                "{refused}"
            );
            assert_eq!(refused["errors"][0]["extensions"]["field"], "after");
        }
    }
    let top = fx
        .ok(&admin, PICK, json!({ "id": entra, "search": "TO" }))
        .await;
    assert_eq!(
        top["directoryGroups"]["nodes"][0]["externalId"],
        groups["Top"].as_str()
    );
    for (vars, field) in [
        (json!({ "id": entra, "first": 0 }), "first"),
        (json!({ "id": entra, "first": 101 }), "first"),
        (json!({ "id": entra, "search": "x".repeat(257) }), "search"),
    ] {
        let refused = fx.gql(&admin, PICK, vars).await;
        assert_eq!(
            crate::support::error_code(&refused),
            "INVALID_INPUT",
            "{refused}"
        );
        assert_eq!(refused["errors"][0]["extensions"]["field"], field);
    }
    let scim = crate::scim::add_scim(&fx, "Okta").await["integration"]["id"].clone();
    let refused = fx.gql(&admin, PICK, json!({ "id": scim })).await;
    assert_eq!(refused["errors"][0]["extensions"]["field"], "integrationId");
    let viewer = fx.viewer().await;
    let refused = fx.gql(&viewer, PICK, json!({ "id": entra })).await;
    assert_eq!(crate::support::error_code(&refused), "FORBIDDEN");
}

pub(crate) const SET: &str = r#"mutation($id: ID!, $scope: ScopeInput!) {
  updateIntegrationScope(input: {id: $id, scope: $scope}) {
    integration { status scope { kind groupIds orgUnitPaths } } syncRun { id trigger }
    userErrors { field message code } } }"#;

pub(crate) async fn set_scope(fx: &Fixture, id: &Value, scope: Value) -> Value {
    let admin = fx.admin().await;
    let data = fx
        .ok(&admin, SET, json!({ "id": id, "scope": scope }))
        .await;
    fx.settle_syncs().await;
    data["updateIntegrationScope"].clone()
}

/// The external ids of the integration's users and the names of its groups, sorted.
pub(crate) async fn imported(fx: &Fixture) -> (Vec<String>, Vec<String>) {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "{ users(first: 500) { nodes { externalId status } } groups(first: 500) { nodes { displayName } } }",
            json!({}),
        )
        .await;
    let pick = |list: &Value, field: &str| {
        let mut out: Vec<String> = list["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["status"] != "ARCHIVED")
            .map(|n| n[field].as_str().unwrap().to_owned())
            .collect();
        out.sort();
        out
    };
    (
        pick(&data["users"], "externalId"),
        pick(&data["groups"], "displayName"),
    )
}

pub(crate) fn sorted(ids: &[String]) -> Vec<String> {
    let mut out = ids.to_vec();
    out.sort();
    out
}

async fn a_group_scope_imports_its_groups_users_and_narrowing_removes_the_rest(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (groups, users) = shape(&server, Kind::Entra);
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let (all_users, _) = imported(&fx).await;
    assert_eq!(all_users.len(), 12, "the whole tenant first");
    // One user outside the coming scope has a device: it is archived, not removed.
    let keeper = users[4].clone();
    let keeper_row = {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entity::directory_user::Entity::find()
            .filter(entity::directory_user::Column::ExternalId.eq(keeper.as_str()))
            .one(&fx.db)
            .await
            .unwrap()
            .unwrap()
    };
    fx.device("C02SCOPE", Some(&keeper_row)).await;

    // Reads of the tenant's users: a listing, or an enumeration of the delta feed (asking
    // the feed's `$deltatoken=latest`, a link from now on, lists nobody).
    let tenant_reads = |server: &crate::support::fake::FakeServer| {
        server.fake.requests("/v1.0/users") + server.fake.requests("/v1.0/users/delta")
            - server.fake.requests("/v1.0/users/delta?latest")
    };
    let before = tenant_reads(&server);
    let set = set_scope(
        &fx,
        &id,
        json!({ "kind": "GROUPS", "groupIds": [groups["Top"]] }),
    )
    .await;
    assert_eq!(set["userErrors"], json!([]));
    assert_eq!(set["integration"]["scope"]["kind"], "GROUPS");
    assert_eq!(
        set["integration"]["scope"]["groupIds"],
        json!([groups["Top"]])
    );
    assert!(set["syncRun"]["id"].is_string(), "{set}");
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let (in_scope, scoped_groups) = imported(&fx).await;
    assert_eq!(
        in_scope,
        sorted(&users[..4]),
        "Top's users, through nesting"
    );
    assert_eq!(scoped_groups, ["Bottom", "Left", "Right", "Top"]);
    assert_eq!(run["usersRemoved"], 7, "{run}");
    assert_eq!(run["usersArchived"], 1, "{run}");
    assert_eq!(run["groupsRemoved"], 2);
    // The scoped read went through the chosen group's transitive members, not the tenant.
    let top_users = format!(
        "/v1.0/groups/{}/transitiveMembers/microsoft.graph.user",
        groups["Top"]
    );
    assert_eq!(server.fake.requests(&top_users), 1);
    assert_eq!(
        tenant_reads(&server),
        before,
        "no read of the tenant's users"
    );

    // Groups chosen twice over (Left is in Top) list each user and group once.
    set_scope(
        &fx,
        &id,
        json!({ "kind": "GROUPS", "groupIds": [groups["Top"], groups["Left"]] }),
    )
    .await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        (run["usersCreated"].as_i64(), run["usersRemoved"].as_i64()),
        (Some(0), Some(0)),
        "{run}"
    );
    assert_eq!(
        imported(&fx).await,
        (in_scope.clone(), scoped_groups.clone())
    );

    // Widening imports the newcomers, and the archived user comes back.
    set_scope(
        &fx,
        &id,
        json!({ "kind": "GROUPS", "groupIds": [groups["Top"], groups["Cyc1"]] }),
    )
    .await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersRestored"], 1, "{run}");
    let (widened, groups_now) = imported(&fx).await;
    assert_eq!(widened, sorted(&users[..6]));
    assert_eq!(groups_now.len(), 6);

    // Back to the whole directory.
    let set = set_scope(&fx, &id, json!({ "kind": "ALL" })).await;
    assert_eq!(
        set["integration"]["scope"],
        json!({ "kind": "ALL", "groupIds": [], "orgUnitPaths": [] })
    );
    assert_eq!(imported(&fx).await.0.len(), 12);
    // Each change is audited.
    let admin = fx.admin().await;
    let audit = fx
        .ok(
            &admin,
            "{ auditEvents(filter: {action: UPDATE_INTEGRATION_SCOPE}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(audit["auditEvents"]["totalCount"], 4);
}

async fn narrowing_past_the_threshold_is_held_until_confirmed(fx: Fixture) {
    let server = crate::support::fake::FakeServer::start(40, 3).await;
    let mut fx = fx;
    fx.use_providers(server.settings());
    let key = server.tenant(Kind::Entra);
    let (group, members) = {
        let d = server.fake.directory();
        let t = &d.tenants[&key];
        let (group, members) = t.members.iter().next().unwrap();
        (group.clone(), members.len())
    };
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    set_scope(&fx, &id, json!({ "kind": "GROUPS", "groupIds": [group] })).await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "HELD", "{} of 40 leave: {run}", 40 - members);
    assert_eq!(
        imported(&fx).await.0.len(),
        40,
        "nothing removed while held"
    );
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        "mutation($id: ID!) { confirmSyncRun(input: {id: $id}) { syncRun { id } userErrors { code } } }",
        json!({ "id": run["id"] }),
    )
    .await;
    fx.settle_syncs().await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(imported(&fx).await.0.len(), members);
}

async fn a_bad_scope_is_a_user_error_and_changes_nothing(fx: Fixture) {
    let (fx, _server) = started(fx).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let google = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let scim = crate::scim::add_scim(&fx, "Okta").await["integration"]["id"].clone();
    let admin = fx.admin().await;
    let many: Vec<String> = (0..51).map(|i| format!("g{i}")).collect();
    for (target, scope, field) in [
        (&id, json!({ "kind": "GROUPS" }), "input.scope.groupIds"),
        (
            &id,
            json!({ "kind": "GROUPS", "groupIds": [" "] }),
            "input.scope.groupIds",
        ),
        (
            &id,
            json!({ "kind": "GROUPS", "groupIds": many }),
            "input.scope.groupIds",
        ),
        (
            &id,
            json!({ "kind": "ORG_UNITS", "orgUnitPaths": ["/Sales"] }),
            "input.scope.kind",
        ),
        (
            &google,
            json!({ "kind": "ORG_UNITS", "orgUnitPaths": ["Sales"] }),
            "input.scope.orgUnitPaths",
        ),
        (
            &google,
            json!({ "kind": "ORG_UNITS", "orgUnitPaths": [] }),
            "input.scope.orgUnitPaths",
        ),
        (&scim, json!({ "kind": "ALL" }), "input.scope"),
    ] {
        let response = fx
            .gql(&admin, SET, json!({ "id": target, "scope": scope }))
            .await;
        assert_eq!(
            user_error(&response),
            ("INVALID_INPUT".to_owned(), field.to_owned()),
            "{scope}: {response}"
        );
        assert!(response["data"]["updateIntegrationScope"]["integration"].is_null());
    }
    // A value the edge's text policy refuses never reaches the mutation: a top-level error.
    let bidi = json!({ "kind": "GROUPS", "groupIds": ["a\u{202E}b"] });
    let response = fx
        .gql(&admin, SET, json!({ "id": id, "scope": bidi }))
        .await;
    assert_eq!(crate::support::error_code(&response), "INVALID_INPUT");
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "{ integrations { nodes { scope { kind } } } }",
            json!({}),
        )
        .await;
    for node in data["integrations"]["nodes"].as_array().unwrap() {
        assert_eq!(node["scope"]["kind"], "ALL", "nothing changed: {data}");
    }
    // A viewer may not set a scope.
    let refused = fx
        .gql(
            &viewer,
            SET,
            json!({ "id": id, "scope": { "kind": "ALL" } }),
        )
        .await;
    assert_eq!(crate::support::error_code(&refused), "FORBIDDEN");
}
