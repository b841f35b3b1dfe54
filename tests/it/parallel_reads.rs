//! Reads at a provider's pace (issue 14): member lists read many at once and the users and
//! groups listings side by side, within the session's throttle; a provider quota slows the run
//! down and shows in it; a failing worker removes nobody (R15); a shutdown mid-read ends the
//! run CANCELLED with no read left running. On SQLite and PostgreSQL, against the fake
//! directory slowed to a real provider's round trip.

use crate::{
    on_both_databases,
    support::{Fixture, fake::FakeServer},
    sync::{connect, last_run, request_sync, sync, tenant_users, user_count},
};
use fake_directory::Kind;
use serde_json::{Value, json};
use std::time::Duration;

/// A fake directory of `users` users and `groups` groups per tenant, whose Directory API
/// answers after `latency`, with the app pointed at it.
async fn slow_fake(
    mut fx: Fixture,
    users: usize,
    groups: usize,
    latency: Duration,
) -> (Fixture, FakeServer) {
    let server = FakeServer::start(users, groups).await;
    let mut settings = server.settings();
    // Several pages per Entra listing, so its two chains have something to overlap.
    settings.entra_page_size = 50;
    // A quota refuses more often than a provider would: let the throttle, not the retry
    // budget, decide.
    settings.retry.max_throttle_retries = 50;
    fx.use_providers(settings);
    server.fake.set_latency(latency);
    (fx, server)
}

/// Memberships of the tenant of `kind` in the fake, counting only users the directory has.
fn fake_memberships(server: &FakeServer, kind: Kind) -> usize {
    let tenant = &server.fake.directory().tenants[&server.tenant(kind)];
    tenant
        .members
        .values()
        .flatten()
        .filter(|m| tenant.users.contains_key(*m))
        .count()
}

/// Memberships dirgate holds for the integration `id`.
async fn memberships(fx: &Fixture, id: &Value) -> i64 {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "query($f: GroupFilter) { groups(first: 500, filter: $f) { nodes { members { totalCount } } } }",
            json!({ "f": { "integrationId": id } }),
        )
        .await;
    data["groups"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["members"]["totalCount"].as_i64().unwrap())
        .sum()
}

async fn google_member_lists_are_read_many_at_once(fx: Fixture) {
    let (fx, server) = slow_fake(fx, 300, 120, Duration::from_millis(20)).await;
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersCreated"], 300);
    assert_eq!(run["groupsCreated"], 120);
    assert_eq!(
        memberships(&fx, &id).await as usize,
        fake_memberships(&server, Kind::Google),
        "every member list read to its end"
    );
    let (most, refused) = server.fake.concurrency();
    assert!(
        (8..=dirgate::providers::GOOGLE_CONCURRENCY).contains(&most),
        "{most} calls in flight at most"
    );
    assert_eq!(refused, 0);
    assert_eq!(run["retries"], 0);
    assert_eq!(run["throttledFor"], 0.0);
}

async fn entra_reads_users_and_groups_side_by_side(fx: Fixture) {
    let (fx, server) = slow_fake(fx, 300, 40, Duration::from_millis(20)).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        memberships(&fx, &id).await as usize,
        fake_memberships(&server, Kind::Entra)
    );
    // Two chains of pages, one call each at a time.
    assert_eq!(server.fake.concurrency().0, 2);
}

async fn a_provider_quota_slows_the_run_and_shows_in_it(fx: Fixture) {
    let (fx, server) = slow_fake(fx, 200, 80, Duration::from_millis(10)).await;
    // Four calls at once, then 429 with `Retry-After: 1`: well below the client's 16.
    server.fake.set_quota(Some(4));
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let run = last_run(&fx, &id).await;
    assert_eq!(
        run["status"], "SUCCEEDED",
        "throttling never fails a run: {run}"
    );
    assert_eq!(
        memberships(&fx, &id).await as usize,
        fake_memberships(&server, Kind::Google)
    );
    let (calls, _) = server.fake.calls();
    let (most, refused) = server.fake.concurrency();
    assert!(most <= 4);
    assert!(refused > 0, "the quota was reached");
    // The throttle keeps under the quota once it has found it: a client that kept sending 16
    // at once would be refused on most of its ~90 calls.
    assert!(refused * 3 < calls, "{refused} refused of {calls} calls");
    assert_eq!(
        run["retries"].as_u64(),
        Some(refused),
        "every refusal was read again, and counted"
    );
    let paused = run["throttledFor"].as_f64().unwrap();
    assert!(paused >= 1.0, "paused for each Retry-After: {paused} s");

    let metrics = dirgate::metrics::render(&fx.db).unwrap_or_default();
    assert!(
        metrics.contains("dirgate_sync_run_throttled_seconds_sum{provider=\"google\"}"),
        "the run's throttling is in the metrics"
    );
}

async fn a_member_read_that_fails_removes_nobody(fx: Fixture) {
    let (fx, server) = slow_fake(fx, 40, 10, Duration::ZERO).await;
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let before = memberships(&fx, &id).await;
    assert_eq!(last_run(&fx, &id).await["status"], "SUCCEEDED");
    // One user leaves the directory; one group's member list keeps failing.
    let key = server.tenant(Kind::Google);
    let gone = tenant_users(&server, Kind::Google)[0].clone();
    let group = server.fake.edit(|d| {
        let tenant = d.tenants.get_mut(&key).unwrap();
        tenant.remove_user(&gone).unwrap();
        tenant.groups.keys().nth(5).unwrap().clone()
    });
    server.fail(
        &format!("/admin/directory/v1/groups/{group}/members"),
        1_000,
        503,
    );
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("nothing was removed"),
        "{run}"
    );
    assert_eq!(run["usersRemoved"], 0);
    assert_eq!(user_count(&fx, json!({ "integrationId": id })).await, 40);
    assert_eq!(memberships(&fx, &id).await, before, "no membership removed");
}

async fn a_shutdown_mid_read_cancels_the_run_and_leaves_no_read_running(fx: Fixture) {
    let (mut fx, server) = slow_fake(fx, 100, 400, Duration::ZERO).await;
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let users = user_count(&fx, json!({ "integrationId": id })).await;
    let key = server.tenant(Kind::Google);
    let gone = tenant_users(&server, Kind::Google)[0].clone();
    server
        .fake
        .edit(|d| d.tenants.get_mut(&key).unwrap().remove_user(&gone));
    // 400 member lists at 100 ms, 16 at a time: about 2.5 s of reading.
    server.fake.set_latency(Duration::from_millis(100));
    request_sync(&fx, &id).await;
    // Stop once the member reads are under way.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let run = last_run(&fx, &id).await;
        if run["status"] == "RUNNING" && run["pagesRead"].as_i64().unwrap_or(0) > 20 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    fx.stop_background().await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "CANCELLED", "{run}");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("nothing was removed")
    );
    assert!(
        run["pagesRead"].as_i64().unwrap() < 400,
        "stopped part-way: {run}"
    );
    assert_eq!(
        user_count(&fx, json!({ "integrationId": id })).await,
        users,
        "the gone user is still there"
    );
    // No read is left running: the fake hears nothing more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (calls, _) = server.fake.calls();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.fake.calls().0, calls, "a worker still reads");
}

on_both_databases!(
    google_member_lists_are_read_many_at_once,
    entra_reads_users_and_groups_side_by_side,
    a_provider_quota_slows_the_run_and_shows_in_it,
    a_member_read_that_fails_removes_nobody,
    a_shutdown_mid_read_cancels_the_run_and_leaves_no_read_running,
);
