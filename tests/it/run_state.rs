//! What runs and integrations tell a front end, read against the providers' documented
//! answers: a refresh answered "sign in again" is NEEDS_REAUTH (R16) with nothing scheduled,
//! a page cut mid-body is read again, a failed run keeps the pages it read, and a newer run
//! supersedes a held one. On SQLite and PostgreSQL.

use crate::{
    on_both_databases,
    support::{Fixture, user_error},
    sync::{connect, last_run, remove_from_directory, started, sync, user_count},
};
use fake_directory::{Fault, FaultAction, Kind};
use serde_json::json;

on_both_databases!(
    a_refresh_answered_sign_in_again_needs_reauth_with_nothing_scheduled,
    a_page_cut_mid_body_is_read_again_and_the_sync_succeeds,
    a_failed_run_keeps_the_pages_it_read,
    a_newer_run_supersedes_a_held_one,
);

async fn a_refresh_answered_sign_in_again_needs_reauth_with_nothing_scheduled(fx: Fixture) {
    let (fx, server) = started(fx, 12).await;
    let cases = [
        (Kind::Entra, "ENTRA_ID", "interaction_required"),
        (Kind::Entra, "ENTRA_ID", "consent_required"),
        (Kind::Entra, "ENTRA_ID", "login_required"),
        (Kind::Google, "GOOGLE_WORKSPACE", "admin_policy_enforced"),
    ];
    for (kind, kind_name, code) in cases {
        let tenant = server.tenant(kind);
        server
            .fake
            .edit(|d| d.tenants.get_mut(&tenant).unwrap().refresh_error = None);
        let id = connect(&fx, kind_name, &format!("Org {code}"), false).await;
        let first = last_run(&fx, &id).await;
        assert_eq!(first["status"], "SUCCEEDED", "{first}");
        assert!(first["integration"]["nextSyncAt"].is_string());
        let code_owned = code.to_owned();
        server.fake.edit(|d| {
            d.tenants.get_mut(&tenant).unwrap().refresh_error = Some(code_owned);
        });
        let run = sync(&fx, &id).await;
        assert_eq!(run["status"], "FAILED", "{code}: {run}");
        let integration = &run["integration"];
        assert_eq!(integration["status"], "NEEDS_REAUTH", "{code}: {run}");
        assert!(
            integration["statusReason"].as_str().unwrap().contains(code),
            "{integration}"
        );
        assert!(
            integration["nextSyncAt"].is_null(),
            "nothing is scheduled while the integration needs re-authentication: {integration}"
        );
        assert_eq!(
            user_count(&fx, json!({ "integrationId": id })).await,
            12,
            "the data stays"
        );
    }
}

async fn a_page_cut_mid_body_is_read_again_and_the_sync_succeeds(fx: Fixture) {
    let (fx, server) = started(fx, 30).await;
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    for action in [
        FaultAction::Reset,
        FaultAction::Truncated,
        FaultAction::Malformed,
    ] {
        server.fake.inject(Fault {
            route: "/admin/directory/v1/users".into(),
            count: 1,
            action,
        });
        let run = sync(&fx, &id).await;
        assert_eq!(run["status"], "SUCCEEDED", "{run}");
    }
}

async fn a_failed_run_keeps_the_pages_it_read(fx: Fixture) {
    let (fx, server) = started(fx, 30).await;
    let id = connect(&fx, "GOOGLE_WORKSPACE", "Fabrikam", false).await;
    // The users and groups are read; every member list fails past the retries.
    server.fail("/admin/directory/v1/groups/", 1_000, 503);
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "FAILED", "{run}");
    assert!(
        run["pagesRead"].as_i64().unwrap() >= 2,
        "a failed run says how far it got: {run}"
    );
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("nothing was removed")
    );
}

async fn a_newer_run_supersedes_a_held_one(fx: Fixture) {
    let (fx, server) = started(fx, 60).await;
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    remove_from_directory(&server, Kind::Entra, 15);
    let held = sync(&fx, &id).await;
    assert_eq!(held["status"], "HELD", "{held}");
    let newer = sync(&fx, &id).await;
    assert_eq!(newer["status"], "HELD", "still past the threshold: {newer}");
    assert_ne!(newer["id"], held["id"]);
    let viewer = fx.viewer().await;
    let older = fx
        .ok(
            &viewer,
            "query($id: ID!) { syncRun(id: $id) { status error finishedAt } }",
            json!({ "id": held["id"] }),
        )
        .await;
    let older = &older["syncRun"];
    assert_eq!(older["status"], "CANCELLED", "{older}");
    assert!(older["error"].as_str().unwrap().contains("superseded"));
    assert!(older["finishedAt"].is_string());
    // The superseded run cannot be confirmed; the newer one can.
    let admin = fx.admin().await;
    let refused = fx
        .gql(
            &admin,
            "mutation($id: ID!) { confirmSyncRun(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
            json!({ "id": held["id"] }),
        )
        .await;
    assert_eq!(
        user_error(&refused),
        ("INVALID_INPUT".into(), "input.id".into())
    );
    fx.ok(
        &admin,
        "mutation($id: ID!) { confirmSyncRun(input: {id: $id}) { syncRun { id } userErrors { field message code } } }",
        json!({ "id": newer["id"] }),
    )
    .await;
    fx.settle_syncs().await;
    let run = last_run(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersRemoved"], 15);
}
