//! Directory change events (`src/directory/events.rs`): each path that changes directory data
//! writes its events in the same transaction, with the object's state; an unchanged re-sync
//! writes none; the feed is gapless and ordered while a sync writes; filters are checked.

use crate::{
    on_both_databases,
    scim::ScimClient,
    support::{Fixture, error_code},
    sync::{connect, started, sync, tenant_users},
};
use fake_directory::Kind;
use serde_json::{Value, json};

on_both_databases!(
    a_pull_sync_tells_every_change_and_an_unchanged_one_nothing,
    holds_restores_and_a_revoked_grant_are_told,
    scim_pushes_devices_and_integrations_tell_their_changes,
    the_feed_is_gapless_and_ordered_while_a_sync_writes,
    deleting_an_integration_tells_each_user_and_group_that_leaves,
);

const FEED: &str = "query($after: String, $first: Int, $filter: EventFilter) { events(after: $after, first: $first, filter: $filter) { edges { cursor node { sequence type integrationId objectType objectId data } } pageInfo { hasNextPage endCursor } } }";

/// Every event after `after`, read in pages of `page`; returns them and the last cursor.
async fn feed(fx: &Fixture, after: &Value, page: i64, filter: Value) -> (Vec<Value>, Value) {
    let viewer = fx.viewer().await;
    let mut after = after.clone();
    let mut out = Vec::new();
    loop {
        let data = fx
            .ok(
                &viewer,
                FEED,
                json!({ "after": after, "first": page, "filter": filter }),
            )
            .await;
        let conn = &data["events"];
        for edge in conn["edges"].as_array().unwrap() {
            out.push(edge["node"].clone());
            after = edge["cursor"].clone();
        }
        if conn["pageInfo"]["hasNextPage"] != true {
            return (out, after);
        }
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

fn count(events: &[Value], ty: &str) -> usize {
    events.iter().filter(|e| e["type"] == ty).count()
}

/// The one event of `ty` about the user with `external` id.
fn user_event<'a>(events: &'a [Value], ty: &str, external: &str) -> &'a Value {
    let found: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == ty && e["data"]["state"]["externalId"] == external)
        .collect();
    assert_eq!(found.len(), 1, "one {ty} for {external}: {events:#?}");
    found[0]
}

async fn a_pull_sync_tells_every_change_and_an_unchanged_one_nothing(fx: Fixture) {
    let (fx, server) = started(fx, 40).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let (first, cursor) = feed(&fx, &Value::Null, 50, Value::Null).await;
    assert_eq!(count(&first, "INTEGRATION_CREATED"), 1);
    assert_eq!(count(&first, "INTEGRATION_AUTHORIZED"), 1);
    assert_eq!(count(&first, "USER_CREATED"), 40);
    assert_eq!(count(&first, "GROUP_CREATED"), 3);
    assert_eq!(
        count(&first, "GROUP_MEMBER_ADDED"),
        40,
        "every user is in one group"
    );
    assert_eq!(count(&first, "SYNC_RUN_FINISHED"), 1);
    assert_eq!(
        first.last().unwrap()["type"],
        "SYNC_RUN_FINISHED",
        "the run's end is its last event"
    );
    let created = first.iter().find(|e| e["type"] == "USER_CREATED").unwrap();
    assert_eq!(created["objectType"], "USER");
    assert_eq!(created["integrationId"], id);
    assert_eq!(created["data"]["object"]["id"], created["objectId"]);
    assert!(created["data"]["state"]["userName"].is_string());
    let seqs: Vec<i64> = first
        .iter()
        .map(|e| e["sequence"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless: {seqs:?}"
    );

    // Unchanged: nothing.
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED");
    let (none, cursor) = feed(&fx, &cursor, 50, Value::Null).await;
    assert_eq!(
        types(&none),
        Vec::<&str>::new(),
        "an unchanged re-sync writes no event"
    );

    // Renamed, suspended, removed (no device), archived (a device), moved between groups.
    let ids = tenant_users(&server, Kind::Entra);
    let (renamed, suspended, removed, archived) = (
        ids[0].clone(),
        ids[1].clone(),
        ids[2].clone(),
        ids[3].clone(),
    );
    let device_user = dirgate::directory::users::list(
        &fx.db,
        &Default::default(),
        dirgate::store::page::PageArgs {
            first: 100,
            after: None,
        },
        Default::default(),
        None,
        dirgate::store::columns::Columns::ALL,
    )
    .await
    .unwrap()
    .items
    .into_iter()
    .find(|u| u.external_id == archived)
    .unwrap();
    fx.device("C02EVENT", Some(&device_user)).await;
    let key = server.tenant(Kind::Entra);
    let moved = server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        t.change_user(&renamed, |u| u.display_name = "Renamed Person".into())
            .unwrap();
        t.change_user(&suspended, |u| u.suspended = true).unwrap();
        t.remove_user(&removed).unwrap();
        t.remove_user(&archived).unwrap();
        let groups: Vec<String> = t.groups.keys().cloned().collect();
        let user = ids[5].clone();
        let from = groups
            .iter()
            .find(|g| t.members.get(*g).is_some_and(|m| m.contains(&user)))
            .unwrap()
            .clone();
        let to = groups.iter().find(|g| **g != from).unwrap().clone();
        t.remove_member(&from, &user);
        t.add_member(&to, &user);
        user
    });
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let (changes, _) = feed(&fx, &cursor, 4, Value::Null).await;
    let update = user_event(&changes, "USER_UPDATED", &renamed);
    assert_eq!(update["data"]["changedFields"], json!(["displayName"]));
    assert_eq!(update["data"]["state"]["displayName"], "Renamed Person");
    let suspension = user_event(&changes, "USER_SUSPENDED", &suspended);
    assert_eq!(suspension["data"]["state"]["status"], "SUSPENDED");
    let gone = user_event(&changes, "USER_REMOVED", &removed);
    assert_eq!(gone["data"]["state"]["externalId"], removed.as_str());
    let kept = user_event(&changes, "USER_ARCHIVED", &archived);
    assert_eq!(kept["data"]["state"]["status"], "ARCHIVED");
    let _ = moved;
    assert!(
        count(&changes, "GROUP_MEMBER_REMOVED") >= 1,
        "{:?}",
        types(&changes)
    );
    assert!(
        count(&changes, "GROUP_MEMBER_ADDED") >= 1,
        "{:?}",
        types(&changes)
    );
    assert_eq!(count(&changes, "SYNC_RUN_FINISHED"), 1);
    assert_eq!(count(&changes, "USER_CREATED"), 0);
}

async fn holds_restores_and_a_revoked_grant_are_told(fx: Fixture) {
    let (fx, server) = started(fx, 60).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let (_, cursor) = feed(&fx, &Value::Null, 100, Value::Null).await;
    // Past the safety threshold: held, and nothing removed.
    crate::sync::remove_from_directory(&server, Kind::Entra, 15);
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "HELD");
    let (held, cursor) = feed(&fx, &cursor, 100, Value::Null).await;
    // The memberships the directory dropped are applied; the removals wait.
    assert_eq!(count(&held, "SYNC_RUN_HELD"), 1, "{:?}", types(&held));
    assert_eq!(
        count(&held, "USER_REMOVED") + count(&held, "USER_ARCHIVED"),
        0
    );
    let run_event = held.last().unwrap();
    assert_eq!(run_event["type"], "SYNC_RUN_HELD");
    assert_eq!(run_event["data"]["state"]["status"], "HELD");
    assert_eq!(run_event["objectType"], "SYNC_RUN");
    // Confirmed, the held run's removals apply and are told.
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        "mutation($id: ID!) { confirmSyncRun(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
        json!({ "id": run["id"] }),
    )
    .await;
    fx.settle_syncs().await;
    let (confirmed, cursor) = feed(&fx, &cursor, 100, json!({ "types": ["USER_REMOVED"] })).await;
    assert_eq!(confirmed.len(), 15, "{:?}", types(&confirmed));
    // An archived user (kept for a device) who comes back is restored.
    let ids = tenant_users(&server, Kind::Entra);
    let back = ids[0].clone();
    let user = dirgate::directory::users::list(
        &fx.db,
        &Default::default(),
        dirgate::store::page::PageArgs {
            first: 100,
            after: None,
        },
        Default::default(),
        None,
        dirgate::store::columns::Columns::ALL,
    )
    .await
    .unwrap()
    .items
    .into_iter()
    .find(|u| u.external_id == back)
    .unwrap();
    fx.device("C02BACK", Some(&user)).await;
    let key = server.tenant(Kind::Entra);
    let saved = server
        .fake
        .edit(|d| d.tenants.get_mut(&key).unwrap().remove_user(&back).unwrap());
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    let (gone, cursor) = feed(&fx, &cursor, 100, json!({ "types": ["USER_ARCHIVED"] })).await;
    assert_eq!(gone.len(), 1, "{gone:#?}");
    server
        .fake
        .edit(|d| d.tenants.get_mut(&key).unwrap().put_user(saved));
    sync(&fx, &id).await;
    let (restored, cursor) = feed(&fx, &cursor, 100, json!({ "types": ["USER_RESTORED"] })).await;
    assert_eq!(restored.len(), 1, "{restored:#?}");
    assert_eq!(restored[0]["data"]["state"]["status"], "ACTIVE");
    // A revoked grant: the integration needs re-authentication.
    server.fake.revoke(&key);
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "FAILED");
    let (reauth, _) = feed(&fx, &cursor, 100, Value::Null).await;
    // After the restoring run's own end: the failed run's.
    let reauth = &reauth[reauth.len() - 2..];
    assert_eq!(
        types(reauth),
        ["INTEGRATION_NEEDS_REAUTH", "SYNC_RUN_FINISHED"],
        "{reauth:#?}"
    );
    assert_eq!(reauth[0]["data"]["state"]["status"], "NEEDS_REAUTH");
    assert_eq!(reauth[1]["data"]["state"]["status"], "FAILED");
}

async fn scim_pushes_devices_and_integrations_tell_their_changes(fx: Fixture) {
    let scim = ScimClient::start(&fx, "Okta").await;
    let (_, start) = feed(&fx, &Value::Null, 50, Value::Null).await;
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ev@okta.example",
        "displayName": "Eve",
        "active": true
    });
    let (status, created) = scim.call("POST", "/Users", Some(user.clone())).await;
    assert_eq!(status, 201);
    let scim_id = created["id"].as_str().unwrap().to_owned();
    // The same resource again: nothing changed, no event.
    let (status, _) = scim
        .call("PUT", &format!("/Users/{scim_id}"), Some(user.clone()))
        .await;
    assert_eq!(status, 200);
    let patch = |active: bool| {
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": "replace", "path": "active", "value": active }]
        })
    };
    scim.call("PATCH", &format!("/Users/{scim_id}"), Some(patch(false)))
        .await;
    scim.call("PATCH", &format!("/Users/{scim_id}"), Some(patch(true)))
        .await;
    let (status, group) = scim
        .call(
            "POST",
            "/Groups",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Engineering",
                "members": [{ "value": scim_id }]
            })),
        )
        .await;
    assert_eq!(status, 201, "{group}");
    let group_id = group["id"].as_str().unwrap().to_owned();
    let (status, _) = scim
        .call("DELETE", &format!("/Groups/{group_id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = scim
        .call("DELETE", &format!("/Users/{scim_id}"), None)
        .await;
    assert_eq!(status, 204);
    // Devices and integrations through GraphQL.
    let admin = fx.admin().await;
    let device = fx
        .ok(
            &admin,
            "mutation { registerDevice(input: {serialNumber: \"C02EV\", name: \"Mac\", platform: MACOS}) { device { id } userErrors { field message code } } }",
            json!({}),
        )
        .await["registerDevice"]["device"]["id"]
        .clone();
    let integration = scim.integration["id"].clone();
    fx.ok(
        &admin,
        "mutation($id: ID!) { renameIntegration(input: {id: $id, name: \"Okta EU\"}) { integration { id } userErrors { field message code } } }",
        json!({ "id": integration }),
    )
    .await;
    let (_, before_more) = feed(&fx, &start, 50, Value::Null).await;
    // A group renamed over SCIM, and a device assigned and unassigned.
    let (_, team) = scim
        .call(
            "POST",
            "/Groups",
            Some(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Team" })),
        )
        .await;
    let team_id = team["id"].as_str().unwrap().to_owned();
    let (status, _) = scim
        .call(
            "PUT",
            &format!("/Groups/{team_id}"),
            Some(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Team Blue" })),
        )
        .await;
    assert_eq!(status, 200);
    let (_, member) = scim
        .call(
            "POST",
            "/Users",
            Some(json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "dev@okta.example", "active": true })),
        )
        .await;
    let member_id = dirgate::graphql::ids::encode(
        "User",
        dirgate::directory::users::list(
            &fx.db,
            &Default::default(),
            dirgate::store::page::PageArgs {
                first: 10,
                after: None,
            },
            Default::default(),
            None,
            dirgate::store::columns::Columns::ALL,
        )
        .await
        .unwrap()
        .items
        .iter()
        .find(|u| u.user_name == "dev@okta.example")
        .unwrap()
        .id,
    );
    let _ = member;
    fx.ok(
        &admin,
        "mutation($d: ID!, $u: ID!) { assignDeviceUser(input: {deviceId: $d, userId: $u}) { device { id } userErrors { field message code } } }",
        json!({ "d": device, "u": member_id }),
    )
    .await;
    fx.ok(
        &admin,
        "mutation($d: ID!) { unassignDeviceUser(input: {deviceId: $d}) { device { id } userErrors { field message code } } }",
        json!({ "d": device }),
    )
    .await;
    let (more, _) = feed(&fx, &before_more, 50, Value::Null).await;
    assert_eq!(
        types(&more),
        [
            "GROUP_CREATED",
            "GROUP_UPDATED",
            "USER_CREATED",
            "DEVICE_ASSIGNED",
            "DEVICE_UNASSIGNED",
        ],
        "{more:#?}"
    );
    assert_eq!(more[1]["data"]["changedFields"], json!(["displayName"]));
    assert_eq!(more[3]["data"]["state"]["userId"], member_id.as_str());
    assert_eq!(more[4]["data"]["state"]["userId"], Value::Null);
    let (events, _) = feed(&fx, &start, 3, Value::Null).await;
    let events = &events[..9];
    assert_eq!(
        types(events),
        [
            "USER_CREATED",
            "USER_SUSPENDED",
            "USER_REACTIVATED",
            "GROUP_CREATED",
            "GROUP_MEMBER_ADDED",
            "GROUP_REMOVED",
            "USER_REMOVED",
            "DEVICE_REGISTERED",
            "INTEGRATION_RENAMED",
        ],
        "{events:#?}"
    );
    assert_eq!(events[7]["objectId"], device);
    assert_eq!(events[7]["integrationId"], Value::Null);
    assert_eq!(events[8]["data"]["state"]["name"], "Okta EU");
    assert_eq!(events[2]["data"]["changedFields"], json!(["status"]));

    // Filters: by type, by integration; an unknown type is refused.
    let (only, _) = feed(
        &fx,
        &start,
        2,
        json!({ "types": ["USER_SUSPENDED", "USER_REACTIVATED"] }),
    )
    .await;
    assert_eq!(types(&only), ["USER_SUSPENDED", "USER_REACTIVATED"]);
    let (of_it, _) = feed(&fx, &start, 50, json!({ "integrationId": integration })).await;
    assert_eq!(
        of_it.iter().filter(|e| e["objectType"] == "DEVICE").count(),
        0,
        "devices belong to no integration"
    );
    assert_eq!(of_it.len(), 8 + 3, "all but the devices'");
    let viewer = fx.viewer().await;
    let res = fx
        .gql(
            &viewer,
            FEED,
            json!({ "filter": { "types": ["USER_EXPLODED"] } }),
        )
        .await;
    // Event types are an enum: the schema refuses one that is not.
    assert_eq!(error_code(&res), "GRAPHQL_VALIDATION_FAILED");
    let delete = "mutation($id: ID!) { deleteIntegration(input: {id: $id, confirmName: \"Okta EU\"}) { deletedIntegrationId userErrors { field message code } } }";
    fx.ok(&admin, delete, json!({ "id": integration })).await;
    let (deleted, _) = feed(&fx, &start, 50, json!({ "types": ["INTEGRATION_DELETED"] })).await;
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["objectId"], integration);
}

async fn the_feed_is_gapless_and_ordered_while_a_sync_writes(fx: Fixture) {
    let (fx, _server) = started(fx, 600).await;
    let fx = std::sync::Arc::new(fx);
    let writer = {
        let fx = fx.clone();
        tokio::spawn(async move { connect(&fx, "ENTRA_ID", "Contoso", false).await })
    };
    // A consumer reading pages of 7 while the sync writes.
    let mut seen: Vec<i64> = Vec::new();
    let mut after = Value::Null;
    let viewer = fx.viewer().await;
    loop {
        let done = writer.is_finished();
        let data = fx
            .ok(&viewer, FEED, json!({ "after": after, "first": 7 }))
            .await;
        for edge in data["events"]["edges"].as_array().unwrap() {
            seen.push(edge["node"]["sequence"].as_str().unwrap().parse().unwrap());
            after = edge["cursor"].clone();
        }
        if done && data["events"]["pageInfo"]["hasNextPage"] != true {
            break;
        }
        tokio::task::yield_now().await;
    }
    writer.await.unwrap();
    assert!(seen.len() > 600, "{}", seen.len());
    assert_eq!(seen[0], 1);
    assert!(
        seen.windows(2).all(|w| w[1] == w[0] + 1),
        "each event exactly once, in order"
    );
}

/// `directoryEvents` over graphql-ws: from a cursor, the events after it, then new ones as
/// they commit, filtered by type.
#[tokio::test]
async fn the_subscription_resumes_from_a_cursor_and_streams_new_events() {
    use crate::http::{Server, next_json, ws_connect};
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let server = Server::start(crate::support::Backend::Sqlite, dirgate::Config::defaults()).await;
    let fx = &server.fx;
    let admin = fx.admin().await;
    let register = |serial: &str| {
        format!(
            "mutation {{ registerDevice(input: {{serialNumber: \"{serial}\", name: \"Mac\", platform: MACOS}}) {{ device {{ id }} userErrors {{ field message code }} }} }}"
        )
    };
    fx.ok(&admin, &register("C02S1"), json!({})).await;
    let (_, cursor) = feed(fx, &Value::Null, 50, Value::Null).await;
    fx.ok(&admin, &register("C02S2"), json!({})).await;
    let token = fx.token(dirgate::auth::TokenRole::Viewer).await;
    let mut ws = ws_connect(&server).await;
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::text(init.to_string())).await.unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    let subscribe = json!({
        "id": "1", "type": "subscribe",
        "payload": {
            "query": "subscription($after: String) { directoryEvents(after: $after, filter: {types: [\"DEVICE_REGISTERED\"]}) { type data } }",
            "variables": { "after": cursor }
        }
    });
    ws.send(Message::text(subscribe.to_string())).await.unwrap();
    let first = next_json(&mut ws).await.unwrap();
    assert_eq!(
        first["payload"]["data"]["directoryEvents"]["data"]["state"]["serialNumber"], "C02S2",
        "{first}"
    );
    fx.ok(&admin, &register("C02S3"), json!({})).await;
    let next = next_json(&mut ws).await.unwrap();
    assert_eq!(
        next["payload"]["data"]["directoryEvents"]["data"]["state"]["serialNumber"], "C02S3",
        "{next}"
    );
}

/// Retention: events older than the cut are pruned, newer ones stay.
#[tokio::test]
async fn events_past_the_retention_are_pruned() {
    use dirgate::directory::events;
    let fx = Fixture::sqlite().await;
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        "mutation { registerDevice(input: {serialNumber: \"C02OLD\", name: \"Mac\", platform: MACOS}) { device { id } userErrors { field message code } } }",
        json!({}),
    )
    .await;
    let now = chrono::Utc::now();
    assert_eq!(
        events::prune(&fx.db, now - chrono::Duration::days(1))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        events::prune(&fx.db, now + chrono::Duration::seconds(1))
            .await
            .unwrap(),
        1
    );
    let left = events::list(&fx.db, None, 10, &Default::default())
        .await
        .unwrap();
    assert!(left.items.is_empty());
    // Numbers are never reused after a prune.
    fx.ok(
        &admin,
        "mutation { registerDevice(input: {serialNumber: \"C02NEW\", name: \"Mac\", platform: MACOS}) { device { id } userErrors { field message code } } }",
        json!({}),
    )
    .await;
    let left = events::list(&fx.db, None, 10, &Default::default())
        .await
        .unwrap();
    assert_eq!(left.items[0].seq, 2);
}

/// A follower of rare types reads through the unwanted events once: the next read starts past
/// them; and a read never passes an event it did not see.
#[tokio::test]
async fn a_follower_moves_past_unwanted_events() {
    use dirgate::directory::events::{self, EventFilter, NewEvent};
    let fx = Fixture::sqlite().await;
    let event = |ty: &'static str, id: i64| NewEvent {
        event_type: ty,
        integration_id: None,
        object_type: "Device",
        object_id: id,
        data: "{}".into(),
    };
    let mut batch: Vec<NewEvent> = (1..=5).map(|i| event("device.registered", i)).collect();
    batch.push(event("device.assigned", 6));
    events::record(&fx.db, batch).await.unwrap();
    let rare = EventFilter {
        types: vec!["device.unassigned".into()],
        integration: None,
    };
    let read = events::read(&fx.db, 0, 10, &rare).await.unwrap();
    assert!(read.items.is_empty());
    assert_eq!(read.through, 6, "past everything committed");
    let assigned = EventFilter {
        types: vec!["device.assigned".into()],
        integration: None,
    };
    let read = events::read(&fx.db, 0, 10, &assigned).await.unwrap();
    assert_eq!(read.items.len(), 1);
    assert_eq!(read.through, 6);
    let all = EventFilter::default();
    let read = events::read(&fx.db, 0, 2, &all).await.unwrap();
    assert_eq!(
        (read.items.len(), read.through, read.has_next),
        (2, 2, true)
    );
}

/// Webhook delivery attempts are pruned with the events' retention.
#[tokio::test]
async fn webhook_attempts_past_the_retention_are_pruned() {
    use sea_orm::{ActiveModelTrait, Set};
    // The service's own pruner runs at start: with a retention of a century it cannot take the
    // 40-day attempt before this test's prune does (it did, now and then, with the default 30).
    let mut config = dirgate::config::Config::defaults();
    config.webhook_delivery = false;
    config.event_retention_days = 36_500;
    let fx = Fixture::with_config(crate::support::Backend::Sqlite, config).await;
    let admin = dirgate::auth::Admin::cli();
    let secrets = dirgate::crypto::SecretBox::new(&[3; 32]);
    let (endpoint, _) = dirgate::webhooks::create(
        &fx.db,
        &admin,
        &secrets,
        true,
        "http://127.0.0.1:9/hook",
        &[],
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();
    for days in [40, 1] {
        entity::webhook_attempt::ActiveModel {
            endpoint_id: Set(endpoint.id),
            event_seq: Set(1),
            attempt: Set(1),
            status_code: Set(Some(200)),
            latency_ms: Set(3),
            error: Set(None),
            attempted_at: Set(now - chrono::Duration::days(days)),
            ..Default::default()
        }
        .insert(&fx.db)
        .await
        .unwrap();
    }
    let pruned = dirgate::webhooks::prune_attempts(&fx.db, now - chrono::Duration::days(30))
        .await
        .unwrap();
    assert_eq!(pruned, 1);
    assert_eq!(
        dirgate::webhooks::attempts(&fx.db, endpoint.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn deleting_an_integration_tells_each_user_and_group_that_leaves(fx: Fixture) {
    let (fx, server) = started(fx, 60).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let admin = fx.admin().await;
    let kept = tenant_users(&server, Kind::Entra)[7].clone();
    let user = fx
        .ok(
            &admin,
            "query($f: UserFilter) { users(first: 100, filter: $f) { nodes { id externalId } } }",
            json!({ "f": { "integrationId": id } }),
        )
        .await["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["externalId"] == kept.as_str())
        .unwrap()["id"]
        .clone();
    let device = fx
        .ok(
            &admin,
            "mutation { registerDevice(input: {serialNumber: \"C02DEL\", name: \"Mac\", platform: MACOS}) { device { id } userErrors { field message code } } }",
            json!({}),
        )
        .await["registerDevice"]["device"]["id"]
        .clone();
    fx.ok(
        &admin,
        "mutation($d: ID!, $u: ID!) { assignDeviceUser(input: {deviceId: $d, userId: $u}) { device { id } userErrors { field message code } } }",
        json!({ "d": device, "u": user }),
    )
    .await;
    let (_, cursor) = feed(&fx, &Value::Null, 500, Value::Null).await;
    fx.ok(
        &admin,
        "mutation($id: ID!) { deleteIntegration(input: {id: $id, confirmName: \"Contoso\"}) { usersRemoved usersRetained userErrors { field message code } } }",
        json!({ "id": id }),
    )
    .await;
    let (events, _) = feed(&fx, &cursor, 500, Value::Null).await;
    assert_eq!(count(&events, "USER_REMOVED"), 59, "{:?}", types(&events));
    assert_eq!(count(&events, "USER_ARCHIVED"), 1);
    assert_eq!(count(&events, "GROUP_REMOVED"), 3);
    assert_eq!(count(&events, "INTEGRATION_DELETED"), 1);
    let archived = user_event(&events, "USER_ARCHIVED", &kept);
    assert_eq!(archived["data"]["state"]["status"], "ARCHIVED");
    assert_eq!(archived["data"]["state"]["origin"], "Contoso");
    assert_eq!(
        archived["data"]["state"]["integrationId"],
        Value::Null,
        "detached from the deleted integration"
    );
    let removed: std::collections::HashSet<&str> = events
        .iter()
        .filter(|e| e["type"] == "USER_REMOVED")
        .map(|e| e["data"]["state"]["externalId"].as_str().unwrap())
        .collect();
    assert_eq!(removed.len(), 59, "each removed user once");
    assert!(!removed.contains(kept.as_str()));
}
