//! Re-syncs of an Entra integration scoped to groups (R19): the tenant's change feed (Graph
//! delta) kept to the scope. A change to a user the scope holds is applied without reading
//! the scope again; a change outside it is passed over; a user added to or taken out of a
//! group nested inside the scope changes the scope's membership, and the run reads the scope
//! again. On SQLite and PostgreSQL, through the real Graph client against the fake.

use crate::{
    nesting::{shape, started},
    on_both_databases,
    scope::{imported, set_scope, sorted},
    support::Fixture,
    sync::{connect, sync},
};
use fake_directory::Kind;
use serde_json::json;

on_both_databases!(a_scoped_re_sync_reads_the_change_feed_kept_to_the_scope);

async fn display_name(fx: &Fixture, external_id: &str) -> Option<String> {
    let viewer = fx.viewer().await;
    let data = fx
        .ok(
            &viewer,
            "{ users(first: 500) { nodes { externalId displayName } } }",
            json!({}),
        )
        .await;
    data["users"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["externalId"] == external_id)
        .map(|u| u["displayName"].as_str().unwrap().to_owned())
}

async fn a_scoped_re_sync_reads_the_change_feed_kept_to_the_scope(fx: Fixture) {
    let (fx, server) = started(fx).await;
    let (groups, users) = shape(&server, Kind::Entra);
    let key = server.tenant(Kind::Entra);
    let all: Vec<String> = server.fake.directory().tenants[&key]
        .users
        .keys()
        .cloned()
        .collect();
    let id = connect(&fx, "ENTRA_ID", "Contoso", false).await;
    set_scope(
        &fx,
        &id,
        json!({ "kind": "GROUPS", "groupIds": [groups["Top"]] }),
    )
    .await;
    assert_eq!(imported(&fx).await.0, sorted(&users[..4]));
    let scope_reads = || {
        server.fake.requests(&format!(
            "/v1.0/groups/{}/transitiveMembers/microsoft.graph.user",
            groups["Top"]
        ))
    };
    let feed_reads = || server.fake.requests("/v1.0/users/delta");
    assert_eq!(scope_reads(), 1);

    // A renamed user of the scope, and one outside it: the feed alone.
    let outsider = all.iter().find(|u| !users.contains(u)).unwrap().clone();
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        t.change_user(&users[0], |u| u.display_name = "Renamed Inside".into());
        t.change_user(&outsider, |u| u.display_name = "Renamed Outside".into());
    });
    let feed = feed_reads();
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersUpdated"], 1, "{run}");
    assert_eq!(scope_reads(), 1, "the scope is not read again");
    assert!(feed_reads() > feed, "the change feed is read");
    assert_eq!(
        display_name(&fx, &users[0]).await.as_deref(),
        Some("Renamed Inside")
    );
    assert_eq!(
        display_name(&fx, &outsider).await,
        None,
        "outside the scope"
    );

    // A user added to Bottom (nested in Top through Left and Right) comes in.
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        assert!(t.add_member(&groups["Bottom"], &outsider));
    });
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(run["usersCreated"], 1, "{run}");
    assert_eq!(
        scope_reads(),
        2,
        "the scope's membership changed: read again"
    );
    let mut expected = users[..4].to_vec();
    expected.push(outsider.clone());
    assert_eq!(imported(&fx).await.0, sorted(&expected));

    // Taken out of Bottom, the user leaves (no device: removed).
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        t.remove_member(&groups["Bottom"], &outsider);
    });
    let run = sync(&fx, &id).await;
    assert_eq!(run["usersRemoved"], 1, "{run}");
    assert_eq!(imported(&fx).await.0, sorted(&users[..4]));

    // Nothing changed: the feed, and nothing else.
    let before = scope_reads();
    let run = sync(&fx, &id).await;
    assert_eq!(run["status"], "SUCCEEDED", "{run}");
    assert_eq!(scope_reads(), before);
    assert_eq!(
        (run["usersCreated"].as_i64(), run["usersRemoved"].as_i64()),
        (Some(0), Some(0))
    );

    // A user of the scope deleted from the tenant leaves by the feed.
    server.fake.edit(|d| {
        let t = d.tenants.get_mut(&key).unwrap();
        t.remove_user(&users[0]);
    });
    let run = sync(&fx, &id).await;
    assert_eq!(run["usersRemoved"], 1, "{run}");
    assert_eq!(imported(&fx).await.0, sorted(&users[1..4]));
}
