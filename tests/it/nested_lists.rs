//! Nested lists: a user's groups and devices are pages like every other list (`first`,
//! `after`, `totalCount`, `pageInfo`), and every nested list takes `orderBy`, by creation
//! either way; a page of users that reads its users' lists beside it answers each window
//! asked for.

use crate::{
    on_both_databases,
    support::{Fixture, error_code},
};
use dirgate::graphql::ids::{encode, kinds};
use serde_json::{Value, json};

on_both_databases!(
    a_users_groups_and_devices_are_pages,
    nested_lists_sort_by_creation_either_way,
    sync_runs_are_newest_first_unless_asked_otherwise,
    each_window_of_a_users_lists_is_answered,
    nested_page_arguments_are_checked,
);

fn names(list: &Value, field: &str) -> Vec<String> {
    list["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no nodes in {list}"))
        .iter()
        .map(|n| n[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn a_users_groups_and_devices_are_pages(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let adele = fx.user(&contoso, "adele@contoso.example").create().await;
    for name in ["Alpha", "Beta", "Gamma"] {
        fx.group(&contoso, name, &[&adele]).await;
    }
    for serial in ["S1", "S2", "S3"] {
        fx.device(serial, Some(&adele)).await;
    }
    let viewer = fx.viewer().await;
    let query = r#"query($id: ID!, $groups: String, $devices: String) { user(id: $id) {
        groups(first: 2, after: $groups) { totalCount pageInfo { hasNextPage endCursor } nodes { displayName } }
        devices(first: 2, after: $devices) { totalCount pageInfo { hasNextPage endCursor } nodes { serialNumber } } } }"#;
    let id = encode(kinds::USER, adele.id).to_string();
    let first = fx.ok(&viewer, query, json!({ "id": id })).await;
    let (groups, devices) = (&first["user"]["groups"], &first["user"]["devices"]);
    assert_eq!(names(groups, "displayName"), ["Alpha", "Beta"]);
    assert_eq!(names(devices, "serialNumber"), ["S1", "S2"]);
    for list in [groups, devices] {
        assert_eq!(list["totalCount"], 3);
        assert_eq!(list["pageInfo"]["hasNextPage"], true);
    }
    let vars = json!({ "id": id, "groups": groups["pageInfo"]["endCursor"],
        "devices": devices["pageInfo"]["endCursor"] });
    let next = fx.ok(&viewer, query, vars).await;
    let (groups, devices) = (&next["user"]["groups"], &next["user"]["devices"]);
    assert_eq!(names(groups, "displayName"), ["Gamma"]);
    assert_eq!(names(devices, "serialNumber"), ["S3"]);
    assert_eq!(groups["pageInfo"]["hasNextPage"], false);
    assert_eq!(devices["pageInfo"]["hasNextPage"], false);
}

async fn nested_lists_sort_by_creation_either_way(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let ada = fx.user(&contoso, "ada@contoso.example").create().await;
    let bob = fx.user(&contoso, "bob@contoso.example").create().await;
    let cy = fx.user(&contoso, "cy@contoso.example").create().await;
    fx.group(&contoso, "One", &[&ada, &bob, &cy]).await;
    fx.group(&contoso, "Two", &[&ada]).await;
    fx.device("D1", Some(&ada)).await;
    fx.device("D2", Some(&ada)).await;
    let viewer = fx.viewer().await;
    let query = r#"query($dir: OrderDirection!, $after: String) {
        integrations { nodes {
            users(first: 2, after: $after, orderBy: {direction: $dir}) { pageInfo { endCursor } nodes { userName } }
            groups(orderBy: {direction: $dir}) { nodes { displayName
                members(first: 2, after: $after, orderBy: {direction: $dir}) { nodes { userName } } } } } }
        users(first: 1) { nodes {
            groups(orderBy: {direction: $dir}) { nodes { displayName } }
            devices(orderBy: {direction: $dir}) { nodes { serialNumber } } } } }"#;
    let desc = fx.ok(&viewer, query, json!({ "dir": "DESC" })).await;
    let integration = &desc["integrations"]["nodes"][0];
    let users = &integration["users"];
    assert_eq!(
        names(users, "userName"),
        ["cy@contoso.example", "bob@contoso.example"]
    );
    let groups = &integration["groups"];
    assert_eq!(names(groups, "displayName"), ["Two", "One"]);
    assert_eq!(
        names(&groups["nodes"][1]["members"], "userName"),
        ["cy@contoso.example", "bob@contoso.example"]
    );
    let first_user = &desc["users"]["nodes"][0];
    assert_eq!(names(&first_user["groups"], "displayName"), ["Two", "One"]);
    assert_eq!(names(&first_user["devices"], "serialNumber"), ["D2", "D1"]);
    // A cursor of a descending page resumes it descending.
    let after = users["pageInfo"]["endCursor"].clone();
    let rest = fx
        .ok(&viewer, query, json!({ "dir": "DESC", "after": after }))
        .await;
    let integration = &rest["integrations"]["nodes"][0];
    assert_eq!(
        names(&integration["users"], "userName"),
        ["ada@contoso.example"]
    );
    assert_eq!(
        names(&integration["groups"]["nodes"][1]["members"], "userName"),
        ["ada@contoso.example"]
    );
    let asc = fx.ok(&viewer, query, json!({ "dir": "ASC" })).await;
    let first_user = &asc["users"]["nodes"][0];
    assert_eq!(names(&first_user["groups"], "displayName"), ["One", "Two"]);
    assert_eq!(names(&first_user["devices"], "serialNumber"), ["D1", "D2"]);
}

async fn sync_runs_are_newest_first_unless_asked_otherwise(fx: Fixture) {
    use entity::{
        enums::{SyncRunStatus, SyncTrigger},
        sync_run,
    };
    use sea_orm::{ActiveModelTrait, Set};
    let contoso = fx.integration("Contoso").create().await;
    let mut ids = Vec::new();
    for trigger in [
        SyncTrigger::Initial,
        SyncTrigger::Scheduled,
        SyncTrigger::Manual,
    ] {
        let now = chrono::Utc::now();
        let run = sync_run::ActiveModel {
            integration_id: Set(contoso.id),
            trigger: Set(trigger),
            status: Set(SyncRunStatus::Succeeded),
            queued_at: Set(now),
            started_at: Set(Some(now)),
            finished_at: Set(Some(now)),
            pages_read: Set(0),
            users_created: Set(0),
            users_updated: Set(0),
            users_suspended: Set(0),
            users_removed: Set(0),
            users_archived: Set(0),
            users_restored: Set(0),
            groups_created: Set(0),
            groups_updated: Set(0),
            groups_removed: Set(0),
            retries: Set(0),
            throttled_ms: Set(0),
            warning_count: Set(0),
            ..Default::default()
        };
        ids.push(run.insert(&fx.db).await.unwrap().id);
    }
    let viewer = fx.viewer().await;
    let triggers = |data: &Value| names(&data["integrations"]["nodes"][0]["syncRuns"], "trigger");
    let newest = fx
        .ok(
            &viewer,
            "{ integrations { nodes { syncRuns { nodes { trigger } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(triggers(&newest), ["MANUAL", "SCHEDULED", "INITIAL"]);
    let oldest = fx
        .ok(
            &viewer,
            "{ integrations { nodes { syncRuns(orderBy: {direction: ASC}) { nodes { trigger } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(triggers(&oldest), ["INITIAL", "SCHEDULED", "MANUAL"]);
    assert_eq!(ids.len(), 3);
}

/// A page of users asked for with two different windows of its users' groups (aliases)
/// cannot read one window beside the page; each field then answers its own.
async fn each_window_of_a_users_lists_is_answered(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let ada = fx.user(&contoso, "ada@contoso.example").create().await;
    for name in ["G1", "G2", "G3"] {
        fx.group(&contoso, name, &[&ada]).await;
    }
    fx.device("D1", Some(&ada)).await;
    let viewer = fx.viewer().await;
    let query = r#"{
        integrations { nodes { users { nodes {
            one: groups(first: 1) { pageInfo { hasNextPage } nodes { displayName } }
            all: groups(first: 3) { pageInfo { hasNextPage } nodes { displayName } } } } } }
        devices { nodes { user {
            newest: groups(first: 2, orderBy: {direction: DESC}) { nodes { displayName } } } } } }"#;
    let data = fx.ok(&viewer, query, json!({})).await;
    let user = &data["integrations"]["nodes"][0]["users"]["nodes"][0];
    assert_eq!(names(&user["one"], "displayName"), ["G1"]);
    assert_eq!(user["one"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(names(&user["all"], "displayName"), ["G1", "G2", "G3"]);
    assert_eq!(user["all"]["pageInfo"]["hasNextPage"], false);
    let user = &data["devices"]["nodes"][0]["user"];
    assert_eq!(names(&user["newest"], "displayName"), ["G3", "G2"]);
}

/// The abuse cases of a nested list's arguments: a page above the maximum, a negative one, a
/// cursor that is not one. Each is INVALID_INPUT, whether the list is read beside its page
/// of users or alone.
async fn nested_page_arguments_are_checked(fx: Fixture) {
    let contoso = fx.integration("Contoso").create().await;
    let ada = fx.user(&contoso, "ada@contoso.example").create().await;
    fx.device("D1", Some(&ada)).await;
    fx.group(&contoso, "G", &[&ada]).await;
    let viewer = fx.viewer().await;
    for args in ["first: 501", "first: -1", r#"after: "not a cursor""#] {
        for query in [
            format!("{{ users {{ nodes {{ groups({args}) {{ totalCount }} }} }} }}"),
            format!("{{ devices {{ nodes {{ user {{ devices({args}) {{ totalCount }} }} }} }} }}"),
            format!("{{ groups {{ nodes {{ members({args}) {{ totalCount }} }} }} }}"),
            format!("{{ integrations {{ nodes {{ syncRuns({args}) {{ totalCount }} }} }} }}"),
        ] {
            let response = fx.gql(&viewer, &query, json!({})).await;
            assert_eq!(
                error_code(&response),
                "INVALID_INPUT",
                "{query}: {response}"
            );
        }
    }
    let response = fx
        .gql(
            &viewer,
            "{ users { nodes { groups(orderBy: {direction: SIDEWAYS}) { totalCount } } } }",
            json!({}),
        )
        .await;
    assert!(response["errors"][0]["message"].is_string(), "{response}");
}
