//! The sync engine against the fake directory: import, re-sync, removals (R14), the safety
//! threshold (R15), failures part-way, NEEDS_REAUTH (R16), deduplication (R6), automatic
//! assignment at sync (R12). On SQLite and PostgreSQL.

use crate::{
    on_both_databases,
    support::{
        Fixture, error_code,
        fake::{FakeServer, authorize, param},
        user_error,
    },
};
use entity::enums::{DirectoryKind, UserStatus};
use fake_directory::{FaultAction, Kind};
use serde_json::{Value, json};

pub(crate) const RUN_FIELDS: &str = "id status trigger error pagesRead usersCreated usersUpdated usersSuspended usersRemoved usersArchived usersRestored groupsCreated groupsRemoved retries throttledFor";

/// Connects an integration of `kind` (signing in as its admin) and waits for its first sync.
pub(crate) async fn connect(fx: &Fixture, kind: &str, name: &str, auto_assign: bool) -> Value {
    connect_with(
        fx,
        json!({ "kind": kind, "name": name, "autoAssignDevices": auto_assign }),
    )
    .await
}

/// Adds the integration `input` describes (an `AddIntegrationInput`), signs in as its
/// directory's admin, and waits for what follows.
pub(crate) async fn connect_with(fx: &Fixture, input: Value) -> Value {
    let admin = fx.admin().await;
    let data = fx
        .ok(
            &admin,
            "mutation($input: AddIntegrationInput!) { addIntegration(input: $input) { authorizationUrl integration { id } userErrors { field message code } } }",
            json!({ "input": input }),
        )
        .await;
    let url = data["addIntegration"]["authorizationUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("not added: {data}"))
        .to_owned();
    let account = if input["kind"] == "GOOGLE_WORKSPACE" {
        "admin@fabrikam.example"
    } else {
        "admin@contoso.example"
    };
    let back = authorize(&url, account, true).await;
    let input = json!({ "state": param(&back, "state"), "code": param(&back, "code") });
    fx.ok(&admin, "mutation($input: CompleteAuthorizationInput!) { completeAuthorization(input: $input) { integration { id } userErrors { field message code } } }", json!({ "input": input }))
        .await;
    fx.settle_syncs().await;
    data["addIntegration"]["integration"]["id"].clone()
}

/// The integration's newest run.
pub(crate) async fn last_run(fx: &Fixture, id: &Value) -> Value {
    let admin = fx.viewer().await;
    let query = format!(
        "query($id: ID!) {{ integration(id: $id) {{ status statusReason lastSyncedAt nextSyncAt syncRuns(first: 1) {{ nodes {{ {RUN_FIELDS} }} }} }} }}"
    );
    let data = fx.ok(&admin, &query, json!({ "id": id })).await;
    let mut run = data["integration"]["syncRuns"]["nodes"][0].clone();
    run["integration"] = data["integration"].clone();
    run
}

/// Asks for a sync, without waiting for it.
pub(crate) async fn request_sync(fx: &Fixture, id: &Value) {
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        "mutation($id: ID!) { syncIntegration(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
        json!({ "id": id }),
    )
    .await;
}

/// Asks for a sync and waits for it.
pub(crate) async fn sync(fx: &Fixture, id: &Value) -> Value {
    request_sync(fx, id).await;
    fx.settle_syncs().await;
    last_run(fx, id).await
}

pub(crate) async fn user_count(fx: &Fixture, filter: Value) -> i64 {
    let viewer = fx.viewer().await;
    fx.ok(
        &viewer,
        "query($f: UserFilter) { users(filter: $f) { totalCount } }",
        json!({ "f": filter }),
    )
    .await["users"]["totalCount"]
        .as_i64()
        .unwrap()
}

pub(crate) fn tenant_users(server: &FakeServer, kind: Kind) -> Vec<String> {
    let tenant = server.tenant(kind);
    server.fake.directory().tenants[&tenant]
        .users
        .keys()
        .cloned()
        .collect()
}

/// Deletes the first `n` users of the tenant of `kind` in the fake directory.
pub(crate) fn remove_from_directory(server: &FakeServer, kind: Kind, n: usize) {
    let ids = tenant_users(server, kind);
    let key = server.tenant(kind);
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        for gone in &ids[..n] {
            t.remove_user(gone).unwrap();
        }
    });
}

pub(crate) async fn started(mut fx: Fixture, users: usize) -> (Fixture, FakeServer) {
    let server = FakeServer::start(users, 3).await;
    fx.use_providers(server.settings());
    (fx, server)
}

on_both_databases!(
    first_sync_imports_users_groups_and_memberships,
    unchanged_resync_changes_nothing,
    gone_users_are_removed_or_archived_and_come_back_restored,
    a_sync_past_the_threshold_is_held_until_confirmed,
    a_failure_part_way_removes_nothing,
    a_revoked_grant_needs_reauth_and_keeps_the_data,
    sync_requests_are_deduplicated_and_scim_is_push_only,
    sync_assigns_waiting_devices_automatically,
    text_a_directory_sends_is_stored_exactly_whatever_it_holds,
);

async fn first_sync_imports_users_groups_and_memberships(fx: Fixture) {
    let (fx, _server) = started(fx, 60).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        run["trigger"], "INITIAL",
        "the first sync starts at once (R5)"
    );
    assert_eq!(run["usersCreated"], 60);
    assert_eq!(run["usersSuspended"], 1, "one user in fifty is disabled");
    assert_eq!(run["groupsCreated"], 3);
    assert!(run["integration"]["lastSyncedAt"].is_string());
    assert_eq!(user_count(&fx, json!({ "integrationId": id })).await, 60);
    assert_eq!(user_count(&fx, json!({ "status": "SUSPENDED" })).await, 1);
    let viewer = fx.viewer().await;
    let data = fx
        .ok(&viewer, "{ groups { totalCount nodes { memberCount } } users(first: 1) { nodes { origin groups { nodes { displayName } } } } }", json!({}))
        .await;
    let members: i64 = data["groups"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["memberCount"].as_i64().unwrap())
        .sum();
    assert_eq!(members, 60, "every user is in one group");
    assert_eq!(data["users"]["nodes"][0]["origin"], "Contoso");
    assert_eq!(
        data["users"]["nodes"][0]["groups"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Google the same way.
    let google = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    let run = last_run(&fx, &google).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(
        user_count(&fx, json!({ "integrationId": google })).await,
        60
    );
}

async fn unchanged_resync_changes_nothing(fx: Fixture) {
    let (fx, _server) = started(fx, 30).await;
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    fx.reset_statements();
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED");
    assert_eq!(run["trigger"], "MANUAL");
    assert_eq!(
        fx.directory_writes(),
        0,
        "an unchanged directory is compared, not rewritten"
    );
    for field in [
        "usersCreated",
        "usersUpdated",
        "usersSuspended",
        "usersRemoved",
        "usersArchived",
        "usersRestored",
        "groupsCreated",
        "groupsRemoved",
    ] {
        assert_eq!(run[field], 0, "{field}: {run}");
    }
    assert_eq!(user_count(&fx, json!({})).await, 30);
}

async fn gone_users_are_removed_or_archived_and_come_back_restored(fx: Fixture) {
    let (fx, server) = started(fx, 60).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let ids = tenant_users(&server, Kind::Entra);
    let (keep_device, plain, suspend) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    // Give the first user a device.
    let admin = fx.admin().await;
    let user_id = fx
        .ok(
            &admin,
            "{ users(first: 500) { nodes { id externalId } } }",
            json!({}),
        )
        .await["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["externalId"] == keep_device.as_str())
        .unwrap()["id"]
        .clone();
    let mac = fx.device("C02KEEP", None).await;
    fx.ok(
        &admin,
        "mutation($d: ID!, $u: ID!) { assignDeviceUser(input: {deviceId: $d, userId: $u}) { device { id } userErrors { field message code } } }",
        json!({ "d": dirgate::graphql::ids::encode("Device", mac.id), "u": user_id }),
    )
    .await;
    let key = server.tenant(Kind::Entra);
    let saved = server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        t.change_user(&suspend, |u| u.suspended = true).unwrap();
        let saved = t.remove_user(&keep_device).unwrap();
        t.remove_user(&plain).unwrap();
        saved
    });
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersRemoved"], 1);
    assert_eq!(run["usersArchived"], 1);
    assert_eq!(run["usersSuspended"], 1);
    let viewer = fx.viewer().await;
    let kept = fx
        .ok(&viewer, "query($id: ID!) { user(id: $id) { status origin archivedAt devices { nodes { serialNumber } } groups { nodes { id } } } }", json!({ "id": user_id }))
        .await;
    assert_eq!(kept["user"]["status"], "ARCHIVED");
    assert_eq!(kept["user"]["origin"], "Contoso");
    assert_eq!(
        kept["user"]["devices"]["nodes"],
        json!([{ "serialNumber": "C02KEEP" }])
    );
    assert_eq!(user_count(&fx, json!({ "integrationId": id })).await, 59);
    // The archived user comes back.
    let key = server.tenant(Kind::Entra);
    server.fake.edit(|d| {
        d.tenants.get_mut(&key).unwrap().put_user(saved);
    });
    let run = sync(&fx, &id).await;
    assert_eq!(run["usersRestored"], 1, "{run}");
    let back = fx
        .ok(
            &viewer,
            "query($id: ID!) { user(id: $id) { status archivedAt } }",
            json!({ "id": user_id }),
        )
        .await;
    assert_eq!(back["user"]["status"], "ACTIVE");
    assert!(back["user"]["archivedAt"].is_null());
    let _ = UserStatus::Active;
}

async fn a_sync_past_the_threshold_is_held_until_confirmed(fx: Fixture) {
    let (fx, server) = started(fx, 60).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    remove_from_directory(&server, Kind::Entra, 15);
    let run = sync(&fx, &id).await;
    assert_eq!(
        run["status"], "HELD",
        "15 of 60 is more than 20% and more than 10: {run}"
    );
    assert!(run["error"].as_str().unwrap().contains("15 of 60"));
    assert_eq!(run["usersRemoved"], 0);
    assert_eq!(
        user_count(&fx, json!({ "integrationId": id })).await,
        60,
        "nothing was removed"
    );
    let admin = fx.admin().await;
    let confirmed = fx
        .ok(
            &admin,
            "mutation($id: ID!) { confirmSyncRun(input: {id: $id}) { syncRun { id status } userErrors { field message code } } }",
            json!({ "id": run["id"] }),
        )
        .await;
    assert_eq!(confirmed["confirmSyncRun"]["syncRun"]["id"], run["id"]);
    fx.settle_syncs().await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersRemoved"], 15);
    assert_eq!(user_count(&fx, json!({ "integrationId": id })).await, 45);
    // Only a HELD run can be confirmed.
    let again = fx
        .gql(
            &admin,
            "mutation($id: ID!) { confirmSyncRun(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
            json!({ "id": run["id"] }),
        )
        .await;
    assert_eq!(
        user_error(&again),
        ("INVALID_INPUT".into(), "input.id".into())
    );
}

async fn a_failure_part_way_removes_nothing(fx: Fixture) {
    let (fx, server) = started(fx, 40).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let ids = tenant_users(&server, Kind::Entra);
    let key = server.tenant(Kind::Entra);
    server.fake.edit(|d| {
        d.tenants
            .get_mut(&key)
            .unwrap()
            .remove_user(&ids[0])
            .unwrap();
    });
    // Users read fine; groups keep failing.
    server.fail("/v1.0/groups", 1000, 503);
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    let error = run["error"].as_str().unwrap();
    assert!(
        error.contains("503") && error.contains("nothing was removed"),
        "{error}"
    );
    assert_eq!(run["usersRemoved"], 0);
    assert_eq!(
        user_count(&fx, json!({ "integrationId": id })).await,
        40,
        "the gone user is still there"
    );
    assert_eq!(
        run["integration"]["status"], "ACTIVE",
        "a provider outage is not a revoked grant"
    );
}

async fn a_revoked_grant_needs_reauth_and_keeps_the_data(fx: Fixture) {
    let (fx, server) = started(fx, 20).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    server.fake.revoke(&server.tenant(Kind::Entra));
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "FAILED");
    assert_eq!(run["integration"]["status"], "NEEDS_REAUTH");
    assert!(
        run["integration"]["statusReason"]
            .as_str()
            .unwrap()
            .contains("re-authenticate")
    );
    assert_eq!(
        user_count(&fx, json!({ "integrationId": id })).await,
        20,
        "the data stays"
    );
    let admin = fx.admin().await;
    let refused = fx
        .gql(
            &admin,
            "mutation($id: ID!) { syncIntegration(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        user_error(&refused),
        ("NEEDS_REAUTH".into(), "input.id".into())
    );
}

async fn sync_requests_are_deduplicated_and_scim_is_push_only(fx: Fixture) {
    let (fx, server) = started(fx, 10).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    server.fake.inject(fake_directory::Fault {
        route: "/v1.0/users".into(),
        count: 1,
        action: FaultAction::Slow { millis: 700 },
    });
    let admin = fx.admin().await;
    let first = fx
        .ok(
            &admin,
            "mutation($id: ID!) { syncIntegration(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
            json!({ "id": id }),
        )
        .await;
    let second = fx
        .ok(
            &admin,
            "mutation($id: ID!) { syncIntegration(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        first["syncIntegration"]["syncRun"]["id"], second["syncIntegration"]["syncRun"]["id"],
        "one run at a time (R6)"
    );
    fx.settle_syncs().await;
    let scim = fx
        .integration("Okta")
        .kind(DirectoryKind::Scim)
        .create()
        .await;
    let refused = fx
        .gql(
            &admin,
            "mutation($id: ID!) { syncIntegration(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
            json!({ "id": dirgate::graphql::ids::encode("Integration", scim.id) }),
        )
        .await;
    assert_eq!(
        user_error(&refused),
        ("PUSH_ONLY_INTEGRATION".into(), "input.id".into())
    );
    let viewer = fx.viewer().await;
    let forbidden = fx
        .gql(
            &viewer,
            "mutation($id: ID!) { syncIntegration(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&forbidden), "FORBIDDEN");
}

async fn sync_assigns_waiting_devices_automatically(fx: Fixture) {
    let (fx, server) = started(fx, 10).await;
    let first_user = server.fake.directory().tenants[&server.tenant(Kind::Entra)]
        .users
        .values()
        .next()
        .unwrap()
        .user_name
        .clone();
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        "mutation($i: RegisterDeviceInput!) { registerDevice(input: $i) { device { id } userErrors { field message code } } }",
        json!({ "i": { "serialNumber": "C02WAIT", "name": "Waiting", "platform": "MACOS", "enrollmentIdentity": first_user.to_uppercase() } }),
    )
    .await;
    connect(&fx, "ENTRA_ID", "Contoso", true).await;
    let data = fx
        .ok(
            &admin,
            "{ devices { nodes { serialNumber user { userName } assignment { source } } } }",
            json!({}),
        )
        .await;
    let device = &data["devices"]["nodes"][0];
    assert_eq!(device["user"]["userName"], first_user.as_str());
    assert_eq!(device["assignment"]["source"], "AUTOMATIC");
}

/// Waits until the integration has `n` runs (at most 10 s).
async fn wait_for_runs(fx: &Fixture, n: u64) {
    use sea_orm::{EntityTrait, PaginatorTrait};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while entity::sync_run::Entity::find()
        .count(&fx.db)
        .await
        .unwrap()
        < n
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no run number {n} came"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    fx.settle_syncs().await;
}

async fn run_count(fx: &Fixture) -> u64 {
    use sea_orm::{EntityTrait, PaginatorTrait};
    entity::sync_run::Entity::find()
        .count(&fx.db)
        .await
        .unwrap()
}

on_both_databases!(scheduled_syncs_follow_the_interval_and_skip_needs_reauth);

async fn scheduled_syncs_follow_the_interval_and_skip_needs_reauth(mut fx: Fixture) {
    use dirgate::sync::schedule::{ManualClock, Schedule};
    let server = FakeServer::start(10, 2).await;
    let clock = ManualClock::new(chrono::Utc::now());
    fx.use_providers_and_schedule(
        server.settings(),
        Schedule {
            clock: std::sync::Arc::new(clock.clone()),
            tick: std::time::Duration::from_millis(20),
            ..Schedule::system(240)
        },
    );
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    assert_eq!(run_count(&fx).await, 1);
    let pause = || tokio::time::sleep(std::time::Duration::from_millis(200));
    // Four hours less a minute: not yet.
    clock.advance(chrono::Duration::minutes(239));
    pause().await;
    assert_eq!(run_count(&fx).await, 1, "not due before four hours");
    clock.advance(chrono::Duration::minutes(2));
    wait_for_runs(&fx, 2).await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["trigger"], "SCHEDULED");
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    // The integration's own interval wins over the deployment's, counted from the last sync.
    let admin = fx.admin().await;
    fx.ok(
        &admin,
        "mutation($input: UpdateIntegrationSettingsInput!) { updateIntegrationSettings(input: $input) { integration { id } userErrors { field message code } } }",
        json!({ "input": { "id": id, "syncIntervalMinutes": 30 } }),
    )
    .await;
    clock.advance(chrono::Duration::minutes(29));
    pause().await;
    assert_eq!(run_count(&fx).await, 2);
    clock.advance(chrono::Duration::minutes(2));
    wait_for_runs(&fx, 3).await;
    // A revoked grant: NEEDS_REAUTH, and no more scheduled runs (R16).
    server.fake.revoke(&server.tenant(Kind::Entra));
    clock.advance(chrono::Duration::minutes(31));
    wait_for_runs(&fx, 4).await;
    assert_eq!(
        last_run(&fx, &id).await["integration"]["status"],
        "NEEDS_REAUTH"
    );
    clock.advance(chrono::Duration::hours(10));
    pause().await;
    assert_eq!(
        run_count(&fx).await,
        4,
        "an integration needing re-authentication is not scheduled"
    );
}

/// What a provider sends is attacker-controlled text: quotes, backslashes, braces, commas, the
/// word NULL, empty strings and any Unicode must come through a sync exactly, both when a user
/// is created and when it is updated (PostgreSQL's array-parameter upsert quotes each value).
async fn text_a_directory_sends_is_stored_exactly_whatever_it_holds(fx: Fixture) {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let (fx, server) = started(fx, 5).await;
    let key = server.tenant(Kind::Entra);
    let target = tenant_users(&server, Kind::Entra)[0].clone();
    let stored = async |fx: &Fixture| {
        entity::directory_user::Entity::find()
            .filter(entity::directory_user::Column::ExternalId.eq(target.as_str()))
            .one(&fx.db)
            .await
            .unwrap()
            .unwrap()
    };
    let texts = [
        r#"Quote " and \ backslash \" both"#,
        "{braces,and,commas}",
        "NULL",
        "",
        // Tabs and line breaks are controls in a one-line field: the cleaning step removes
        // them (tests/it/provider_data.rs), so they are not part of this round trip.
        "Ünïcödé 🚀 'single' and ‘curly’ quotes",
    ];
    let write = |texts: [&str; 5]| {
        let target = target.clone();
        server.fake.edit(|d| {
            d.tenants
                .get_mut(&key)
                .unwrap()
                .change_user(&target, |u| {
                    u.display_name = texts[0].into();
                    u.job_title = Some(texts[1].into());
                    u.department = Some(texts[2].into());
                    u.given_name = Some(texts[3].into());
                    u.surname = Some(texts[4].into());
                    u.employee_id = None;
                })
                .unwrap();
        });
    };
    write(texts);
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    let check = |user: &entity::directory_user::Model, texts: [&str; 5]| {
        assert_eq!(user.display_name, texts[0]);
        assert_eq!(user.job_title.as_deref(), Some(texts[1]));
        assert_eq!(
            user.department.as_deref(),
            Some(texts[2]),
            "the text NULL, not null"
        );
        assert_eq!(
            user.given_name.as_deref(),
            Some(texts[3]),
            "empty, not null"
        );
        assert_eq!(user.family_name.as_deref(), Some(texts[4]));
        assert_eq!(user.employee_id, None);
    };
    check(&stored(&fx).await, texts);
    // The same texts shifted one field along: every column is rewritten by the update path.
    let shifted = [texts[4], texts[0], texts[1], texts[2], texts[3]];
    write(shifted);
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersUpdated"], 1, "{run}");
    check(&stored(&fx).await, shifted);
}
