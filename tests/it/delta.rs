//! Incremental Entra syncs (Graph delta queries): the first sync reads everything through
//! `/users/delta` and `/groups/delta` (members inline) and keeps the delta links; later syncs
//! read changes only, `@removed` users follow R14, an expired token (410) falls back to a full
//! read, and a full read still runs at least daily. On SQLite and PostgreSQL.

use crate::{
    on_both_databases,
    support::{Fixture, fake::FakeServer, quiet_schedule},
    sync::{connect, last_run, started, sync, tenant_users, user_count},
};
use fake_directory::Kind;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

on_both_databases!(
    entra_reads_only_changes_after_the_first_full_read,
    an_expired_delta_token_falls_back_to_a_full_read,
    a_full_read_still_runs_daily,
);

/// The integration's stored delta state.
async fn delta_state(fx: &Fixture) -> Value {
    let row = entity::integration::Entity::find()
        .one(&fx.db)
        .await
        .unwrap()
        .expect("an integration");
    serde_json::from_str(row.delta_state.as_deref().expect("delta links are stored")).unwrap()
}

fn delta_requests(server: &FakeServer) -> u64 {
    server.fake.requests("/v1.0/users/delta") + server.fake.requests("/v1.0/groups/delta")
}

async fn user_by_external(fx: &Fixture, external: &str) -> Value {
    let viewer = fx.viewer().await;
    let users = fx
        .ok(
            &viewer,
            "{ users(first: 500) { nodes { id externalId department status groups { nodes { externalId } } } } }",
            json!({}),
        )
        .await;
    users["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["externalId"] == external)
        .cloned()
        .unwrap_or(Value::Null)
}

async fn entra_reads_only_changes_after_the_first_full_read(fx: Fixture) {
    let (fx, server) = started(fx, 30).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let first = last_run(&fx, &id).await;
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    assert_eq!(first["usersCreated"], 30);
    assert_eq!(
        first["pagesRead"].as_u64().unwrap(),
        delta_requests(&server),
        "the first read goes through delta queries, members inline: no per-group member reads"
    );
    // Groups bigger than ten members come in several objects, the later ones with only `id`
    // and members: names and memberships survive.
    let viewer = fx.viewer().await;
    let groups = fx
        .ok(
            &viewer,
            "{ groups { nodes { externalId displayName memberCount } } }",
            json!({}),
        )
        .await;
    let key = server.tenant(Kind::Entra);
    let directory = server.fake.directory();
    let tenant = &directory.tenants[&key];
    for g in groups["groups"]["nodes"].as_array().unwrap() {
        let external = g["externalId"].as_str().unwrap();
        assert_eq!(
            g["displayName"],
            tenant.groups[external].display_name.as_str()
        );
        assert_eq!(
            g["memberCount"].as_u64().unwrap() as usize,
            tenant.members[external].len()
        );
    }
    assert!(
        tenant.members.values().any(|m| m.len() > 10),
        "a split group"
    );
    let state = delta_state(&fx).await;
    assert!(
        state["users"]
            .as_str()
            .unwrap()
            .contains("/v1.0/users/delta?$deltatoken="),
        "{state}"
    );
    assert!(state["full_at"].is_string());

    // A user with a device is deleted (archived, R14), one without is deleted (removed), one
    // changes department, one arrives and joins a group, one leaves a group.
    let ids = tenant_users(&server, Kind::Entra);
    let keep = user_by_external(&fx, &ids[0]).await;
    let admin = fx.admin().await;
    let device = fx.device("C02DELTA", None).await;
    fx.ok(
        &admin,
        "mutation($d: ID!, $u: ID!) { assignDeviceUser(input: {deviceId: $d, userId: $u}) { device { id } userErrors { field message code } } }",
        json!({ "d": dirgate::graphql::ids::encode("Device", device.id), "u": keep["id"] }),
    )
    .await;
    let (group, leaver) = server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        let (group, members) = t
            .members
            .iter()
            .find(|(_, m)| m.len() >= 2)
            .map(|(g, m)| (g.clone(), m.clone()))
            .expect("a group with members");
        let leaver = members
            .iter()
            .find(|m| **m != ids[0] && **m != ids[1] && **m != ids[2])
            .unwrap()
            .clone();
        t.remove_user(&ids[0]).unwrap();
        t.remove_user(&ids[1]).unwrap();
        t.change_user(&ids[2], |u| u.department = Some("Skunkworks".into()))
            .unwrap();
        let mut newcomer = t.users[&ids[3]].clone();
        newcomer.id = "new-user-0001".into();
        newcomer.user_name = "newcomer@contoso.example".into();
        newcomer.mail = Some("newcomer@contoso.example".into());
        t.put_user(newcomer);
        assert!(t.add_member(&group, "new-user-0001"));
        t.remove_member(&group, &leaver);
        (group, leaver)
    });
    let before = delta_requests(&server);
    fx.reset_statements();
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(fx.directory_writes() > 0, "the write counter sees writes");
    assert_eq!(
        delta_requests(&server) - before,
        2,
        "one page of user changes, one of group changes"
    );
    assert_eq!(run["pagesRead"], 2);
    assert_eq!(run["usersCreated"], 1);
    assert_eq!(run["usersUpdated"], 1);
    assert_eq!(run["usersRemoved"], 1);
    assert_eq!(run["usersArchived"], 1);
    // 30, less the one removed, plus the newcomer; the archived one stays (R14).
    assert_eq!(user_count(&fx, json!({ "integrationId": id })).await, 30);
    assert_eq!(user_by_external(&fx, &ids[0]).await["status"], "ARCHIVED");
    assert!(user_by_external(&fx, &ids[1]).await.is_null());
    let changed = user_by_external(&fx, &ids[2]).await;
    assert_eq!(changed["department"], "Skunkworks");
    assert_eq!(
        changed["status"], "ACTIVE",
        "a partial change keeps the rest"
    );
    let newcomer = user_by_external(&fx, "new-user-0001").await;
    assert_eq!(
        newcomer["groups"]["nodes"],
        json!([{ "externalId": group }])
    );
    let left = user_by_external(&fx, &leaver).await;
    assert!(
        !left["groups"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["externalId"] == group.as_str()),
        "{left}"
    );
    assert_ne!(
        delta_state(&fx).await["users"],
        state["users"],
        "the link moves on"
    );

    // Nothing changed: nothing written, two small reads.
    fx.reset_statements();
    let run = sync(&fx, &id).await;
    assert_eq!(fx.directory_writes(), 0);
    assert_eq!(run["pagesRead"], 2);
    for field in [
        "usersCreated",
        "usersUpdated",
        "usersRemoved",
        "usersArchived",
    ] {
        assert_eq!(run[field], 0, "{field}: {run}");
    }
}

async fn an_expired_delta_token_falls_back_to_a_full_read(fx: Fixture) {
    let (fx, server) = started(fx, 20).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let state = delta_state(&fx).await;
    let ids = tenant_users(&server, Kind::Entra);
    let key = server.tenant(Kind::Entra);
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        t.remove_user(&ids[5]).unwrap();
        t.delta_epoch += 1;
    });
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert!(run["error"].is_null(), "{run}");
    assert_eq!(run["usersRemoved"], 1, "the full read sweeps: {run}");
    assert_eq!(user_count(&fx, json!({ "integrationId": id })).await, 19);
    let fresh = delta_state(&fx).await;
    assert_ne!(fresh["users"], state["users"]);
    assert_ne!(
        fresh["full_at"], state["full_at"],
        "a full read was recorded"
    );
    // The new links work.
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["pagesRead"], 2);
}

async fn a_full_read_still_runs_daily(mut fx: Fixture) {
    use dirgate::sync::schedule::ManualClock;
    let server = FakeServer::start(20, 3).await;
    let clock = ManualClock::new(chrono::Utc::now());
    fx.use_providers_and_schedule(
        server.settings(),
        dirgate::sync::schedule::Schedule {
            clock: std::sync::Arc::new(clock.clone()),
            ..quiet_schedule()
        },
    );
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    // A change the delta feed never reports (as when Graph loses track of an object).
    let ids = tenant_users(&server, Kind::Entra);
    let key = server.tenant(Kind::Entra);
    server.fake.edit(|d| {
        d.tenants.get_mut(&key).unwrap().users.remove(&ids[0]);
    });
    let run = sync(&fx, &id).await;
    assert_eq!(run["pagesRead"], 2, "a delta read");
    assert_eq!(run["usersRemoved"], 0, "the delta feed did not say");
    clock.advance(chrono::Duration::hours(23));
    let run = sync(&fx, &id).await;
    assert_eq!(
        run["usersRemoved"], 0,
        "still within a day of the full read"
    );
    clock.advance(chrono::Duration::hours(2));
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersRemoved"], 1, "the daily full read sweeps: {run}");
}
